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
    warn,
)
from feedsvc.cli.subscriber_files import export, import_
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
    from feedsvc.storage import Store


def _address(raw: str, *, allow_test_domains: bool = False) -> str:
    from feedsvc.newsletter.subscribers import normalise_address

    try:
        return normalise_address(raw, allow_test_domains=allow_test_domains)
    except AddressError as exc:
        hint = ""
        if not allow_test_domains and raw.strip().lower().rstrip(".").endswith(".test"):
            hint = "; pass --allow-test-domains to accept .test addresses (for trials)"
        fail(f"{str(exc).rstrip('.') if hint else exc}{hint}", EXIT_USAGE)


def _timezone_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from feedsvc.newsletter.subscribers import parse_timezone

    if value is None:
        return None
    try:
        return parse_timezone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _describe(subscriber: Subscriber) -> str:
    name = f" ({subscriber.name})" if subscriber.name else ""
    categories = ", ".join(subscriber.categories) or "every category"
    zone = subscriber.timezone or "the site's time zone"
    return (
        f"{subscriber.email}{name}: {subscriber.status.value}, {subscriber.frequency.value}, "
        f"{categories}, {zone}"
    )


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
        fail(
            f"{address} was erased with `feedsvc subscribers forget` and cannot be added "
            "back from the command line; its owner can subscribe again through the web form",
            EXIT_PROBLEMS,
        )
    with store.read() as conn:
        saved = get_subscriber(conn, address)
    assert saved is not None  # just written, and only `forget` deletes
    if outcome == UpsertResult.KEPT_STOPPED:
        since = f" since {format_time(saved.unsubscribed)}" if saved.unsubscribed else ""
        details = " The other details given were saved." if len(updates) > 1 else ""
        fail(
            f"{address} is {saved.status.value}{since}; feedsvc never re-subscribes an address "
            "that left or bounced (its owner can subscribe again through the web form)." + details,
            EXIT_PROBLEMS,
        )
    verb = "added" if outcome == UpsertResult.ADDED else "updated"
    click.echo(f"{verb} {_describe(saved)}")


def _check_categories(store: Store, names: tuple[str, ...], *, strict: bool) -> None:
    """Warn about --category values no published post has; with ``strict``, refuse them
    (exit 2, nothing stored). A site without posts yet has nothing to check against."""
    from feedsvc.newsletter.categories import (
        NO_CATEGORIES_YET,
        quoted,
        site_categories,
        unknown_reason,
    )

    try:
        with store.read() as conn:
            site = site_categories(conn, now())
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    if site.empty:
        them = "it" if len(names) == 1 else "them"
        warn(
            f"--category {quoted(names)}: {NO_CATEGORIES_YET}, so {them} cannot be checked; "
            f"the subscriber is stored with {them}. Run `feedsvc build` first to have "
            "categories checked"
        )
        return
    unknown = site.unknown(names)
    if not unknown:
        return
    problem = f"--category: {unknown_reason(unknown, site)}"
    if strict:
        fail(f"{problem}; check the spelling. Nothing was stored (--strict)", EXIT_USAGE)
    warn(
        f"{problem}; the subscriber is stored all the same (a category matches once a post "
        "has it). Check the spelling: add again with the right one, or with --strict to "
        "refuse unknown categories"
    )


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
    if before is None:
        fail(f"no subscriber {address}; nothing changed", EXIT_PROBLEMS)
    if before.status.stopped:
        click.echo(f"{address} is already {before.status.value}; nothing changed")
        return
    click.echo(f"unsubscribed {address} (the record is kept, so no import can add it again)")


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
            _print_table(found)


def _write_json(out: TextIO, found: Iterator[Subscriber]) -> None:
    """A JSON array, one subscriber per line, written as read (never all in memory)."""
    from feedsvc.newsletter.subscribers import subscriber_json

    out.write("[")
    for index, subscriber in enumerate(found):
        out.write(",\n " if index else "\n ")
        out.write(json.dumps(subscriber_json(subscriber), ensure_ascii=False))
    out.write("\n]\n")


def _print_table(found: Iterator[Subscriber], console: Console | None = None) -> None:
    """A table on ``console`` (stdout by default)."""
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    from feedsvc.newsletter.subscribers import format_time

    table = Table("name", "status", "frequency", "categories", "timezone", "created")
    # The address is never cut short: it folds onto more lines when the terminal is narrow.
    table.columns.insert(0, Column("email", overflow="fold", min_width=12))
    count = 0
    for subscriber in found:
        count += 1
        cells = (
            subscriber.email,
            subscriber.name or "",
            subscriber.status.value,
            subscriber.frequency.value,
            ", ".join(subscriber.categories) or "(all)",
            subscriber.timezone or "(site)",
            format_time(subscriber.created),
        )
        # Text, not str: a name such as "[bold]" is the subscriber's, not Rich markup.
        table.add_row(*(Text(cell) for cell in cells))
    table.caption = f"{count} subscriber{'s' if count != 1 else ''}"
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
    if found:
        click.echo(
            f"erased every record of {address}; only a one-way hash is kept, "
            "so that no import can add it again"
        )
    else:
        click.echo(
            f"no records of {address}; its one-way hash is recorded, so that no import can add it"
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
        fail(
            f"--since {raw!r}: expected an ISO 8601 date or date-time such as "
            "2024-06-01T09:00:00+09:00, or a duration back from now such as 2h or 7d",
            EXIT_USAGE,
        )
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

    if bool(emails) == (since is not None):
        fail("name the addresses to restore, or give --since TIME (not both)", EXIT_USAGE)
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
    restored = f"restored {count} subscriber{'s' if count != 1 else ''} to active"
    if start is not None:
        restored += f" (bounced since {start.isoformat()})"
    click.echo(restored + (": " + ", ".join(done.restored) if 0 < count <= 20 else ""))
    for email, status in done.not_bounced:
        warn(f"{email} is {status.value}, not bounced; nothing changed")
    for email in done.unknown:
        warn(f"no subscriber {email}; nothing changed")
    if done.unknown:
        sys.exit(EXIT_PROBLEMS)


subscribers.add_command(import_)
subscribers.add_command(export)
