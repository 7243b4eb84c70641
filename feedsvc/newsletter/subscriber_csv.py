"""Subscriber CSV files without I/O: rows in (``import``) and out (``export``).

The parser reads lines it is given (a file opened with ``newline=""``), one row at a
time, and yields a :class:`~feedsvc.models.SubscriberInput` for every good row and a
:class:`BadRow` (line number and reason) for every other one; the caller stores the first
and reports the second.

    email,name,frequency,categories,timezone
    minji@example.kr,구독자 김민지,weekly,부산;스마트시티,Asia/Seoul

``email`` is required; every other column is optional. A column that is missing leaves
that field of an existing subscriber as it is; an empty cell in a column that is present
means the default (no name, ``daily``, every category, the site's time zone). ``export``
writes the same columns plus status, dates and consent, and ``import`` reads them back,
so that export → import → export gives the same file.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo

from feedsvc.errors import AddressError, CsvFormatError
from feedsvc.models import DEFAULT_FREQUENCY, Subscriber, SubscriberInput, SubscriberStatus
from feedsvc.newsletter.subscribers import (
    CATEGORY_SEPARATOR,
    clean_consent_source,
    clean_name,
    format_time,
    normalise_address,
    parse_categories,
    parse_frequency,
    parse_ip,
    parse_status,
    parse_time,
    parse_timezone,
)

# What `import` reads: the documented columns (README, Subscribers), then what `export` adds.
IMPORT_COLUMNS = ("email", "name", "frequency", "categories", "timezone")
EXPORT_COLUMNS = (
    *IMPORT_COLUMNS,
    "status",
    "created",
    "confirmed",
    "unsubscribed",
    "consent_source",
    "consent_ip",
)


# --- input --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadRow:
    """A CSV row that was not imported: where, and why (with what to do)."""

    line: int
    reason: str
    email: str | None = None


def check_encoding(encoding: str) -> str:
    """``encoding`` if a CSV file can be read in it line by line, else ValueError.

    Lines are split on the newline byte, so the encoding must write ASCII as ASCII (UTF-8,
    CP949/EUC-KR and the like do; UTF-16 does not).
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r} (e.g. utf-8 or cp949)") from None
    try:
        plain = codecs.decode(b"email,name\n", encoding) == "email,name\n"
    except UnicodeDecodeError:
        plain = False
    if not plain:
        raise ValueError(f"{encoding} does not keep ASCII as is; save the file as UTF-8")
    return encoding


def decoded_lines(chunks: Iterable[bytes], *, encoding: str, source: str) -> Iterator[str]:
    """Text lines from a file's byte lines (what iterating ``open(path, "rb")`` gives).

    Decoding line by line, not in blocks, is what lets an undecodable byte be reported
    with its line number: :class:`CsvFormatError`, with what to do about it.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 0
    for line, chunk in enumerate(chunks, 1):
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise CsvFormatError(source, line, _undecodable(encoding, exc)) from None
        yield text
    try:
        rest = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise CsvFormatError(source, line, _undecodable(encoding, exc)) from None
    if rest:
        yield rest


def _undecodable(encoding: str, exc: UnicodeDecodeError) -> str:
    return (
        f"the file is not valid {encoding} ({exc.reason}); save it as UTF-8 "
        "(Excel: “CSV UTF-8”) or name the encoding it has, e.g. --encoding cp949"
    )


class SubscriberCsv:
    """Subscriber rows from CSV lines, validated one by one (streaming).

    ``lines`` is a text file opened with ``newline=""`` (or any iterable of lines).
    Reading the header happens here and raises :class:`CsvFormatError` when it is
    unusable. Iterating yields a :class:`SubscriberInput` or a :class:`BadRow` per row;
    blank lines are skipped. ``line`` is the line the current row starts on.

    ``updates`` names the fields an existing subscriber takes from the file: those of the
    columns present (``email`` identifies; ``created`` and consent are never overwritten).
    """

    def __init__(
        self,
        lines: Iterable[str],
        *,
        source: str,
        assume_timezone: tzinfo = UTC,
        consent_source: str | None = None,
        allow_test_domains: bool = False,
    ) -> None:
        self.source = source
        self.line = 0
        self._reader = csv.reader(lines, strict=True)
        self._assume = assume_timezone
        self._consent_source = consent_source
        self._allow_test = allow_test_domains
        self._first_line: dict[str, int] = {}
        self.columns = self._read_header()
        # Where each known column is in a row (None: not in this file), in EXPORT_COLUMNS order.
        self._at = tuple(
            self.columns.index(name) if name in self.columns else None for name in EXPORT_COLUMNS
        )
        self.updates = frozenset(self.columns) - {
            "email",
            "created",
            "consent_source",
            "consent_ip",
        }

    def _read_header(self) -> tuple[str, ...]:
        try:
            header = next(self._reader, None)
        except csv.Error as exc:
            raise CsvFormatError(self.source, 1, f"the header is not valid CSV ({exc})") from None
        self.line = self._reader.line_num
        if not header or not any(cell.strip() for cell in header):
            raise CsvFormatError(
                self.source, 1, "expected a header line such as " + ",".join(IMPORT_COLUMNS)
            )
        names = [cell.strip().lower().lstrip("\ufeff") for cell in header]
        unknown = [name for name in names if name not in EXPORT_COLUMNS]
        if unknown:
            raise CsvFormatError(
                self.source,
                1,
                "unknown column(s) "
                + ", ".join(repr(n) for n in unknown)
                + "; expected "
                + ",".join(IMPORT_COLUMNS)
                + " (and "
                + ",".join(EXPORT_COLUMNS[len(IMPORT_COLUMNS) :])
                + " as written by export); rename or remove them",
            )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise CsvFormatError(
                self.source, 1, "column(s) given twice: " + ", ".join(repr(n) for n in repeated)
            )
        if "email" not in names:
            raise CsvFormatError(self.source, 1, "no 'email' column; it is required")
        return tuple(names)

    def __iter__(self) -> Iterator[SubscriberInput | BadRow]:
        width = len(self.columns)
        while True:
            start = self._reader.line_num + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.line = start
                yield BadRow(start, f"not valid CSV ({exc}); fix the quoting")
                continue
            self.line = start
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                yield BadRow(
                    start,
                    f"{len(cells)} fields, but the header has {width}; "
                    "quote values that contain commas",
                )
                continue
            yield self._row(start, cells)

    def _row(self, line: int, cells: list[str]) -> SubscriberInput | BadRow:
        (
            email_at,
            name_at,
            frequency_at,
            categories_at,
            timezone_at,
            status_at,
            created_at,
            confirmed_at,
            unsubscribed_at,
            source_at,
            ip_at,
        ) = self._at
        assert email_at is not None  # checked with the header
        raw_email = cells[email_at]
        try:
            email = normalise_address(raw_email, allow_test_domains=self._allow_test)
        except AddressError as exc:
            shown = raw_email.strip()
            if not shown:
                return BadRow(line, "the email cell is empty; every row needs an address")
            return BadRow(line, f"invalid address {shown!r}: {exc.reason}")
        assume = self._assume
        try:
            row = SubscriberInput(
                email,
                None if name_at is None else clean_name(cells[name_at]),
                DEFAULT_FREQUENCY if frequency_at is None else parse_frequency(cells[frequency_at]),
                () if categories_at is None else parse_categories(cells[categories_at]),
                None if timezone_at is None else parse_timezone(cells[timezone_at]),
                SubscriberStatus.ACTIVE if status_at is None else parse_status(cells[status_at]),
                None if created_at is None else parse_time(cells[created_at], assume),
                None if confirmed_at is None else parse_time(cells[confirmed_at], assume),
                None if unsubscribed_at is None else parse_time(cells[unsubscribed_at], assume),
                (None if source_at is None else clean_consent_source(cells[source_at]))
                or self._consent_source,
                None if ip_at is None else parse_ip(cells[ip_at]),
                line,
            )
        except ValueError as exc:
            return BadRow(line, f"{email}: {exc}", email)
        first = self._first_line.setdefault(email, line)
        if first != line:
            return BadRow(
                line,
                f"{email} is a duplicate of line {first} (only the first is imported)",
                email,
            )
        return row


# --- output -------------------------------------------------------------------------


def export_row(subscriber: Subscriber) -> list[str]:
    """The CSV cells of ``subscriber``, in :data:`EXPORT_COLUMNS` order."""
    return [
        subscriber.email,
        subscriber.name or "",
        subscriber.frequency.value,
        CATEGORY_SEPARATOR.join(subscriber.categories),
        subscriber.timezone or "",
        subscriber.status.value,
        format_time(subscriber.created),
        format_time(subscriber.confirmed),
        format_time(subscriber.unsubscribed),
        subscriber.consent_source or "",
        subscriber.consent_ip or "",
    ]


def csv_lines(
    rows: Iterable[Sequence[str]], *, header: Sequence[str] = EXPORT_COLUMNS
) -> Iterator[str]:
    """CSV text, one record at a time (header first), with ``\\r\\n`` line ends (RFC 4180)."""
    buffer = _LineBuffer()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.take()
    for row in rows:
        writer.writerow(row)
        yield buffer.take()


class _LineBuffer:
    """The smallest file-like object csv.writer accepts; hands back what it wrote."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text
