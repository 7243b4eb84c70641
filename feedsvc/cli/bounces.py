"""``feedsvc bounces process|list``: read the bounce inbox now; what came back lately.

Exit status as for the rest of the CLI: 0 done; 2 bad usage (nothing to read, incomplete
mailbox settings); 3 the store cannot be opened; 4 the mailbox cannot be read (what was
read before is applied; the rest stays in the mailbox).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from feedsvc.cli.invocation import EXIT_STORE, EXIT_USAGE, command_store, fail, now, texts, warn
from feedsvc.cli.words import config_problem
from feedsvc.errors import ConfigError, MailboxError, StoreError

if TYPE_CHECKING:
    from feedsvc.cli.main import Context

EXIT_MAILBOX = 4


@click.group()
def bounces() -> None:
    """Bounces, complaints and unsubscribe mail that arrived after the relay said 250."""


@bounces.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Read only this folder of .eml files (not bounces.inbox_dir or the mailbox).",
)
@click.pass_obj
def process(obj: Context, folder: Path | None) -> None:
    """Read the bounce inbox folder and the bounce mailbox now; apply what each message says."""
    from feedsvc.bounces.inbox import process_inbox
    from feedsvc.bounces.process import matcher_for, policy_for
    from feedsvc.bounces.reading import read_bounces

    settings = obj.settings()
    bounces = settings.bounces
    if folder is None and bounces.inbox_dir is None and bounces.mailbox.protocol is None:
        fail(texts()("cli.bounces.nothing_to_read"), EXIT_USAGE)
    store = command_store(obj)
    try:
        if folder is not None:
            matcher, policy = matcher_for(settings, store), policy_for(settings)
            report = process_inbox(store, folder, matcher, policy, now)
        else:
            report = read_bounces(settings, store, now)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    except ConfigError as exc:
        fail(config_problem(texts(), exc), EXIT_USAGE)
    except MailboxError as exc:
        fail(str(exc), EXIT_MAILBOX)
    for problem in report.problems:
        warn(texts().message(problem))
    click.echo(report.summary(texts()))


@bounces.command("list")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.pass_obj
def list_(obj: Context, days: int, limit: int) -> None:
    """Counts of the last DAYS days, the complaint rate, and the latest signals."""
    from feedsvc.bounces.report import signal_lines
    from feedsvc.storage.inbound_signals import recent_signals, signal_counts

    since = now() - timedelta(days=days)
    store = command_store(obj)
    try:
        with store.read() as conn:
            counts = signal_counts(conn, since)
            rows = recent_signals(conn, limit=limit, since=since)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    said = texts()
    lines, warning = signal_lines(said, counts, days)
    for line in lines:
        click.echo(line)
    if warning is not None:
        warn(warning)
    for row in rows:
        shown = row.email or said("cli.bounces.no_subscriber")
        reply = " ".join(x for x in (row.status, row.diagnostic) if x)
        click.echo(
            f"{row.received_at.isoformat()}\t{row.kind.value}\t{row.source}\t"
            f"{row.outcome.value}\t{shown}\t{reply}"
        )
