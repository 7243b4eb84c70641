"""A fast path for the simple TOML that Hugo front matter is; tomllib for everything else.

tomllib is pure Python: ~25 µs a file, most of what a Hugo-style post costs to read.
Most ``+++`` front matter is ``key = value`` lines whose values are strings without
escapes, one-line arrays of such strings, booleans, integers and dates. ``load`` handles
exactly that and returns ``None`` for anything else (tables, dotted or quoted keys,
comments, escapes, floats, multi-line values), so the caller falls back to tomllib. The
values are built as tomllib builds them; the tests check it on a generated corpus and
with hypothesis.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

_LINE = re.compile(r"[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*(.*)")
# Characters TOML refuses in strings: C0 controls but tab, and DEL.
_BASIC = re.compile(r'"([^"\\\x00-\x08\x0a-\x1f\x7f]*)"')
_LITERAL = re.compile(r"'([^'\x00-\x08\x0a-\x1f\x7f]*)'")
_ITEM = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"'
_ARRAY = re.compile(rf"\[[ \t]*(?:(?:{_ITEM}[ \t]*,[ \t]*)*{_ITEM}[ \t]*(?:,[ \t]*)?)?\]")
_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
# tomllib's own date-time grammar (tomllib._re.RE_DATETIME), anchored at both ends.
_DATETIME = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(?:[Tt ]([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,6})[0-9]*)?"
    r"(?:([Zz])|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))?)?"
)


# Control flow within this module (the fast path gives up for tomllib), not an error.
class _NotSimpleToml(Exception):
    """The text uses TOML beyond the fast path."""


def _value(text: str) -> Any:
    first = text[:1]
    if first == '"':
        match = _BASIC.fullmatch(text)
        if match is not None:
            return match.group(1)
    elif first == "'":
        match = _LITERAL.fullmatch(text)
        if match is not None:
            return match.group(1)
    elif first == "[":
        if _ARRAY.fullmatch(text):
            return _BASIC.findall(text)
    elif text == "true":
        return True
    elif text == "false":
        return False
    else:
        match = _DATETIME.fullmatch(text)
        if match is not None:
            return _datetime(match)
        if _INTEGER.fullmatch(text):
            return int(text)
    raise _NotSimpleToml


def _datetime(match: re.Match[str]) -> date | datetime:
    """As tomllib's ``match_to_datetime``; an impossible date raises ValueError."""
    year, month, day, hour, minute, sec, micros, zulu, sign, tz_hour, tz_minute = match.groups()
    if hour is None:
        return date(int(year), int(month), int(day))
    tz: tzinfo | None = None
    if sign:
        factor = 1 if sign == "+" else -1
        offset = timedelta(hours=factor * int(tz_hour), minutes=factor * int(tz_minute))
        tz = timezone(offset)
    elif zulu:
        tz = UTC
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(sec),
        int(micros.ljust(6, "0")) if micros else 0,
        tzinfo=tz,
    )


def load(text: str) -> dict[str, Any] | None:
    """``text`` as ``tomllib.loads`` would give it, or None when it is not simple TOML."""
    result: dict[str, Any] = {}
    try:
        for line in text.split("\n"):
            if not line or line.isspace():
                if line.strip(" \t"):  # a line break or form feed TOML would refuse
                    return None
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                return None
            key, value = match.groups()
            if key in result:
                return None  # tomllib says what is wrong with a duplicate key
            result[key] = _value(value.rstrip(" \t"))
    except (_NotSimpleToml, ValueError):  # ValueError: an impossible date, tomllib's to report
        return None
    return result or None  # empty: tomllib decides
