"""The digest promise as properties: over any sequence of runs, each (subscriber, post)
pair the rules admit is in exactly one digest, and no other pair is in any.

A pure simulation of the daemon's digest runs (``plan_digests`` with the cursors it
returns carried from run to run, as the store does), over random join times and
confirmation delays, post dates (before and after joining), announcement times, category,
cadence and time-zone changes, and downtime (runs missing for days, so periods are late).
After the random runs, runs every six hours for long enough to drain every cap; then the
promise must hold in full.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.config import DigestSchedule
from feedsvc.models import Announced, Cursor, Frequency, Recipient, Subscriber, SubscriberStatus
from feedsvc.newsletter.digests import category_keys, matches, plan_digests

T0 = datetime(2024, 6, 1, tzinfo=UTC)
HORIZON = 10 * 24 * 60  # the random part: ten days, in minutes
ZONES = ("Asia/Seoul", "Pacific/Honolulu", "America/New_York", "Europe/London", None)
CATEGORIES = ("부산", "서울", "Smart City", "제주")
SCHEDULE = DigestSchedule(
    send_time=time(8, 0), weekday=0, site_timezone="Asia/Seoul", max_lateness=timedelta(hours=12)
)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Member:
    """A subscriber over time: confirmed at ``joined``; from ``change_at`` on, the later
    settings (cadence, zone and, when ``recategorised``, categories)."""

    subscriber: Subscriber
    change_at: datetime
    later: Subscriber

    def as_of(self, moment: datetime) -> Subscriber:
        return self.later if moment >= self.change_at else self.subscriber

    @property
    def recategorised(self) -> bool:
        return self.subscriber.categories != self.later.categories


frequencies = st.sampled_from(list(Frequency))
zones = st.sampled_from(ZONES)
category_sets = st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple)


@st.composite
def members(draw: st.DrawFn, ident: int) -> Member:
    joined = at(draw(st.integers(0, HORIZON)))
    delay = timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))  # pending until confirmed
    first = Subscriber(
        id=ident,
        email=f"reader{ident}@example.kr",
        name=f"구독자 {ident}",
        status=SubscriberStatus.ACTIVE,
        frequency=draw(frequencies),
        categories=draw(category_sets),
        timezone=draw(zones),
        created=joined - delay,
        confirmed=joined,
        unsubscribed=None,
        consent_source=draw(st.sampled_from(["web", "import"])),
        consent_ip=None,
    )
    later = replace(
        first,
        frequency=draw(frequencies),
        timezone=draw(zones),
        categories=draw(st.one_of(st.just(first.categories), category_sets)),
    )
    return Member(first, at(draw(st.integers(0, HORIZON))), later)


@st.composite
def announced_posts(draw: st.DrawFn) -> list[Announced]:
    count = draw(st.integers(1, 12))
    # Several posts often become new at one instant (one build); draw from few instants.
    instants = draw(st.lists(st.integers(0, HORIZON), min_size=1, max_size=count))
    found = []
    for index in range(count):
        eligible = at(draw(st.sampled_from(instants)))
        # Dated as authors date posts: days before going live, at midnight, or later on.
        dated = eligible + timedelta(minutes=draw(st.integers(-60 * 24 * 60, 3 * 24 * 60)))
        found.append(
            Announced(
                post_id=f"https://news.example.kr/2024/글-{index:02d}/",
                eligible_at=eligible,
                published=dated,
                categories=draw(category_sets),
                title=f"소식 {index}",
            )
        )
    return found


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Member], list[Announced], list[datetime], int]:
    people = [draw(members(ident)) for ident in range(1, draw(st.integers(1, 6)) + 1)]
    posts = draw(announced_posts())
    # The daemon's runs: bursts (every few minutes), then gaps of hours or days (down).
    runs = sorted(set(draw(st.lists(st.integers(0, HORIZON), min_size=1, max_size=40))))
    max_posts = draw(st.integers(1, 5))
    return people, posts, [at(m) for m in runs], max_posts


def drain_runs(posts: list[Announced], max_posts: int) -> list[datetime]:
    """Runs every six hours (well inside max_lateness) long enough for weekly digests of
    ``max_posts`` each to carry every post."""
    weeks = len(posts) // max_posts + 2
    return [at(HORIZON) + timedelta(hours=6 * i) for i in range(weeks * 7 * 4)]


def simulate(
    people: list[Member], posts: list[Announced], runs: list[datetime], max_posts: int
) -> tuple[list[tuple[int, str, datetime]], dict[int, Cursor]]:
    """Every (subscriber, post, run) that went into a digest, and the final cursors."""
    cursors: dict[int, Cursor] = {}
    sent: list[tuple[int, str, datetime]] = []
    for now in runs:
        recipients = [
            Recipient(member.as_of(now), cursors.get(member.subscriber.id))
            for member in people
            if member.subscriber.confirmed is not None and member.subscriber.confirmed <= now
        ]
        live = [a for a in posts if a.eligible_at <= now]
        plan = plan_digests(recipients, live, now=now, schedule=SCHEDULE, max_posts=max_posts)
        for digest in plan.digests:
            assert digest.period.end <= now
            assert len(digest.post_ids) <= max_posts
            sent += [(s, p, now) for s in digest.subscriber_ids for p in digest.post_ids]
        for ident, cursor in plan.covered.items():
            old = cursors.get(ident)
            assert old is None or (cursor.until, cursor.post or "\uffff") >= (
                old.until,
                old.post or "\uffff",
            ), "a cursor never moves back"
            cursors[ident] = cursor
    return sent, cursors


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_each_admitted_pair_is_in_exactly_one_digest_and_no_other_pair_in_any(
    scenario: tuple[list[Member], list[Announced], list[datetime], int],
) -> None:
    people, posts, runs, max_posts = scenario
    sent, _ = simulate(people, posts, runs + drain_runs(posts, max_posts), max_posts)
    by_id = {m.subscriber.id: m for m in people}
    post_of = {a.post_id: a for a in posts}

    pairs = [(s, p) for s, p, _ in sent]
    assert len(pairs) == len(set(pairs)), "a post reached a subscriber twice"

    for ident, post_id, now in sent:  # nothing that is not theirs
        member, post = by_id[ident], post_of[post_id]
        assert member.subscriber.confirmed is not None
        assert post.eligible_at > member.subscriber.confirmed, "became new before joining"
        wanted = category_keys(member.as_of(now).categories)
        assert matches(post.categories, wanted), "categories they did not ask for"

    for member in people:  # everything that is theirs (settled categories: exact)
        if member.recategorised:
            continue
        joined = member.subscriber.confirmed
        assert joined is not None
        wanted = category_keys(member.subscriber.categories)
        owed = {
            a.post_id for a in posts if a.eligible_at > joined and matches(a.categories, wanted)
        }
        got = {p for s, p in pairs if s == member.subscriber.id}
        assert got == owed, f"owed {sorted(owed - got)} never arrived"
