"""``feedsvc subscribers import|export``: subscriber CSV files in and out, streamed.

Registered on the ``subscribers`` group by :mod:`feedsvc.cli.subscribers`. The rows
are read and written by ``feedsvc.newsletter.subscriber_csv``; an import is written in batches by
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
)
from feedsvc.cli.words import number, problem_text, unknown_categories
from feedsvc.errors import CsvFormatError, StoreError
from feedsvc.models import Problem, Severity, SubscriberEventKind

if TYPE_CHECKING:
    from rich.progress import Progress

    from feedsvc.cli.main import Context
    from feedsvc.messages import Texts
    from feedsvc.models import SubscriberInput
    from feedsvc.newsletter.categories import SiteCategories
    from feedsvc.newsletter.subscriber_csv import SubscriberCsv
    from feedsvc.storage import Store
    from feedsvc.storage.subscriber_import import BatchWriter, Finished
    from feedsvc.storage.subscriber_upserts import UpsertResult


@dataclass
class _Tally:
    """What an import did, for the summary."""

    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bad: int = 0
    unknown_categories: int = 0  # rows imported with a category no post has

    def count(self, outcome: UpsertResult) -> None:
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
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse the file when a row names a category no published post has: report "
    "each such row, import nothing (without it: a warning, and the rows are imported).",
)
@click.pass_obj
def import_(
    obj: Context,
    file: Path,
    dry_run: bool,
    encoding: str,
    allow_test_domains: bool,
    strict: bool,
) -> None:
    """Add or update subscribers from FILE (CSV: email,name,frequency,categories,timezone).

    Every bad row is reported with its line number and reason; every good row is
    imported. Existing addresses are updated; unsubscribed, bounced or complained ones
    are never re-activated, and forgotten ones are never added back. A row whose
    categories no published post has is imported with a warning; with --strict, such
    rows are reported and nothing is imported.
    """
    from feedsvc.newsletter.subscriber_csv import SubscriberCsv, check_encoding, decoded_lines
    from feedsvc.storage.subscriber_import import BatchWriter

    settings = obj.settings()
    said = texts()
    source = str(file)
    try:
        check_encoding(encoding)
        raw: BinaryIO = file.open("rb")
    except ValueError as exc:
        fail(said("cli.option_problem", option="--encoding", reason=str(exc)), EXIT_USAGE)
    except OSError as exc:
        fail(said("cli.cannot_read", path=str(file), reason=str(exc)), EXIT_USAGE)
    tally = _Tally()

    def rows_of(handle: BinaryIO) -> SubscriberCsv:
        return SubscriberCsv(
            decoded_lines(handle, encoding=encoding, source=source),
            source=source,
            assume_timezone=ZoneInfo(settings.site.timezone),
            consent_source=f"import {file.name}",
            allow_test_domains=allow_test_domains,
        )

    with raw:
        try:
            reader = rows_of(raw)
        except CsvFormatError as exc:
            fail(str(exc), EXIT_USAGE)
        store = command_store(obj)
        check = _CategoryCheck(said, source, _site_categories(store, reader))
        if strict and check.site is not None and not check.site.empty:
            _refuse_unknown_categories(file, rows_of, check)
        writer = BatchWriter(
            store,
            updates=reader.updates,
            now=now(),
            actor=actor(),
            event=SubscriberEventKind.IMPORTED,
            source=file.name,
            dry_run=dry_run,
        )
        try:
            with _progress(said, file.stat().st_size) as progress, writer:

                def advance() -> None:
                    if progress is not None:
                        progress.update(progress.task_ids[0], completed=raw.tell())

                _import_rows(reader, writer, tally, _reporter(said, progress), advance, check)
        except CsvFormatError as exc:
            written = tally.written if not dry_run else 0
            if not written:
                fail(str(exc), EXIT_USAGE)
            fail(said.plural("cli.import.partial", written, problem=str(exc)), EXIT_USAGE)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
    tally.unknown_categories = check.unknown_rows
    click.echo(_summary(said, source, tally, dry_run))
    if tally.bad:
        sys.exit(EXIT_PROBLEMS)


def _import_rows(
    reader: SubscriberCsv,
    writer: BatchWriter,
    tally: _Tally,
    report: Callable[[Problem], None],
    advance: Callable[[], None],
    check: _CategoryCheck,
) -> None:
    """Feed the good rows to ``writer`` in batches; count, and report every bad row (and
    warn about each good one whose categories no post has).

    A file that turns undecodable half-way (CsvFormatError) first lets the batches read
    before it finish, so that the message can say how many rows were imported.
    """
    from feedsvc.newsletter.subscriber_csv import BadRow
    from feedsvc.storage.subscriber_import import BATCH
    from feedsvc.storage.subscriber_upserts import UpsertResult

    def settle(done: list[Finished]) -> None:
        for batch, outcomes in done:
            for row, outcome in zip(batch, outcomes, strict=True):
                tally.count(outcome)
                if outcome == UpsertResult.SUPPRESSED:
                    tally.bad += 1
                    reason = check.texts("cli.import.forgotten", address=row.email)
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
            warning = check.problem(item, Severity.WARNING)
            if warning is not None:
                report(warning)
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


def _summary(texts: Texts, source: str, tally: _Tally, dry_run: bool) -> str:
    """ "people.csv: 7 rows: 2 added, 0 updated, 5 bad rows not imported"."""
    got = tally.outcomes.get
    kept = got("kept_stopped", 0)
    added = number(got("added", 0))
    updated = texts("cli.import.updated", count=number(got("updated", 0) + kept))
    if kept:
        updated = texts("cli.import.kept", updated=updated, count=number(kept))
    parts = [
        texts("cli.import.to_add" if dry_run else "cli.import.added", count=added),
        updated,
        texts.plural("cli.import.bad", tally.bad),
    ]
    if tally.unknown_categories:
        parts.append(texts.plural("cli.import.unknown_categories", tally.unknown_categories))
    summary = texts(
        "cli.import.summary",
        source=source,
        rows=texts.plural("cli.count.rows", tally.rows),
        parts=", ".join(parts),
    )
    return texts("cli.import.dry_run", summary=summary) if dry_run else summary


@dataclass
class _CategoryCheck:
    """The categories of each row against the site's (``site`` None: the file has no
    categories column). A site without posts yet gets one warning, not one per row."""

    texts: Texts
    source: str
    site: SiteCategories | None
    said_empty: bool = False
    unknown_rows: int = 0

    def problem(self, row: SubscriberInput, severity: Severity) -> Problem | None:
        if self.site is None or not row.categories:
            return None
        if self.site.empty:
            if self.said_empty:
                return None
            self.said_empty = True
            reason = self.texts("cli.import.categories_unchecked")
            return Problem(self.source, reason, row.line, Severity.WARNING)
        unknown = self.site.unknown(row.categories)
        if not unknown:
            return None
        self.unknown_rows += 1
        refused = severity is Severity.ERROR
        reason = self.texts(
            "cli.import.category_refused" if refused else "cli.import.category_kept",
            address=row.email,
            reason=unknown_categories(self.texts, unknown, self.site),
        )
        return Problem(self.source, reason, row.line, severity)


def _site_categories(store: Store, reader: SubscriberCsv) -> SiteCategories | None:
    """The site's categories, when the file has a categories column."""
    from feedsvc.newsletter.categories import site_categories

    if "categories" not in reader.columns:
        return None
    try:
        with store.read() as conn:
            return site_categories(conn, now())
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)


def _refuse_unknown_categories(
    file: Path, rows_of: Callable[[BinaryIO], SubscriberCsv], check: _CategoryCheck
) -> None:
    """--strict: read the whole file first; report every row whose categories no post
    has and stop (exit 1) before anything is written. Other bad rows are left to the
    import itself (or to --dry-run)."""
    from feedsvc.newsletter.subscriber_csv import BadRow

    refused = 0
    try:
        with file.open("rb") as raw:
            for item in rows_of(raw):
                if isinstance(item, BadRow):
                    continue
                problem = check.problem(item, Severity.ERROR)
                if problem is not None:
                    refused += 1
                    click.echo(problem_text(check.texts, problem), err=True)
    except CsvFormatError as exc:
        fail(check.texts("cli.import.nothing_imported", problem=str(exc)), EXIT_USAGE)
    except OSError as exc:
        fail(check.texts("cli.cannot_read", path=str(file), reason=str(exc)), EXIT_USAGE)
    if refused:
        fail(
            check.texts.plural("cli.import.strict_refused", refused, path=str(file)), EXIT_PROBLEMS
        )


@contextmanager
def _progress(texts: Texts, total: int) -> Iterator[Progress | None]:
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
        TextColumn(texts("cli.import.progress")),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        progress.add_task("import", total=total)
        yield progress


def _reporter(texts: Texts, progress: Progress | None) -> Callable[[Problem], None]:
    """How to print one bad row: above the bar on a terminal, else a line on stderr."""

    def report(problem: Problem) -> None:
        line = problem_text(texts, problem)
        if progress is not None:
            progress.console.print(line, markup=False, highlight=False)
        else:
            click.echo(line, err=True)

    return report


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--bom", is_flag=True, help="Start with a UTF-8 byte-order mark (for Excel).")
@click.pass_obj
def export(obj: Context, file: Path, bom: bool) -> None:
    """Write every subscriber to FILE as CSV (import's columns plus status, dates, consent).

    ``-`` writes to standard output. The file is replaced only when complete.
    """
    from feedsvc.newsletter.subscriber_csv import csv_lines, export_row
    from feedsvc.storage.subscribers import iter_subscribers

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
        click.echo(texts().plural("cli.export.wrote", count, path=str(file)))


def _write_atomically(path: Path, lines: Iterator[str], *, bom: bool) -> int:
    """Write ``lines`` to a temporary file beside ``path``, then rename it; lines written."""
    directory = path.resolve().parent
    if not directory.is_dir():
        fail(texts()("cli.export.no_folder", path=str(path), folder=str(directory)), EXIT_USAGE)
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
