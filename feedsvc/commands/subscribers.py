"""``feedsvc subscribers add|remove|list|import|export|forget``: argument parsing and output.

The rules live in ``feedsvc.subscribers`` (addresses, CSV rows) and
``feedsvc.storage.subscribers`` (what a write may change). Exit status as for the rest
of the CLI: 0 done; 1 something was refused or some rows were bad (the rest was done);
2 bad usage or an unreadable file; 3 the store cannot be opened.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO
from zoneinfo import ZoneInfo

import click

from feedsvc.errors import StoreError
from feedsvc.models import (
    Frequency,
    Problem,
    Subscriber,
    SubscriberEventKind,
    SubscriberStatus,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from feedsvc.cli import Context
    from feedsvc.storage import Store
    from feedsvc.storage.subscribers import BatchWriter, Finished, Outcome
    from feedsvc.subscribers import SubscriberCsv

# As in feedsvc.cli (imported from there lazily: cli.py imports this module).
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_STORE = 3

_TEST_DOMAINS_HELP = "Accept addresses at the reserved .test domain (for trials and benchmarks)."


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"feedsvc: {message}", err=True)
    sys.exit(code)


def _store(obj: Context) -> Store:
    """The store, opened (and migrated); closed when the command ends, however it ends."""
    from feedsvc.cli import _open_store

    store: Store = _open_store(obj.settings())
    click.get_current_context().call_on_close(store.close)
    return store


def _now() -> datetime:
    from feedsvc.clock import SystemClock

    return SystemClock().now()


def _actor() -> str:
    """Who is acting, for the events table: the command line and the OS user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or passwd database
        user = f"uid {os.getuid()}"
    return f"cli:{user}"


def _address(raw: str, *, allow_test_domains: bool = False) -> str:
    from feedsvc.subscribers import AddressError, normalise_address

    try:
        return normalise_address(raw, allow_test_domains=allow_test_domains)
    except AddressError as exc:
        _fail(str(exc), EXIT_USAGE)


def _timezone_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from feedsvc.subscribers import parse_timezone

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
    """Email subscribers: add, remove, list, import, export, forget."""


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
@click.option("--allow-test-domains", is_flag=True, help=_TEST_DOMAINS_HELP)
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
) -> None:
    """Add EMAIL as a subscriber (active unless --pending), or update its details.

    An address that unsubscribed, bounced or complained is never re-activated.
    """
    from feedsvc.storage.subscribers import Outcome, get_subscriber, write_batch
    from feedsvc.subscribers import SubscriberInput, clean_name, format_time, parse_categories

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
        _fail(f"{address}: {exc}", EXIT_USAGE)
    updates = {"status"}
    updates |= {"name"} if name is not None else set()
    updates |= {"frequency"} if frequency is not None else set()
    updates |= {"categories"} if categories else set()
    updates |= {"timezone"} if timezone is not None else set()
    store = _store(obj)
    try:
        [outcome] = write_batch(
            store,
            [row],
            updates=updates,
            now=_now(),
            actor=_actor(),
            event=SubscriberEventKind.SUBSCRIBED,
        )
    except StoreError as exc:
        _fail(str(exc), EXIT_STORE)
    if outcome == Outcome.SUPPRESSED:
        _fail(
            f"{address} was erased with `feedsvc subscribers forget` and cannot be added "
            "back from the command line; its owner can subscribe again through the web form",
            EXIT_PROBLEMS,
        )
    with store.read() as conn:
        saved = get_subscriber(conn, address)
    assert saved is not None  # just written, and only `forget` deletes
    if outcome == Outcome.KEPT_STOPPED:
        since = f" since {format_time(saved.unsubscribed)}" if saved.unsubscribed else ""
        details = " The other details given were saved." if len(updates) > 1 else ""
        _fail(
            f"{address} is {saved.status.value}{since}; feedsvc never re-subscribes an address "
            "that left or bounced (its owner can subscribe again through the web form)." + details,
            EXIT_PROBLEMS,
        )
    verb = "added" if outcome == Outcome.ADDED else "updated"
    click.echo(f"{verb} {_describe(saved)}")


@subscribers.command()
@click.argument("email")
@click.pass_obj
def remove(obj: Context, email: str) -> None:
    """Unsubscribe EMAIL; the record is kept so that no import adds it again."""
    from feedsvc.storage.subscribers import unsubscribe

    address = _address(email, allow_test_domains=True)
    store = _store(obj)
    with store.write() as conn:
        before = unsubscribe(conn, address, now=_now(), actor=_actor())
    if before is None:
        _fail(f"no subscriber {address}; nothing changed", EXIT_PROBLEMS)
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
    from feedsvc.storage.subscribers import iter_subscribers
    from feedsvc.subscribers import csv_lines, export_row

    if output_format is None:
        output_format = "table" if sys.stdout.isatty() else "csv"
    wanted = [SubscriberStatus(s.lower()) for s in statuses]
    store = _store(obj)
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
    from feedsvc.subscribers import subscriber_json

    out.write("[")
    for index, subscriber in enumerate(found):
        out.write(",\n " if index else "\n ")
        out.write(json.dumps(subscriber_json(subscriber), ensure_ascii=False))
    out.write("\n]\n")


def _print_table(found: Iterator[Subscriber]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from feedsvc.subscribers import format_time

    table = Table("email", "name", "status", "frequency", "categories", "timezone", "created")
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
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)


@dataclass
class _Tally:
    """What an import did, for the summary."""

    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bad: int = 0

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome] += 1

    @property
    def written(self) -> int:
        return sum(self.outcomes.values()) - self.outcomes["suppressed"]


@subscribers.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--encoding",
    default="utf-8-sig",
    show_default=True,
    help="The file's encoding (a byte-order mark is skipped); cp949 for Korean Excel files.",
)
@click.option("--allow-test-domains", is_flag=True, help=_TEST_DOMAINS_HELP)
@click.pass_obj
def import_(
    obj: Context, file: Path, dry_run: bool, encoding: str, allow_test_domains: bool
) -> None:
    """Add or update subscribers from FILE (CSV: email,name,frequency,categories,timezone).

    Every bad row is reported with its line number and reason; every good row is
    imported. Existing addresses are updated; unsubscribed, bounced or complained ones
    are never re-activated, and forgotten ones are never added back.
    """
    from feedsvc.storage.subscribers import BatchWriter
    from feedsvc.subscribers import CsvFormatError, SubscriberCsv, check_encoding, decoded_lines

    settings = obj.settings()
    source = str(file)
    try:
        check_encoding(encoding)
        raw: BinaryIO = file.open("rb")
    except ValueError as exc:
        _fail(f"--encoding: {exc}", EXIT_USAGE)
    except OSError as exc:
        _fail(f"cannot read {file}: {exc}", EXIT_USAGE)
    tally = _Tally()
    with raw:
        try:
            reader = SubscriberCsv(
                decoded_lines(raw, encoding=encoding, source=source),
                source=source,
                assume_timezone=ZoneInfo(settings.site.timezone),
                consent_source=f"import {file.name}",
                allow_test_domains=allow_test_domains,
            )
        except CsvFormatError as exc:
            _fail(str(exc), EXIT_USAGE)
        writer = BatchWriter(
            _store(obj),
            updates=reader.updates,
            now=_now(),
            actor=_actor(),
            event=SubscriberEventKind.IMPORTED,
            source=file.name,
            dry_run=dry_run,
        )
        try:
            with _progress(file.stat().st_size) as progress, writer:

                def advance() -> None:
                    if progress is not None:
                        progress.update(progress.task_ids[0], completed=raw.tell())

                _import_rows(reader, writer, tally, _reporter(progress), advance)
        except CsvFormatError as exc:
            written = tally.written if not dry_run else 0
            done = f" ({written} rows before it were imported; import again is safe)"
            _fail(f"{exc}{done if written else ''}", EXIT_USAGE)
        except StoreError as exc:
            _fail(str(exc), EXIT_STORE)
    click.echo(_summary(source, tally, dry_run))
    if tally.bad:
        sys.exit(EXIT_PROBLEMS)


def _import_rows(
    reader: SubscriberCsv,
    writer: BatchWriter,
    tally: _Tally,
    report: Callable[[Problem], None],
    advance: Callable[[], None],
) -> None:
    """Feed the good rows to ``writer`` in batches; count, and report every bad row.

    A file that turns undecodable half-way (CsvFormatError) first lets the batches read
    before it finish, so that the message can say how many rows were imported.
    """
    from feedsvc.storage.subscribers import BATCH, Outcome
    from feedsvc.subscribers import BadRow, CsvFormatError, SubscriberInput

    def settle(done: list[Finished]) -> None:
        for batch, outcomes in done:
            for row, outcome in zip(batch, outcomes, strict=True):
                tally.count(outcome)
                if outcome == Outcome.SUPPRESSED:
                    tally.bad += 1
                    reason = (
                        f"{row.email} was erased with `feedsvc subscribers forget`; "
                        "it is never imported again"
                    )
                    report(Problem(reader.source, reason, row.line))
        advance()

    batch: list[SubscriberInput] = []
    try:
        for item in reader:
            tally.rows += 1
            if tally.rows % BATCH == 0:
                advance()  # also through long runs of bad rows
            if isinstance(item, BadRow):
                tally.bad += 1
                report(Problem(reader.source, item.reason, item.line))
                continue
            batch.append(item)
            if len(batch) >= BATCH:
                settle(writer.submit(batch))
                batch.clear()
    except CsvFormatError:
        settle(writer.finish())
        raise
    if batch:
        settle(writer.submit(batch))
    settle(writer.finish())


def _summary(source: str, tally: _Tally, dry_run: bool) -> str:
    got = tally.outcomes.get
    kept = got("kept_stopped", 0)
    parts = [
        f"{got('added', 0)} added",
        f"{got('updated', 0) + kept} updated",
    ]
    if kept:
        parts[-1] += f" ({kept} stayed unsubscribed, bounced or complained)"
    parts.append(f"{tally.bad} bad row{'s' if tally.bad != 1 else ''} not imported")
    head = f"{source}: {tally.rows} row{'s' if tally.rows != 1 else ''}: "
    if dry_run:
        return "dry run, nothing written: " + head + ", ".join(parts).replace("added", "to add")
    return head + ", ".join(parts)


@contextmanager
def _progress(total: int) -> Iterator[Progress | None]:
    """A progress bar on stderr when the command runs on a terminal, else None."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        progress.add_task("import", total=total)
        yield progress


def _reporter(progress: Progress | None) -> Callable[[Problem], None]:
    """How to print one bad row: above the bar on a terminal, else a line on stderr."""

    def report(problem: Problem) -> None:
        if progress is not None:
            progress.console.print(str(problem), markup=False, highlight=False)
        else:
            click.echo(str(problem), err=True)

    return report


@subscribers.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--bom", is_flag=True, help="Start with a UTF-8 byte-order mark (for Excel).")
@click.pass_obj
def export(obj: Context, file: Path, bom: bool) -> None:
    """Write every subscriber to FILE as CSV (import's columns plus status, dates, consent).

    ``-`` writes to standard output. The file is replaced only when complete.
    """
    from feedsvc.storage.subscribers import iter_subscribers
    from feedsvc.subscribers import csv_lines, export_row

    store = _store(obj)
    count = 0
    with store.read() as conn:
        rows = (export_row(subscriber) for subscriber in iter_subscribers(conn))
        if str(file) == "-":
            out = sys.stdout
            if bom:
                out.write("\ufeff")
            for text in csv_lines(rows):
                out.write(text)
                count += 1
        else:
            count = _write_atomically(file, csv_lines(rows), bom=bom)
    count -= 1  # the header
    if str(file) != "-":
        click.echo(f"wrote {count} subscriber{'s' if count != 1 else ''} to {file}")


def _write_atomically(path: Path, lines: Iterator[str], *, bom: bool) -> int:
    """Write ``lines`` to a temporary file beside ``path``, then rename it; lines written."""
    directory = path.resolve().parent
    if not directory.is_dir():
        _fail(f"cannot write {path}: the folder {directory} does not exist", EXIT_USAGE)
    count = 0
    # mkstemp makes the file readable by its owner only: right for a list of people.
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(descriptor, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
            for text in lines:
                out.write(text)
                count += 1
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


@subscribers.command()
@click.argument("email")
@click.pass_obj
def forget(obj: Context, email: str) -> None:
    """Erase every record of EMAIL (GDPR); keep only a hash so no import adds it again."""
    from feedsvc.storage.subscribers import forget as forget_address

    address = _address(email, allow_test_domains=True)
    store = _store(obj)
    with store.write() as conn:
        found = forget_address(conn, address, now=_now(), actor=_actor())
    if found:
        click.echo(
            f"erased every record of {address}; only a one-way hash is kept, "
            "so that no import can add it again"
        )
    else:
        click.echo(
            f"no records of {address}; its one-way hash is recorded, so that no import can add it"
        )
