"""Words for people in the command line's output: counts with their noun in the right
number ("1 post", "2 posts"), and times in the site's zone with how far off they are."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def counted(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 post``, ``2 posts``, ``0 errors``: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def in_time(delta: timedelta) -> str:
    """``in 3 h 12 min``, ``in 2 d 4 h``, ``in 40 s``; ``3 min ago`` for a time passed."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days} d"] + ([f"{hours} h"] if hours else [])
    elif hours:
        parts = [f"{hours} h"] + ([f"{minutes} min"] if minutes else [])
    elif minutes:
        parts = [f"{minutes} min"]
    else:
        parts = [f"{secs} s"]
    text = " ".join(parts)
    return f"{text} ago" if delta.total_seconds() < 0 else f"in {text}"


def when_label(moment: datetime, zone: str, current: datetime) -> str:
    """``2024-06-02 08:00 KST (in 3 h 12 min)``: a moment in the site's zone, and how far
    it is from ``current``."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({in_time(moment - current)})"
