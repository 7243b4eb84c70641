"""Posts × subscribers × time → who gets which posts, in which period (pure: no I/O).

    announcements ─┐                      due period per (frequency, zone)
    subscribers ───┼─▶ plan_digests ─▶    window per subscriber: after max(cursor, joined),
    cursors ───────┘                      up to the period's end; categories; cap

The promise: every post that goes live after you subscribed reaches you once, in your
cadence. The rules that keep it:

- A post becomes "new" once, at ``eligible_at``: when a build first published it (or, for
  a scheduled post, the build at its time), or when a held or archive post was released.
  Editing it later changes nothing here. Its front-matter date orders and is shown; it
  never decides who gets it.
- A post is theirs when it became new after the subscriber joined (confirmed, else
  created) and one of its categories matches one of theirs (compared as slugs, so
  ``Smart City`` = ``smart-city``; no categories means every post).
- Each subscriber has a cursor in the order posts became new (``eligible_at``, then id):
  "every post up to here was put in a digest for me, or was not mine". A period looks at
  what became new after ``max(cursor, joined)`` up to its end; afterwards the cursor
  moves only past what was considered, so a post is never sent twice and never skipped.
- At most ``digest.max_posts`` posts in one digest: the first ones to become new are
  taken (shown newest first) and the cursor stops at the last one taken, so the rest go
  into the next digest.
- Daily and weekly periods end at ``digest.send_time`` in the subscriber's zone (else
  ``site.timezone``), weekly ones on ``digest.weekday``. Wall-clock times that do not exist
  (DST gap) move forward with the clock; ambiguous ones (DST fold) take the first.
  A period that ended more than ``digest.max_lateness`` ago (the daemon was down) is not
  sent; its posts go into the next period, as its cursor did not move.
- Immediate: one period per run, ending at the run's time.
- Flood guard and archive posts (:mod:`feedsvc.storage.announcements`): more than
  ``digest.flood_limit`` posts new at once are held, and a post dated more than
  ``digest.backdate_limit`` before it went live is an archive post; neither becomes new
  until ``feedsvc digest release``.

Invariants (tested with hypothesis in tests/test_digest_invariants.py): over consecutive
runs, each (subscriber, post) pair these rules admit is in exactly one digest, no other
pair is in any, and a cursor never passes a post that was not considered for it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedsvc.config import DigestSchedule
from feedsvc.content.urls import slugify
from feedsvc.models import (
    Announced,
    Cursor,
    DigestPlan,
    Frequency,
    Period,
    Recipient,
    RunPlan,
    Subscriber,
)


@lru_cache(maxsize=256)
def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The subscriber's zone, else the site's (also for a name this system does not know)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # tzdata changed under a stored name: the site's zone is the sane choice
    return ZoneInfo(fallback)


def send_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on local ``day`` in ``tz``, in UTC.

    In a DST gap the wall-clock time does not exist; ``fold=0`` reads it with the offset
    before the change, which lands it that much later (02:30 → 03:30). In a fold the
    first of the two moments is taken.
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _latest_send(now: datetime, schedule: DigestSchedule, tz: ZoneInfo, weekly: bool) -> date:
    """The local date of the latest scheduled send at or before ``now``."""
    day = now.astimezone(tz).date()
    for _ in range(9):  # at most a week back, plus DST slack
        if (not weekly or day.weekday() == schedule.weekday) and send_moment(
            day, schedule.send_time, tz
        ) <= now:
            return day
        day -= timedelta(days=1)
    raise AssertionError("a scheduled send exists within any nine days")


def latest_period(
    frequency: Frequency, zone_name: str | None, now: datetime, schedule: DigestSchedule
) -> Period:
    """The latest period of ``frequency`` that has ended by ``now`` (immediate: ends now)."""
    tz_name = zone_name or schedule.site_timezone
    tz = zone(zone_name, schedule.site_timezone)
    if frequency is Frequency.IMMEDIATE:
        stamp = now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        return Period(frequency, f"immediate:{stamp}@{tz_name}", None, now, tz_name)
    weekly = frequency is Frequency.WEEKLY
    day = _latest_send(now, schedule, tz, weekly)
    end = send_moment(day, schedule.send_time, tz)
    start = send_moment(day - timedelta(days=7 if weekly else 1), schedule.send_time, tz)
    return Period(frequency, f"{frequency.value}:{day.isoformat()}@{tz_name}", start, end, tz_name)


def is_late(period: Period, now: datetime, schedule: DigestSchedule) -> bool:
    """Ended more than ``max_lateness`` ago (the daemon was down at send time): a morning
    digest is not sent in the evening; its posts go into the next one."""
    return now - period.end > schedule.max_lateness


def due_period(
    frequency: Frequency, zone_name: str | None, now: datetime, schedule: DigestSchedule
) -> Period | None:
    """The latest period of ``frequency`` that has ended by ``now``, unless it is late."""
    period = latest_period(frequency, zone_name, now, schedule)
    return None if is_late(period, now, schedule) else period


def next_send(
    frequency: Frequency, zone_name: str | None, now: datetime, schedule: DigestSchedule
) -> datetime:
    """When the next digest of ``frequency`` goes out after ``now`` (immediate: now)."""
    if frequency is Frequency.IMMEDIATE:
        return now
    tz = zone(zone_name, schedule.site_timezone)
    day = now.astimezone(tz).date()
    while True:
        moment = send_moment(day, schedule.send_time, tz)
        weekly_ok = frequency is Frequency.DAILY or day.weekday() == schedule.weekday
        if weekly_ok and moment > now:
            return moment
        day += timedelta(days=1)


def upcoming_period(
    frequency: Frequency, zone_name: str | None, now: datetime, schedule: DigestSchedule
) -> Period:
    """The period in progress at ``now``: the one whose digest goes out next."""
    tz_name = zone_name or schedule.site_timezone
    end = next_send(frequency, zone_name, now, schedule)
    if frequency is Frequency.IMMEDIATE:
        return due_period(frequency, zone_name, now, schedule) or Period(
            frequency, "immediate", None, now, tz_name
        )
    tz = zone(zone_name, schedule.site_timezone)
    day = end.astimezone(tz).date()
    back = timedelta(days=7 if frequency is Frequency.WEEKLY else 1)
    start = send_moment(day - back, schedule.send_time, tz)
    return Period(frequency, f"{frequency.value}:{day.isoformat()}@{tz_name}", start, end, tz_name)


# --- selection ----------------------------------------------------------------------


def joined_at(subscriber: Subscriber) -> datetime:
    """When the subscriber joined: confirmed, else created (added or imported)."""
    return subscriber.confirmed or subscriber.created


def start_of(recipient: Recipient) -> Cursor:
    """What is behind a subscriber: everything new at or before they joined, and what
    their cursor covers. A post new after this is theirs (if it matches)."""
    joined = Cursor(joined_at(recipient.subscriber))
    cursor = recipient.cursor
    if cursor is None or cursor.until < joined.until:
        return joined
    if cursor.until == joined.until:
        return joined  # joining covers every post new at that instant
    return cursor


@lru_cache(maxsize=4096)
def category_keys(names: tuple[str, ...]) -> frozenset[str]:
    """Categories as slugs, for matching (a memo: a few hundred combinations repeat)."""
    return frozenset(key for key in (slugify(name) for name in names) if key)


def matches(post_categories: tuple[str, ...], wanted: frozenset[str]) -> bool:
    """True when the subscriber wants every post, or one of this post's categories."""
    return not wanted or not wanted.isdisjoint(category_keys(post_categories))


def newest_first(announced: Iterable[Announced]) -> list[Announced]:
    """Newest publication first; ties by id, so the order never depends on the store's."""
    return sorted(announced, key=lambda a: (a.published, a.post_id), reverse=True)


def in_announcement_order(announced: Iterable[Announced]) -> list[Announced]:
    """In the order posts became new (ties by id): the order a subscriber's cursor moves."""
    return sorted(announced, key=lambda a: a.position)


@dataclass(frozen=True, slots=True)
class ChosenPosts:
    """One subscriber's posts for one period, and how far that moves their cursor."""

    post_ids: tuple[str, ...]  # newest publication first
    cursor: Cursor


def choose_posts(
    ordered: Sequence[Announced],
    *,
    wanted: frozenset[str],
    start: int,
    stop: int,
    until: datetime,
    max_posts: int,
) -> ChosenPosts:
    """The posts one subscriber gets from ``ordered[start:stop]`` (in announcement order,
    :func:`in_announcement_order`; the slice is what became new after their cursor and up
    to ``until``, the period's end): those matching ``wanted``, at most ``max_posts``.

    Capped, the cursor stops at the last post taken, so the rest go into the next digest;
    otherwise it moves to ``until``. Shown newest publication first.
    """
    chosen: list[Announced] = []
    for index in range(start, stop):
        post = ordered[index]
        if not matches(post.categories, wanted):
            continue
        if len(chosen) == max_posts:
            last = chosen[-1]
            return ChosenPosts(_shown(chosen), Cursor(last.eligible_at, last.post_id))
        chosen.append(post)
    return ChosenPosts(_shown(chosen), Cursor(until))


def _shown(chosen: Iterable[Announced]) -> tuple[str, ...]:
    return tuple(a.post_id for a in newest_first(chosen))


def plan_digests(
    recipients: Iterable[Recipient],
    announced: Sequence[Announced],
    *,
    now: datetime,
    schedule: DigestSchedule,
    max_posts: int,
) -> RunPlan:
    """The digests due at ``now``: per subscriber their due period and chosen posts.

    Subscribers with the same period and the same posts share one digest (one content,
    rendered once). A subscriber whose window held any announcement is covered as far as
    it was considered: to the period's end, or to the last post taken when capped.
    """
    ordered = in_announcement_order(announced)
    positions = [a.position for a in ordered]
    times = [a.eligible_at for a in ordered]
    periods: dict[tuple[Frequency, str | None], Period] = {}
    choices: dict[tuple[str, int, frozenset[str]], ChosenPosts] = {}
    groups: dict[tuple[str, tuple[str, ...]], tuple[Period, list[int]]] = {}
    covered: dict[int, Cursor] = {}
    late = 0
    for recipient in recipients:
        subscriber = recipient.subscriber
        slot = (subscriber.frequency, subscriber.timezone)
        if slot not in periods:
            periods[slot] = latest_period(subscriber.frequency, subscriber.timezone, now, schedule)
        period = periods[slot]
        start = _first_after(start_of(recipient), positions, times)
        stop = bisect_right(times, period.end)
        if start >= stop:
            continue  # nothing new for them in this period
        if is_late(period, now, schedule):
            late += 1  # posts that should have gone out then wait for the next period
            continue
        wanted = category_keys(subscriber.categories)
        # Subscribers whose cursors fall between the same two announcements choose alike.
        key = (period.key, start, wanted)
        choice = choices.get(key)
        if choice is None:
            choice = choose_posts(
                ordered,
                wanted=wanted,
                start=start,
                stop=stop,
                until=period.end,
                max_posts=max_posts,
            )
            choices[key] = choice
        covered[subscriber.id] = choice.cursor
        if choice.post_ids:
            group = groups.setdefault((period.key, choice.post_ids), (period, []))
            group[1].append(subscriber.id)
    digests = tuple(
        DigestPlan(period, post_ids, tuple(ids))
        for (_, post_ids), (period, ids) in sorted(groups.items(), key=lambda item: item[0])
    )
    return RunPlan(digests=digests, covered=covered, late=late)


def _first_after(
    cursor: Cursor, positions: Sequence[tuple[datetime, str]], times: Sequence[datetime]
) -> int:
    """The index of the first announcement (sorted ``positions``) the cursor does not cover."""
    if cursor.post is None:
        return bisect_right(times, cursor.until)
    return bisect_right(positions, (cursor.until, cursor.post))
