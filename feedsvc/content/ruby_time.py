"""Dates as Ruby's ``Time.parse`` reads them, as Jekyll does (pure): the reading
:func:`feedsvc.content.dates.read_date` falls back on when no plain form fits.

``Jan 29 2023``, ``29 Jan 2023 18:30``, RFC 2822, ``29.01.2023``, ``10:30 pm``; text it
does not understand is left out, as in ``2023-01-29 18:30:22 2023 -0800`` (a stray year:
the zone after it is not the time's either, so the time is the site's local time, as
Jekyll reads it).

The reading follows ``Date._parse`` (ext/date/date_parse.c): the parts are looked
for in its order (weekday, time with its zone, then the first date form that matches),
each taking its text out of the string before the next looks; the zone is read as
``Time.zone_offset`` reads it (numeric, RFC 822 names, the site zone's own
abbreviations), an unknown one leaving the time local. Unlike Ruby, a value without a
year is no date (Ruby takes the upper parts from the clock: the post would move every
year), and an impossible day is refused rather than rolled into the next month.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

# As dates.DateReading: the moment (None: no date), and the text left out.
_NO_DATE: tuple[datetime | None, str] = (None, "")

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_ERA = r"(?:\b(?:c(?:e|\.e\.)|b(?:ce|\.c\.e\.)|a(?:d|\.d\.)|b(?:c|\.c\.))(?![a-z]))?"
# Every character but these is a separator (a space) to Date._parse.
_NOT_DATE_CHARS = re.compile(r"[^-+',./:@\w\[\]]+|_+")
_WEEKDAY = re.compile(r"\b(?:sun|mon|tue|wed|thu|fri|sat)[^-/\d\s]*", re.IGNORECASE)
_TIME = re.compile(
    r"((?<!\d)\d+\s*"
    r"(?:(?::\s*\d+(?:\s*:\s*\d+(?:[,.]\d*)?)?|h(?:\s*\d+m?(?:\s*\d+s?)?)?)"
    r"(?:\s*[ap](?:m\b|\.m\.))?"
    r"|[ap](?:m\b|\.m\.)))"
    r"(?:\s*((?:gmt|utc?)?[-+]\d+(?:[,.:]\d+(?::\d+)?)?"
    r"|(?:[^\W\d_]|[.\s])+(?:standard|daylight)\stime\b"
    r"|[^\W\d_]+(?:\sdst)?\b))?",
    re.IGNORECASE,
)
_TIME_PARTS = re.compile(
    r"(\d+)h?(?:\s*:?\s*(\d+)m?(?:\s*:?\s*(\d+)(?:[,.](\d+))?s?)?)?"
    r"(?:\s*([ap])(?:m\b|\.m\.))?",
    re.IGNORECASE,
)
_EU = re.compile(
    rf"('?(?<!\d)\d+)[^-\d\s]*\s*({_MONTHS})[^-\d\s']*"
    rf"(?:\s*{_ERA}\s*('?-?\d+(?:(?:st|nd|rd|th)\b)?))?",
    re.IGNORECASE,
)
_US = re.compile(
    rf"\b({_MONTHS})[^-\d\s']*\s*('?\d+)[^-\d\s']*(?:\s*,?\s*{_ERA}\s*('?-?\d+))?",
    re.IGNORECASE,
)
_ISO = re.compile(r"('?[-+]?(?<!\d)\d+)-(\d+)-('?-?\d+)")
_VMS_DAY_FIRST = re.compile(rf"('?-?(?<!\d)\d+)-({_MONTHS})[^-/.]*-('?-?\d+)", re.IGNORECASE)
_VMS_MONTH_FIRST = re.compile(rf"\b({_MONTHS})[^-/.]*-('?-?\d+)(?:-('?-?\d+))?", re.IGNORECASE)
_SLASH = re.compile(r"('?-?(?<!\d)\d+)/\s*('?\d+)(?:\D\s*('?-?\d+))?")
_DOT = re.compile(r"('?-?(?<!\d)\d+)\.\s*('?\d+)\.\s*('?-?\d+)")
_APOSTROPHE_YEAR = re.compile(r"'(\d+)\b")
_MONTH_ALONE = re.compile(rf"\b({_MONTHS})\S*", re.IGNORECASE)
_ORDINAL_DAY = re.compile(r"((?<!\d)\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_DIGITS = re.compile(
    r"([-+]?)((?<!\d)\d{2,14})(?:\s*t?\s*(\d{2,6})?(?:[,.](\d*))?)?"
    r"(?:\s*(z\b|[-+]\d{1,4}\b|\[[-+]?\d[^\]]*\]))?",
    re.IGNORECASE,
)
_FRAGMENT = re.compile(r"\s*(\d{1,2})\s*")
_LEADING_NUMBER = re.compile(r"[^-+\d]*([-+]?\d+)")
_FIRST_DIGITS = re.compile(r"\d+")
# Time.zone_offset's names (RFC 822 and the military letters), in hours.
_ZONE_HOURS = {
    "UTC": 0, "Z": 0, "UT": 0, "GMT": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8, "I": 9,
    "K": 10, "L": 11, "M": 12,
    "N": -1, "O": -2, "P": -3, "Q": -4, "R": -5, "S": -6, "T": -7, "U": -8, "V": -9,
    "W": -10, "X": -11, "Y": -12,
}  # fmt: skip
_NUMERIC_ZONE = re.compile(r"([+-])(\d\d):?(\d\d)")
_LONGEST_DATE = 100


@dataclass(slots=True)
class _Parts:
    """What Date._parse found (None: not given); ``frac`` in microseconds."""

    year: int | None = None
    mon: int | None = None
    mday: int | None = None
    hour: int | None = None
    min: int | None = None
    sec: int | None = None
    frac: int | None = None
    zone: str | None = None
    full_year: bool = False  # written with its century (or a sign): no completion

    def found(self) -> bool:
        clock = (self.hour, self.min, self.sec, self.frac)
        return any(v is not None for v in (self.year, self.mon, self.mday, *clock))


def ruby_time(text: str, tz: tzinfo) -> tuple[datetime | None, str]:
    """``text`` read as Ruby's ``Time.parse`` would, with the site's zone as local time."""
    if len(text) > _LONGEST_DATE:
        return _NO_DATE  # no date is this long; and the search's work grows with it
    found = _ruby_parse(text)
    if found is None:
        return _NO_DATE
    parts, rest = found
    if parts.year is None:
        return _NO_DATE  # Ruby would take the year (and what else is missing) from the clock
    ignored = [word for word in rest.split() if any(c.isdigit() for c in word)]
    zone_info: tzinfo = tz
    if parts.zone is not None:
        offset = _zone_offset(parts.zone, parts.year, tz)
        if offset is not None:
            zone_info = offset
        elif parts.zone.isupper() or any(c.isdigit() for c in parts.zone):
            ignored.insert(0, parts.zone)  # a zone, not understood: the time stays local
    try:
        moment = datetime(
            parts.year,
            parts.mon or 1,
            parts.mday or 1,
            parts.hour or 0,
            parts.min or 0,
            parts.sec or 0,
            parts.frac or 0,
            zone_info,
        )
    except (ValueError, OverflowError):
        return _NO_DATE
    return moment, " ".join(ignored)


def _ruby_parse(text: str) -> tuple[_Parts, str] | None:
    """Date._parse's parts of ``text``, and the text no part took; None if none was found."""
    line = _NOT_DATE_CHARS.sub(" ", text)
    parts = _Parts()
    line = _take(_WEEKDAY, line, lambda match, parts: True, parts)
    line = _take(_TIME, line, _time, parts)
    for pattern, read in _DATE_FORMS:
        rest = _take(pattern, line, read, parts)
        if rest is not line:
            line = rest
            break
    fragment = _FRAGMENT.fullmatch(line)
    if fragment is not None:  # a lone number: the day of a time, or the hour of a day
        number = int(fragment[1])
        if parts.hour is not None and parts.mday is None and 1 <= number <= 31:
            parts.mday = number
        elif parts.mday is not None and parts.hour is None and 0 <= number <= 24:
            parts.hour = number
        line = ""
    if not parts.found():
        return None
    if parts.year is not None and not parts.full_year and 0 <= parts.year <= 99:
        parts.year += 1900 if parts.year >= 69 else 2000  # as Date._parse completes it
    return parts, line


_Reader = Callable[[re.Match[str], _Parts], bool]


def _take(pattern: re.Pattern[str], line: str, read: _Reader, parts: _Parts) -> str:
    """``line`` with the first match of ``pattern`` read into ``parts`` and taken out (a
    space left in its place); ``line`` itself when nothing matched or the reader refused."""
    match = pattern.search(line)
    if match is None or not read(match, parts):
        return line
    return line[: match.start()] + " " + line[match.end() :]


def _time(match: re.Match[str], parts: _Parts) -> bool:
    time = _TIME_PARTS.match(match[1])
    if time is None:
        return False
    hour_text, minute, second, fraction, half = time.groups()
    hour = int(hour_text)
    if half is not None:
        hour = hour % 12 + (12 if half in "pP" else 0)
    parts.hour = hour
    parts.min = None if minute is None else int(minute)
    parts.sec = None if second is None else int(second)
    parts.frac = None if fraction is None else int(fraction[:6].ljust(6, "0"))
    parts.zone = match[2]
    return True


def _month_number(name: str) -> str:
    return str(_MONTHS.split("|").index(name[:3].lower()) + 1)


def _day_month_year(match: re.Match[str], parts: _Parts) -> bool:
    return _assign(parts, match[3], _month_number(match[2]), match[1])


def _month_day_year(match: re.Match[str], parts: _Parts) -> bool:
    return _assign(parts, match[3], _month_number(match[1]), match[2])


def _year_month_day(match: re.Match[str], parts: _Parts) -> bool:
    return _assign(parts, match[1], match[2], match[3])


def _apostrophe_year(match: re.Match[str], parts: _Parts) -> bool:
    parts.year = int(match[1])
    return True


def _month_alone(match: re.Match[str], parts: _Parts) -> bool:
    parts.mon = int(_month_number(match[1]))
    return True


def _ordinal_day(match: re.Match[str], parts: _Parts) -> bool:
    parts.mday = int(match[1])
    return True


def _assign(parts: _Parts, y: str | None, m: str | None, d: str | None) -> bool:
    """Date._parse's ``s3e``: three numbers in the order written → year, month, day,
    telling a year by its length (over 2 digits) or its apostrophe ('23)."""
    if y is not None and m is not None and d is None:
        y, m, d = None, y, m  # two numbers: month and day
    if y is None and d is not None and (len(d) > 2 or d.startswith("'")):
        y, d = d, None
    if y is not None:
        number = _LEADING_NUMBER.match(y)
        if number is not None and number.end() < len(y):  # '29th': a day, not a year
            y, d = d, number[1]
    if m is not None and (m.startswith("'") or len(m) > 2):
        y, m, d = m, d, y  # the year first: 2023/01/29
    if d is not None and (d.startswith("'") or len(d) > 2):
        y, d = d, y  # the year last: 29/01/2023
    if y is not None:
        number = _LEADING_NUMBER.match(y)
        if number is not None:
            parts.year = int(number[1])
            parts.full_year = number[1][0] in "+-" or len(number[1].lstrip("+-")) > 2
    parts.mon = _number_in(m)
    parts.mday = _number_in(d)
    return True


def _number_in(text: str | None) -> int | None:
    number = None if text is None else _FIRST_DIGITS.search(text)
    return None if number is None else int(number[0])


def _digits(match: re.Match[str], parts: _Parts) -> bool:
    """A run of digits (20230129, 20230129T1830, …), read by its length as Ruby does."""
    sign, run, clock, fraction, zone = match.groups()
    size = len(run)
    if clock is None and fraction is not None:
        return False  # counted from the end as a time of day: no date Ruby reads
    if size == 2:
        parts.mday = int(run)
    elif size == 4:
        parts.mon, parts.mday = int(run[:2]), int(run[2:])
    elif size == 6:
        parts.year = -int(run[:2]) if sign == "-" else int(run[:2])
        parts.mon, parts.mday = int(run[2:4]), int(run[4:])
    elif size in (8, 10, 12, 14):
        parts.year = -int(run[:4]) if sign == "-" else int(run[:4])
        parts.full_year = True
        parts.mon, parts.mday = int(run[4:6]), int(run[6:8])
        _set_clock(parts, run[8:])
    else:
        return False  # a day of the year: Time.parse does not use it
    if clock is not None and len(clock) in (2, 4, 6):
        _set_clock(parts, clock)
    if fraction:
        parts.frac = int(fraction[:6].ljust(6, "0"))
    if zone is not None and not zone.startswith("["):
        parts.zone = zone
    return True


def _set_clock(parts: _Parts, digits: str) -> None:
    """'1830' → hour 18, minute 30: two digits each, as far as given."""
    if len(digits) >= 2:
        parts.hour = int(digits[:2])
    if len(digits) >= 4:
        parts.min = int(digits[2:4])
    if len(digits) >= 6:
        parts.sec = int(digits[4:6])


_DATE_FORMS: tuple[tuple[re.Pattern[str], _Reader], ...] = (
    (_EU, _day_month_year),
    (_US, _month_day_year),
    (_ISO, _year_month_day),
    (_VMS_DAY_FIRST, _day_month_year),
    (_VMS_MONTH_FIRST, _month_day_year),
    (_SLASH, _year_month_day),
    (_DOT, _year_month_day),
    (_APOSTROPHE_YEAR, _apostrophe_year),
    (_MONTH_ALONE, _month_alone),
    (_ORDINAL_DAY, _ordinal_day),
    (_DIGITS, _digits),
)


def _zone_offset(zone: str, year: int, tz: tzinfo) -> tzinfo | None:
    """``Time.zone_offset``: ±hh:mm, ±hhmm, ±hh, RFC 822 names, or the abbreviations of
    the site's own zone (KST for Asia/Seoul) in that year; None for any other."""
    name = zone.upper()
    numeric = _NUMERIC_ZONE.fullmatch(name)
    try:
        if numeric is not None:
            minutes = int(numeric[2]) * 60 + int(numeric[3])
            return timezone(timedelta(minutes=-minutes if numeric[1] == "-" else minutes))
        if re.fullmatch(r"[+-]\d\d", name):
            return timezone(timedelta(hours=int(name)))
    except ValueError:
        return None  # 24 hours or more
    if name in _ZONE_HOURS:
        hours = _ZONE_HOURS[name]
        return UTC if hours == 0 else timezone(timedelta(hours=hours))
    for month in (1, 7):
        local = datetime(year, month, 1, tzinfo=tz)
        if (local.tzname() or "").upper() == name:
            offset = local.utcoffset()
            return timezone(offset) if offset is not None else None
    return None
