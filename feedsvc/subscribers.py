"""Subscribers without I/O: addresses, CSV rows in and out, suppression hashes.

Addresses are validated with email-validator (syntax only, never DNS) and normalised: the
domain to its Unicode form, the whole address to NFC and lower case. Lower case is what
makes "unique case-insensitively" a plain unique index; mail systems that treat the part
before the @ case-sensitively exist only in theory.

The CSV parser reads lines it is given (a file opened with ``newline=""``), one row at a
time, and yields a :class:`SubscriberInput` for every good row and a :class:`BadRow` (line
number and reason) for every other one; the caller stores the first and reports the second.

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
import functools
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT

from feedsvc.errors import FeedsvcError
from feedsvc.models import Frequency, Subscriber, SubscriberStatus

# What `import` reads: the SPEC's columns, then what `export` adds.
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
DEFAULT_FREQUENCY = Frequency.DAILY
CATEGORY_SEPARATOR = ";"
NAME_MAX = 256
CONSENT_SOURCE_MAX = 256
# Lengths from RFC 5321 (what email-validator checks too); longer ones take the slow path.
_LOCAL_MAX = 64
_ADDRESS_MAX = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A versioned prefix, so the hash is feedsvc's own and can change scheme one day.
_SUPPRESSION_PREFIX = b"feedsvc-suppression-v1\x00"


class AddressError(FeedsvcError):
    """An email address that cannot be used; the message names it and says why."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address!r} is not a usable email address: {reason}")


class CsvFormatError(FeedsvcError):
    """A subscriber CSV that cannot be read at all (header, encoding): nothing is imported."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")


# --- addresses ----------------------------------------------------------------------


def normalise_address(raw: str, *, allow_test_domains: bool = False) -> str:
    """The canonical, lower-case form of ``raw``, or AddressError saying what is wrong.

    Internationalised addresses are accepted: a Unicode domain (stored in Unicode, sent in
    its IDNA form) and a Unicode part before the @ (which needs a mail server with
    SMTPUTF8). ``allow_test_domains`` accepts the reserved ``.test`` domain (RFC 2606),
    for trials and benchmarks; other reserved names (``.invalid``, ``localhost``) never.
    """
    text = raw.strip()
    if not text:
        raise AddressError(raw, "it is empty")
    fast = _fast_normalise(text, allow_test_domains)
    if fast is not None:
        return fast
    try:
        result = validate_email(
            text, check_deliverability=False, test_environment=allow_test_domains
        )
    except EmailNotValidError as exc:
        raise AddressError(text, str(exc)) from None
    lowered = result.normalized.lower()
    if lowered != result.normalized and not lowered.isascii():
        # Lower-casing some letters (İ, Σ) changes their length or normal form: check again.
        try:
            lowered = validate_email(
                lowered, check_deliverability=False, test_environment=allow_test_domains
            ).normalized
        except EmailNotValidError as exc:
            raise AddressError(text, f"in lower case, {exc}") from None
    return lowered


def _fast_normalise(text: str, allow_test_domains: bool) -> str | None:
    """The common case without a full parse, or None to take email-validator's full path.

    For a plain ASCII dot-atom before the @ (letters, digits, ``!#$%&'*+/=?^_`{|}~-`` and
    single dots), email-validator's checks on that part are exactly the dot-atom rule and
    the lengths, and its verdict on the domain does not depend on it. So the domain alone
    goes through email-validator, once per distinct domain (an import of 100,000 addresses
    at one provider validates one domain), and the result is the same as the full path's:
    tests/test_subscribers.py checks that on generated addresses.
    """
    if not text.isascii() or text.count("@") != 1 or len(text) > _ADDRESS_MAX:
        return None
    local, domain = text.split("@")
    if len(local) > _LOCAL_MAX or DOT_ATOM_TEXT.match(local) is None:
        return None
    checked = _checked_domain(domain.lower(), allow_test_domains)
    if checked is None:
        return None
    return f"{local.lower()}@{checked}"


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str, allow_test_domains: bool) -> str | None:
    """The normalised ASCII ``domain``, or None when it needs the full path (IDN, errors).

    A pure function's memo, not shared state: the answer for a domain never changes.
    """
    try:
        result = validate_email(
            "x@" + domain, check_deliverability=False, test_environment=allow_test_domains
        )
    except EmailNotValidError:
        return None  # the full path raises, with the full address in the message
    return result.domain if result.domain == result.ascii_domain else None


def suppression_hash(email: str) -> str:
    """The hash kept for a forgotten address (``email`` normalised): SHA-256, hex.

    Unsalted, so that any store recognises it and an import can be checked against it; the
    price is that someone holding the store can test a guessed address. A keyed hash would
    tie suppressions to the secret key and lose them when it changes.
    """
    return hashlib.sha256(_SUPPRESSION_PREFIX + email.encode("utf-8")).hexdigest()


# --- single fields ------------------------------------------------------------------


def clean_name(raw: str) -> str | None:
    """A display name: NFC, whitespace (line breaks too) collapsed; None when empty."""
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    if not text:
        return None
    if _CONTROL.search(text):
        raise ValueError("the name contains control characters; remove them")
    if len(text) > NAME_MAX:
        raise ValueError(f"the name is {len(text)} characters long; at most {NAME_MAX} fit")
    return text


_FREQUENCIES = {f.value: f for f in Frequency}
_STATUSES = {s.value: s for s in SubscriberStatus}


def parse_frequency(raw: str) -> Frequency:
    """``immediate``, ``daily`` or ``weekly`` (any case); empty means daily."""
    exact = _FREQUENCIES.get(raw)
    if exact is not None:
        return exact
    text = raw.strip().lower()
    if not text:
        return DEFAULT_FREQUENCY
    try:
        return Frequency(text)
    except ValueError:
        choices = ", ".join(f.value for f in Frequency)
        raise ValueError(f"unknown frequency {raw.strip()!r} (use {choices})") from None


def parse_status(raw: str) -> SubscriberStatus:
    """A subscriber status (any case); empty means active."""
    exact = _STATUSES.get(raw)
    if exact is not None:
        return exact
    text = raw.strip().lower()
    if not text:
        return SubscriberStatus.ACTIVE
    try:
        return SubscriberStatus(text)
    except ValueError:
        choices = ", ".join(s.value for s in SubscriberStatus)
        raise ValueError(f"unknown status {raw.strip()!r} (use {choices})") from None


def parse_categories(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Category names from ``a;b;c`` (or a list): NFC, trimmed, duplicates dropped.

    Names are compared case-insensitively for duplicates, and the first spelling kept.
    """
    if isinstance(raw, str):
        return _parse_category_text(raw) if raw else ()
    return _clean_categories(raw)


@functools.lru_cache(maxsize=4096)
def _parse_category_text(raw: str) -> tuple[str, ...]:
    # A memo: a list of subscribers repeats a few hundred combinations of categories.
    return _clean_categories(raw.split(CATEGORY_SEPARATOR))


def _clean_categories(parts: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    seen: set[str] = set()
    for part in parts:
        name = " ".join(unicodedata.normalize("NFC", part).split())
        if not name:
            continue
        if CATEGORY_SEPARATOR in name or _CONTROL.search(name):
            raise ValueError(f"the category {name!r} contains ';' or control characters")
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            names.append(name)
    return tuple(names)


def clean_consent_source(raw: str) -> str | None:
    """Where consent came from ("web", "import FILE"): one line, at most 256 characters."""
    text = " ".join(raw.split())
    if _CONTROL.search(text):
        raise ValueError("consent_source contains control characters; remove them")
    if len(text) > CONSENT_SOURCE_MAX:
        raise ValueError(f"consent_source is longer than {CONSENT_SOURCE_MAX} characters")
    return text or None


def parse_ip(raw: str) -> str | None:
    """An IPv4 or IPv6 address (consent_ip), normalised; empty means None."""
    text = raw.strip()
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"consent_ip {text!r} is not an IP address") from None


def parse_timezone(raw: str) -> str | None:
    """An IANA time zone name, checked; empty means None (the site's zone)."""
    text = raw.strip()
    if not text:
        return None
    problem = _timezone_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


@functools.lru_cache(maxsize=1024)
def _timezone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone, or None (a pure function's memo)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    else:
        return None
    hint = "an IANA name such as Asia/Seoul or UTC"
    matches = [zone for zone in _zone_names() if zone.lower() == name.lower()]
    if matches:
        hint = matches[0]
    return f"unknown time zone {name!r} (did you mean {hint}?)"


@functools.lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def parse_time(raw: str, assume: tzinfo) -> datetime | None:
    """An ISO 8601 date or date-time; one without a zone is in ``assume``. Empty → None."""
    text = raw.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date; use ISO 8601 such as 2024-03-01T09:30:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=assume)
    return moment.astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    """A stored time for CSV and JSON: ISO 8601 in UTC with ``Z``; empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriberInput:
    """One subscriber to add or update, from a CSV row (``line``) or the command line.

    Dates are None where not given: the store fills ``created`` with the time of the
    import, and ``unsubscribed`` with it when the status is unsubscribed.
    """

    email: str
    name: str | None = None
    frequency: Frequency = DEFAULT_FREQUENCY
    categories: tuple[str, ...] = ()
    timezone: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    created: datetime | None = None
    confirmed: datetime | None = None
    unsubscribed: datetime | None = None
    consent_source: str | None = None
    consent_ip: str | None = None
    line: int | None = None


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


def subscriber_json(subscriber: Subscriber) -> dict[str, object]:
    """``subscriber`` as a JSON-ready mapping (``list --format json``)."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "frequency": subscriber.frequency.value,
        "categories": list(subscriber.categories),
        "timezone": subscriber.timezone,
        "status": subscriber.status.value,
        "created": format_time(subscriber.created),
        "confirmed": format_time(subscriber.confirmed) or None,
        "unsubscribed": format_time(subscriber.unsubscribed) or None,
        "consent_source": subscriber.consent_source,
        "consent_ip": subscriber.consent_ip,
    }


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
