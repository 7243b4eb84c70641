"""Post dates: front-matter values and file names → timezone-aware datetimes.

A date without a zone is in the site's time zone (``tz``); a date-only value is midnight.
Strings take the C-fast ISO parser first (``2024-01-02 10:00:00 +0900`` included), then
the plain looser forms (``2024/1/2 10:00``, ``… 10:00 UTC``), then what Ruby's
``Time.parse`` reads, as Jekyll does: ``Jan 29 2023``, ``29 Jan 2023 18:30``, RFC 2822,
``29.01.2023``, ``10:30 pm``, and text it does not understand left out, as in
``2023-01-29 18:30:22 2023 -0800`` (a stray year: the zone after it is not the time's
either, so the time is the site's local time, as Jekyll reads it).

The Ruby reading is in :mod:`feedsvc.content.ruby_time`.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

_DATE_PREFIX = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:-|$)")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d\d)-(\d\d)(?!\d)")
_DATE_TEXT = re.compile(
    r"(\d{4})[-/](\d\d?)[-/](\d\d?)"
    r"(?:[T ](\d\d?):(\d\d)(?::(\d\d)(?:[.,](\d{1,6})\d*)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?",
    re.IGNORECASE,
)


def to_datetime(value: object, tz: tzinfo) -> datetime | None:
    """A YAML/TOML date or a date string as an aware datetime; None if it is no date."""
    return read_date(value, tz)[0]


# A value read as a date: the moment (None: no date), and what of its text was left out
# (Ruby's reading ignores what it does not understand; the author should know). A plain
# tuple: one is made for every date of every post.
DateReading = tuple[datetime | None, str]
_NO_DATE: DateReading = (None, "")


def read_date(value: object, tz: tzinfo) -> DateReading:
    """Like :func:`to_datetime`, saying what part of a date string was not read."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=tz)), ""
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz), ""
    if not isinstance(value, str):
        return _NO_DATE
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)  # C-fast; 3.11 also takes "... 18:59:00 +0900"
    except ValueError:
        plain = _plain_datetime(text, tz)
        if plain is None:
            # The rare date none of the above reads: its module (two dozen patterns to
            # compile) is imported by the first such date, not by every build.
            from feedsvc.content.ruby_time import ruby_time

            return ruby_time(text, tz)
        moment = plain
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)), ""


def _plain_datetime(text: str, tz: tzinfo) -> datetime | None:
    """2024/1/2 10:00, ... 10:00 UTC: the usual forms ISO parsing refuses (read as Ruby
    reads them, without its general search)."""
    match = _DATE_TEXT.fullmatch(text)
    if match is None:
        return None
    y, mo, d, h, mi, s, frac, zone = match.groups()
    zone_info = tz if zone is None else _fixed_zone(zone.upper())
    micro = int((frac or "0").ljust(6, "0"))
    try:
        return datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, zone_info
        )
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=64)
def _fixed_zone(zone: str) -> tzinfo:
    """'Z', 'UTC', '+0900', '-05:30' → tzinfo (cached: a blog uses one or two)."""
    if zone in ("Z", "UTC", "GMT"):
        return UTC
    minutes = int(zone[1:3]) * 60 + (int(zone[-2:]) if len(zone) > 3 else 0)
    return timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))


# --- file names --------------------------------------------------------------------------


def name_prefix_date(stem: str, tz: tzinfo) -> tuple[datetime | None, str]:
    """The date a file name starts with ('2024-01-02-my-post'), and the name without it.

    A name that is only a date keeps it as its name; an impossible date (2024-13-45) is
    just part of the name.
    """
    prefix = _DATE_PREFIX.match(stem)
    if prefix is None:
        return None, stem
    moment = _name_date(prefix, tz)
    if moment is not None and prefix.end() < len(stem):
        return moment, stem[prefix.end() :]
    return moment, stem


def date_in_name(name: str, tz: tzinfo) -> datetime | None:
    """The first real ``YYYY-MM-DD`` anywhere in a file name, at midnight in ``tz``."""
    for match in _DATE_IN_NAME.finditer(name):
        moment = _name_date(match, tz)
        if moment is not None:
            return moment
    return None


def _name_date(match: re.Match[str], tz: tzinfo) -> datetime | None:
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=tz)
    except ValueError:
        return None  # 2024-13-45 in a name is just part of the name
