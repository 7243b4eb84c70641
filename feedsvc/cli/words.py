"""Words for people in the command line's output, from the message catalogue in the
command's language (:func:`feedsvc.cli.invocation.texts`): numbers with their thousands
grouped, times in the site's zone with how far off they are ("in 3 h 12 min",
"3시간 12분 후"), lists of names cut short, and the lines ``feedsvc: …`` that report
errors and warnings.

Counts with their noun in the right number are the catalogue's plural entries:
``texts.plural("cli.count.posts", 2)`` → "2 posts", "글 2편".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from feedsvc.errors import AddressError, ConfigError
from feedsvc.messages import Texts
from feedsvc.models import Problem, Severity

if TYPE_CHECKING:
    from feedsvc.newsletter.categories import SiteCategories

NAMES_SHOWN = 12  # names a message lists before "and N more"


def number(value: int) -> str:
    """``10,000``: a count as the command line shows it (both languages group by three)."""
    return f"{value:,}"


def in_time(texts: Texts, delta: timedelta) -> str:
    """``in 3 h 12 min``, ``in 2 d 4 h``, ``in 40 s``; ``3 min ago`` for a time passed
    (``3시간 12분 후``, ``3분 전``): at most two units, the second only when not zero."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [("days", days), ("hours", hours)]
    elif hours:
        parts = [("hours", hours), ("minutes", minutes)]
    elif minutes:
        parts = [("minutes", minutes)]
    else:
        parts = [("seconds", secs)]
    span = " ".join(
        texts(f"cli.time.{unit}", n=number(amount))
        for index, (unit, amount) in enumerate(parts)
        if amount or index == 0
    )
    return texts("cli.time.ago" if delta.total_seconds() < 0 else "cli.time.in", span=span)


def when_label(texts: Texts, moment: datetime, zone: str, current: datetime) -> str:
    """``2024-06-02 08:00 KST (in 3 h 12 min)``: a moment in the site's zone, and how far
    it is from ``current``."""
    local = moment.astimezone(ZoneInfo(zone))
    return texts(
        "cli.time.when",
        time=f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
        relative=in_time(texts, moment - current),
    )


def names_listed(texts: Texts, names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """``부산, 축제, 교통``, and "and 3 more" past ``limit``."""
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return texts("cli.names_and_more", names=shown, more=number(more)) if more > 0 else shown


def unknown_categories(texts: Texts, unknown: Sequence[str], site: SiteCategories) -> str:
    """Which names no post has, and the ones the site has."""
    from feedsvc.newsletter.categories import quoted

    return texts.plural(
        "cli.categories.unknown",
        len(unknown),
        names=quoted(unknown),
        site=names_listed(texts, site.names),
    )


def error_line(texts: Texts, message: str) -> str:
    """``feedsvc: …``: how the command line reports what stops it."""
    return texts("cli.error_line", message=message)


def warning_line(texts: Texts, message: str) -> str:
    """``feedsvc: warning: …`` (``feedsvc: 경고: …``): something to look at."""
    return texts("cli.warning_line", message=message)


def config_problem(texts: Texts, exc: ConfigError) -> str:
    """A configuration error: the file, then one line per bad key (the keys' own
    reasons are as the validator words them)."""
    lines = [texts("cli.config_invalid", source=exc.source)]
    lines += [f"  - {problem}" for problem in exc.problems]
    return "\n".join(lines)


def address_problem(texts: Texts, exc: AddressError) -> str:
    """An address that cannot be used, and why (as the address validator says it)."""
    return texts("cli.address_invalid", address=repr(exc.address), reason=exc.reason)


def problem_text(texts: Texts, problem: Problem) -> str:
    """``path:line: error: reason`` in the command's language; a reason of several lines
    keeps the ``path:line:`` prefix on each (editors and grep read one problem per line)."""
    where = f"{problem.path}:{problem.line}" if problem.line is not None else problem.path
    severity = "error" if problem.severity is Severity.ERROR else "warning"
    reason = problem.reason if problem.message is None else texts.message(problem.message)
    text = texts(f"cli.problem.{severity}", where=where, reason=reason)
    if "\n" not in text and "\r" not in text:
        return text
    return f"\n{where}: ".join(text.splitlines())
