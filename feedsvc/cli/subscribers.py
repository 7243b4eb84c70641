"""``feedsvc subscribers add|remove|list|import|export|forget|unbounce``: argument parsing
and output.

The rules live in ``feedsvc.newsletter.subscribers`` (addresses, fields) and
``feedsvc.storage.subscriber_merge`` (what a write may change). ``import`` and ``export``
(files) are in :mod:`feedsvc.cli.subscriber_files`, registered here. Exit status as
for the rest of the CLI (see :mod:`feedsvc.cli.invocation`): 0 done; 1 something
was refused; 2 bad usage; 3 the store cannot be opened.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TextIO

import click

from feedsvc.cli.invocation import (
    EXIT_PROBLEMS,
    EXIT_STORE,
    EXIT_USAGE,
    TEST_DOMAINS_HELP,
    actor,
    command_store,
    fail,
    now,
    texts,
    warn,
)
from feedsvc.cli.subscriber_files import export, import_
from feedsvc.cli.words import address_problem, unknown_categories
from feedsvc.errors import AddressError, StoreError
from feedsvc.models import (
    Frequency,
    Subscriber,
    SubscriberEventKind,
    SubscriberStatus,
)

if TYPE_CHECKING:
    from rich.console import Console

    from feedsvc.cli.main import Context
    from feedsvc.messages import Texts
    from feedsvc.storage import Store


def _address(raw: str, *, allow_test_domains: bool = False) -> str:
    from feedsvc.newsletter.subscribers import normalise_address

    try:
        return normalise_address(raw, allow_test_domains=allow_test_domains)
    except AddressError as exc:
        said = texts()
        problem = address_problem(said, exc)
        if not allow_test_domains and raw.strip().lower().rstrip(".").endswith(".test"):
            problem = said("cli.subscribers.test_domain_hint", problem=problem.rstrip("."))
        fail(problem, EXIT_USAGE)


def _timezone_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from feedsvc.newsletter.subscribers import parse_timezone

    if value is None:
        return None
    try:
        return parse_timezone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _describe(texts: Texts, subscriber: Subscriber) -> str:
    """``민지@example.kr (김민지): active, daily, 부산, Asia/Seoul``."""
    name = f" ({subscriber.name})" if subscriber.name else ""
    return texts(
        "cli.subscribers.described",
        address=subscriber.email + name,
        status=status_label(texts, subscriber.status),
        frequency=texts(f"cli.frequency.{subscriber.frequency.value}"),
        categories=", ".join(subscriber.categories) or texts("cli.subscribers.every_category"),
        zone=subscriber.timezone or texts("cli.subscribers.site_zone"),
    )


def status_label(texts: Texts, status: SubscriberStatus) -> str:
    """``active`` / ``구독 중``: a subscriber's status as a message names it."""
    return texts(f"cli.subscriber_status.{status.value}")


@click.group()
def subscribers() -> None:
    """Email subscribers: add, remove, list, import, export, forget, unbounce."""


@subscribers.command()
@click.argument("email")
@click.option("--name", default=None, help="Display name, e.g. 구독자 김민지.")
@click.option(
    "--frequency",
    type=click.Choice([f.value for f in Frequency], case_sensitive=False),
    default=None,
    help="How often digests go out (new subscribers: daily).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Only posts in this category (repeat for several; none = every category).",
)
@click.option(
    "--timezone",
    default=None,
    callback=_timezone_option,
    help="IANA time zone for digest times, e.g. Asia/Seoul (default: site.timezone).",
)
@click.option(
    "--pending",
    is_flag=True,
    help="Add unconfirmed (status pending) instead of active.",
)
@click.option("--allow-test-domains", is_flag=True, help=TEST_DOMAINS_HELP)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a --category no published post has (without it: a warning, and the "
    "subscriber is stored with it).",
)
@click.pass_obj
def add(
    obj: Context,
    email: str,
    name: str | None,
    frequency: str | None,
    categories: tuple[str, ...],
    timezone: str | None,
    pending: bool,
    allow_test_domains: bool,
    strict: bool,
) -> None:
    """Add EMAIL as a subscriber (active unless --pending), or update its details.

    An address that unsubscribed, bounced or complained is never re-activated. A
    --category no published post has is stored with a warning (--strict: refused).
    """
    from feedsvc.models import SubscriberInput
    from feedsvc.newsletter.subscribers import clean_name, format_time, parse_categories
    from feedsvc.storage.subscriber_import import write_batch
    from feedsvc.storage.subscriber_upserts import UpsertResult
    from feedsvc.storage.subscribers import get_subscriber

    address = _address(email, allow_test_domains=allow_test_domains)
    try:
        row = SubscriberInput(
            email=address,
            name=None if name is None else clean_name(name),
            frequency=Frequency.DAILY if frequency is None else Frequency(frequency.lower()),
            categories=parse_categories(categories),
            timezone=timezone,
            status=SubscriberStatus.PENDING if pending else SubscriberStatus.ACTIVE,
            consent_source="cli",
        )
    except ValueError as exc:
        fail(f"{address}: {exc}", EXIT_USAGE)
    said = texts()
    updates = {"status"}
    updates |= {"name"} if name is not None else set()
    updates |= {"frequency"} if frequency is not None else set()
    updates |= {"categories"} if categories else set()
    updates |= {"timezone"} if timezone is not None else set()
    store = command_store(obj)
    if row.categories:
        _check_categories(store, row.categories, strict=strict)
    try:
        [outcome] = write_batch(
            store,
            [row],
            updates=updates,
            now=now(),
            actor=actor(),
            event=SubscriberEventKind.SUBSCRIBED,
        )
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    if outcome == UpsertResult.SUPPRESSED:
        fail(said("cli.subscribers.forgotten", address=address), EXIT_PROBLEMS)
    with store.read() as conn:
        saved = get_subscriber(conn, address)
    assert saved is not None  # just written, and only `forget` deletes
    if outcome == UpsertResult.KEPT_STOPPED:
        status = status_label(said, saved.status)
        if saved.unsubscribed:
            since = format_time(saved.unsubscribed)
            refusal = said(
                "cli.subscribers.stopped_since", address=address, status=status, since=since
            )
        else:
            refusal = said("cli.subscribers.stopped", address=address, status=status)
        if len(updates) > 1:
            refusal = said("cli.subscribers.details_saved", message=refusal)
        fail(refusal, EXIT_PROBLEMS)
    added = outcome == UpsertResult.ADDED
    shown = _describe(said, saved)
    click.echo(
        said("cli.subscribers.added" if added else "cli.subscribers.updated", subscriber=shown)
    )


def _check_categories(store: Store, names: tuple[str, ...], *, strict: bool) -> None:
    """Warn about --category values no published post has; with ``strict``, refuse them
    (exit 2, nothing stored). A site without posts yet has nothing to check against."""
    from feedsvc.newsletter.categories import quoted, site_categories

    try:
        with store.read() as conn:
            site = site_categories(conn, now())
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    said = texts()
    if site.empty:
        warn(said.plural("cli.subscribers.categories_unchecked", len(names), names=quoted(names)))
        return
    unknown = site.unknown(names)
    if not unknown:
        return
    problem = said(
        "cli.subscribers.category_option", reason=unknown_categories(said, unknown, site)
    )
    if strict:
        fail(said("cli.subscribers.category_refused", problem=problem), EXIT_USAGE)
    warn(said("cli.subscribers.category_kept", problem=problem))


@subscribers.command()
@click.argument("email")
@click.pass_obj
def remove(obj: Context, email: str) -> None:
    """Unsubscribe EMAIL; the record is kept so that no import adds it again."""
    from feedsvc.storage.subscribers import unsubscribe

    address = _address(email, allow_test_domains=True)
    store = command_store(obj)
    with store.write() as conn:
        before = unsubscribe(conn, address, now=now(), actor=actor())
    said = texts()
    if before is None:
        fail(said("cli.subscribers.unknown", address=address), EXIT_PROBLEMS)
    if before.status.stopped:
        status = status_label(said, before.status)
        click.echo(said("cli.subscribers.already", address=address, status=status))
        return
    click.echo(said("cli.subscribers.unsubscribed", address=address))


@subscribers.command(name="list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in SubscriberStatus], case_sensitive=False),
    help="Only subscribers with this status (repeat for several).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default=None,
    help="Output format (default: table on a terminal, csv otherwise).",
)
@click.pass_obj
def list_(obj: Context, statuses: tuple[str, ...], output_format: str | None) -> None:
    """List subscribers, oldest first."""
    from feedsvc.newsletter.subscriber_csv import csv_lines, export_row
    from feedsvc.storage.subscribers import iter_subscribers

    if output_format is None:
        output_format = "table" if sys.stdout.isatty() else "csv"
    wanted = [SubscriberStatus(s.lower()) for s in statuses]
    store = command_store(obj)
    out = sys.stdout
    with store.read() as conn:
        found = iter_subscribers(conn, wanted)
        if output_format == "csv":
            for text in csv_lines(export_row(s) for s in found):
                out.write(text)
        elif output_format == "json":
            _write_json(out, found)
        else:
            _print_table(texts(), found)


def _write_json(out: TextIO, found: Iterator[Subscriber]) -> None:
    """A JSON array, one subscriber per line, written as read (never all in memory)."""
    from feedsvc.newsletter.subscribers import subscriber_json

    out.write("[")
    for index, subscriber in enumerate(found):
        out.write(",\n " if index else "\n ")
        out.write(json.dumps(subscriber_json(subscriber), ensure_ascii=False))
    out.write("\n]\n")


# The columns of `subscribers list` after the address (headers: the catalogue's cli.table.*).
TABLE_COLUMNS = ("name", "status", "frequency", "categories", "timezone", "created")


def _print_table(texts: Texts, found: Iterator[Subscriber], console: Console | None = None) -> None:
    """A table on ``console`` (stdout by default); the status and frequency as the options
    name them (``--status active``)."""
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    from feedsvc.newsletter.subscribers import format_time

    table = Table(*(texts(f"cli.table.{header}") for header in TABLE_COLUMNS))
    # The address is never cut short: it folds onto more lines when the terminal is narrow.
    table.columns.insert(0, Column(texts("cli.table.email"), overflow="fold", min_width=12))
    count = 0
    for subscriber in found:
        count += 1
        cells = (
            subscriber.email,
            subscriber.name or "",
            subscriber.status.value,
            subscriber.frequency.value,
            ", ".join(subscriber.categories) or texts("cli.table.all_categories"),
            subscriber.timezone or texts("cli.table.site_zone"),
            format_time(subscriber.created),
        )
        # Text, not str: a name such as "[bold]" is the subscriber's, not Rich markup.
        table.add_row(*(Text(cell) for cell in cells))
    table.caption = texts.plural("cli.count.subscribers", count)
    # Off a terminal (--format table into a pipe), give rows room instead of 80 columns.
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)


@subscribers.command()
@click.argument("email")
@click.pass_obj
def forget(obj: Context, email: str) -> None:
    """Erase every record of EMAIL (GDPR); keep only a hash so no import adds it again."""
    from feedsvc.storage.subscribers import forget as forget_address

    address = _address(email, allow_test_domains=True)
    store = command_store(obj)
    with store.write() as conn:
        found = forget_address(conn, address, now=now(), actor=actor())
    click.echo(
        texts()(
            "cli.subscribers.forgot" if found else "cli.subscribers.forgot_unknown", address=address
        )
    )


def _since(raw: str, zone: str, moment: datetime) -> datetime:
    """``--since``: an ISO 8601 date or date-time (without a zone: in ``site.timezone``),
    or a duration back from ``moment`` such as 30m, 2h or 7d."""
    from zoneinfo import ZoneInfo

    from feedsvc.config import _DURATION, _parse_duration
    from feedsvc.newsletter.subscribers import parse_time

    duration = _DURATION.match(raw)
    if duration is not None and duration.group(2) is not None:
        ago: timedelta = _parse_duration(raw)
        return moment - ago
    try:
        found = parse_time(raw, ZoneInfo(zone))
    except ValueError:
        found = None
    if found is None:
        fail(texts()("cli.unbounce.bad_since", value=repr(raw)), EXIT_USAGE)
    return found


@subscribers.command()
@click.argument("emails", metavar="EMAIL...", nargs=-1)
@click.option(
    "--since",
    default=None,
    help="Every subscriber bounced at this time or later: an ISO 8601 date or date-time "
    "(site.timezone if it has no zone) or a duration back from now, e.g. 2h.",
)
@click.pass_obj
def unbounce(obj: Context, emails: tuple[str, ...], since: str | None) -> None:
    """Restore bounced subscribers to active (bounced by mistake, e.g. by a relay that
    refused every message): by EMAIL, or all bounced --since a time.

    Their bounce count starts again from zero; an `unbounced` event records who did it.
    Their failed deliveries stay failed (`feedsvc deliveries retry` sends them again).
    """
    from feedsvc.storage.bounces import bounced_since
    from feedsvc.storage.bounces import unbounce as restore

    said = texts()
    if bool(emails) == (since is not None):
        fail(said("cli.unbounce.which"), EXIT_USAGE)
    addresses = [_address(email, allow_test_domains=True) for email in emails]
    settings = obj.settings()
    moment = now()
    start = None if since is None else _since(since, settings.site.timezone, moment)
    store = command_store(obj)
    try:
        with store.write() as conn:
            if start is not None:
                addresses = bounced_since(conn, start)
            done = restore(conn, addresses, now=moment, actor=actor())
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    count = len(done.restored)
    restored = said.plural("cli.unbounce.restored", count)
    if start is not None:
        restored = said("cli.unbounce.since", restored=restored, since=start.isoformat())
    click.echo(f"{restored}: {', '.join(done.restored)}" if 0 < count <= 20 else restored)
    for email, status in done.not_bounced:
        warn(said("cli.unbounce.not_bounced", address=email, status=status_label(said, status)))
    for email in done.unknown:
        warn(said("cli.subscribers.unknown", address=email))
    if done.unknown:
        sys.exit(EXIT_PROBLEMS)


subscribers.add_command(import_)
subscribers.add_command(export)
