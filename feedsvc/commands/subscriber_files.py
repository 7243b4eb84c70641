"""``feedsvc subscribers import|export``: subscriber CSV files in and out, streamed.

Registered on the ``subscribers`` group by :mod:`feedsvc.commands.subscribers`. The rows
are read and written by ``feedsvc.subscriber_csv``; an import is written in batches by
``feedsvc.storage.subscriber_import`` while the next rows are read.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from zoneinfo import ZoneInfo

import click

from feedsvc.commands.invocation import (
    EXIT_PROBLEMS,
    EXIT_STORE,
    EXIT_USAGE,
    TEST_DOMAINS_HELP,
    actor,
    command_store,
    fail,
    now,
)
from feedsvc.errors import CsvFormatError, StoreError
from feedsvc.models import Problem, SubscriberEventKind

if TYPE_CHECKING:
    from rich.progress import Progress

    from feedsvc.cli import Context
    from feedsvc.storage.subscriber_import import BatchWriter, Finished
    from feedsvc.storage.subscriber_upserts import Outcome
    from feedsvc.subscriber_csv import SubscriberCsv


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


@click.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--encoding",
    default="utf-8-sig",
    show_default=True,
    help="The file's encoding (a byte-order mark is skipped); cp949 for Korean Excel files.",
)
@click.option("--allow-test-domains", is_flag=True, help=TEST_DOMAINS_HELP)
@click.pass_obj
def import_(
    obj: Context, file: Path, dry_run: bool, encoding: str, allow_test_domains: bool
) -> None:
    """Add or update subscribers from FILE (CSV: email,name,frequency,categories,timezone).

    Every bad row is reported with its line number and reason; every good row is
    imported. Existing addresses are updated; unsubscribed, bounced or complained ones
    are never re-activated, and forgotten ones are never added back.
    """
    from feedsvc.storage.subscriber_import import BatchWriter
    from feedsvc.subscriber_csv import SubscriberCsv, check_encoding, decoded_lines

    settings = obj.settings()
    source = str(file)
    try:
        check_encoding(encoding)
        raw: BinaryIO = file.open("rb")
    except ValueError as exc:
        fail(f"--encoding: {exc}", EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot read {file}: {exc}", EXIT_USAGE)
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
            fail(str(exc), EXIT_USAGE)
        writer = BatchWriter(
            command_store(obj),
            updates=reader.updates,
            now=now(),
            actor=actor(),
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
            fail(f"{exc}{done if written else ''}", EXIT_USAGE)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
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
    from feedsvc.storage.subscriber_import import BATCH
    from feedsvc.storage.subscriber_upserts import Outcome
    from feedsvc.subscriber_csv import BadRow
    from feedsvc.subscribers import SubscriberInput

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


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--bom", is_flag=True, help="Start with a UTF-8 byte-order mark (for Excel).")
@click.pass_obj
def export(obj: Context, file: Path, bom: bool) -> None:
    """Write every subscriber to FILE as CSV (import's columns plus status, dates, consent).

    ``-`` writes to standard output. The file is replaced only when complete.
    """
    from feedsvc.storage.subscribers import iter_subscribers
    from feedsvc.subscriber_csv import csv_lines, export_row

    store = command_store(obj)
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
        fail(f"cannot write {path}: the folder {directory} does not exist", EXIT_USAGE)
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
