"""Subscribers without I/O: addresses and single fields.

A subscriber to add (:class:`feedsvc.models.SubscriberInput`) is a shared value, and
the hash kept for a forgotten address is the store's own
(:func:`feedsvc.storage.subscribers.suppression_hash`): the store needs both and imports
nothing from here.

Addresses are validated with email-validator (syntax only, never DNS) and normalised: the
domain to its Unicode form, the whole address to NFC and lower case. Lower case is what
makes "unique case-insensitively" a plain unique index; mail systems that treat the part
before the @ case-sensitively exist only in theory.

Each field of a subscriber has a parser here that says what is wrong with a bad value
(ValueError) and a formatter for output; the CSV files of ``import`` and ``export`` are
read and written by :mod:`feedsvc.newsletter.subscriber_csv` with them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT

# Re-exported: callers catch it where they call normalise_address.
from feedsvc.errors import AddressError as AddressError
from feedsvc.models import DEFAULT_FREQUENCY, Frequency, Subscriber, SubscriberStatus

CATEGORY_SEPARATOR = ";"
NAME_MAX = 256
CONSENT_SOURCE_MAX = 256
# Lengths from RFC 5321 (what email-validator checks too); longer ones take the slow path.
_LOCAL_MAX = 64
_ADDRESS_MAX = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Unicode bidi controls (embeddings, overrides, isolates, marks): stripped from names.
_BIDI_CONTROLS = dict.fromkeys(
    [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
)


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


# --- single fields ------------------------------------------------------------------


def mask_address(address: str) -> str:
    """``kim@example.kr`` → ``k***@example.kr``: enough for a site owner to tell sign-ups
    apart in a log, not enough to harvest addresses from it."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mailbox_of(address: str) -> str:
    """The mailbox a normalised address delivers to, for per-mailbox limits: a ``+tag``
    dropped (``victim+1@example.com`` and ``victim@example.com`` are one mailbox)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    base = local.split("+", 1)[0]
    return f"{base or local}@{domain}"


def clean_name(raw: str) -> str | None:
    """A display name: NFC, bidi controls removed (they reorder the text around them),
    whitespace (line breaks too) collapsed; None when empty."""
    text = " ".join(unicodedata.normalize("NFC", raw).translate(_BIDI_CONTROLS).split())
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


def zone_like(name: str) -> str | None:
    """The time zone ``name`` most likely means: the same name in another case, or the
    zone of that city (``Seoul`` → ``Asia/Seoul``, ``new york`` → ``America/New_York``)."""
    wanted = name.strip().lower().replace(" ", "_")
    if not wanted:
        return None
    zones = _zone_names()
    exact = [zone for zone in zones if zone.lower() == wanted]
    city = [zone for zone in zones if zone.lower().rpartition("/")[2] == wanted]
    found = exact or city
    return found[0] if found else None


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


# --- output -------------------------------------------------------------------------


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
