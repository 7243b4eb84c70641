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

from feedsvc.cli.invocation import EXIT_STORE, EXIT_USAGE, command_store, fail, now, warn
from feedsvc.errors import ConfigError, MailboxError, StoreError
from feedsvc.models import SignalKind

if TYPE_CHECKING:
    from feedsvc.cli.main import Context

EXIT_MAILBOX = 4
# Gmail's and Yahoo's bulk-sender rules: keep spam complaints under 0.3 %; warn well before.
COMPLAINT_WARNING = 0.001


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
        fail(
            "nothing to read: set bounces.inbox_dir (a folder your mail server drops bounce "
            "messages into, one .eml file each) or bounces.mailbox (an IMAP or POP3 mailbox) "
            "in the config, or give --dir",
            EXIT_USAGE,
        )
    store = command_store(obj)
    try:
        if folder is not None:
            matcher, policy = matcher_for(settings, store), policy_for(settings)
            report = process_inbox(store, folder, matcher, policy, now)
        else:
            report = read_bounces(settings, store, now)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    except (MailboxError, ConfigError) as exc:
        fail(str(exc), EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_MAILBOX)
    for problem in report.problems:
        warn(problem)
    click.echo(report.summary())


@bounces.command("list")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.pass_obj
def list_(obj: Context, days: int, limit: int) -> None:
    """Counts of the last DAYS days, the complaint rate, and the latest signals."""
    from feedsvc.storage.inbound_signals import recent_signals, signal_counts

    since = now() - timedelta(days=days)
    store = command_store(obj)
    try:
        with store.read() as conn:
            counts = signal_counts(conn, since)
            rows = recent_signals(conn, limit=limit, since=since)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    parts = [f"{counts.by_kind.get(kind, 0)} {kind.value.replace('_', ' ')}" for kind in SignalKind]
    click.echo(f"last {days} days: " + ", ".join(parts) + f"; {counts.unmatched} unmatched")
    rate = counts.complaint_rate
    if rate is None:
        click.echo("complaint rate: no message sent in that time")
    else:
        click.echo(f"complaint rate: {rate:.3%} of {counts.delivered} messages sent")
        if rate > COMPLAINT_WARNING:
            warn(
                f"complaints are {rate:.2%} of messages sent (over 0.1 %); Gmail and Yahoo "
                "refuse bulk mail above 0.3 %: check who is subscribed and how they joined"
            )
    for row in rows:
        shown = row.email or "(no subscriber found)"
        said = " ".join(x for x in (row.status, row.diagnostic) if x)
        click.echo(
            f"{row.received_at.isoformat()}\t{row.kind.value}\t{row.source}\t"
            f"{row.outcome.value}\t{shown}\t{said}"
        )
