"""digests: schedules per frequency and zone (DST included) and who gets which posts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedsvc.config import DigestSchedule, settings_from_mapping
from feedsvc.models import (
    Announced,
    Cursor,
    Frequency,
    Period,
    Recipient,
    Subscriber,
    SubscriberStatus,
    content_key,
)
from feedsvc.newsletter.digests import (
    ChosenPosts,
    category_keys,
    choose_posts,
    due_period,
    in_announcement_order,
    matches,
    next_send,
    plan_digests,
    send_moment,
    start_of,
    upcoming_period,
)
from feedsvc.storage.announcements import is_flood

SEOUL = "Asia/Seoul"
HONOLULU = "Pacific/Honolulu"  # UTC−10, no DST
NEW_YORK = "America/New_York"
SCHEDULE = DigestSchedule(
    send_time=time(8, 0), weekday=0, site_timezone=SEOUL, max_lateness=timedelta(hours=12)
)
# The same, never too late: for tests of period boundaries alone.
PATIENT = DigestSchedule(
    send_time=time(8, 0), weekday=0, site_timezone=SEOUL, max_lateness=timedelta(days=8)
)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
FAR_AHEAD = datetime(2030, 1, 1, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def subscriber(
    ident: int = 1,
    *,
    frequency: Frequency = Frequency.DAILY,
    categories: tuple[str, ...] = (),
    timezone: str | None = SEOUL,
    joined: datetime = LONG_AGO,
    email: str | None = None,
    name: str | None = "김민지",
) -> Subscriber:
    return Subscriber(
        id=ident,
        email=email or f"reader{ident}@example.kr",
        name=name,
        status=SubscriberStatus.ACTIVE,
        frequency=frequency,
        categories=categories,
        timezone=timezone,
        created=joined,
        confirmed=joined,
        unsubscribed=None,
        consent_source="web",
        consent_ip=None,
    )


def post(
    ident: str,
    eligible_at: datetime,
    *,
    categories: tuple[str, ...] = ("부산",),
    published: datetime | None = None,
) -> Announced:
    return Announced(
        post_id=ident,
        eligible_at=eligible_at,
        published=published or eligible_at,
        categories=categories,
        title=f"제목 {ident}",
    )


# --- schedules ----------------------------------------------------------------------------


def test_schedule_comes_from_the_digest_settings() -> None:
    settings = settings_from_mapping(
        {"site": {"timezone": SEOUL}, "digest": {"send_time": "07:30", "weekday": "fri"}}
    )
    schedule = settings.digest_schedule
    assert (schedule.send_time, schedule.weekday, schedule.site_timezone) == (
        time(7, 30),
        4,
        SEOUL,
    )


def test_daily_period_ends_at_send_time_in_the_subscribers_zone() -> None:
    """09:30 in Seoul on 1 June: the digest of 1 June went out at 08:00 KST (23:00 UTC)."""
    period = due_period(Frequency.DAILY, SEOUL, utc(2024, 6, 1, 0, 30), SCHEDULE)
    assert period == Period(
        Frequency.DAILY,
        "daily:2024-06-01@Asia/Seoul",
        utc(2024, 5, 30, 23),
        utc(2024, 5, 31, 23),
        SEOUL,
    )


def test_the_send_moment_itself_belongs_to_the_ended_period() -> None:
    at = due_period(Frequency.DAILY, SEOUL, utc(2024, 5, 31, 23), PATIENT)
    before = due_period(
        Frequency.DAILY, SEOUL, utc(2024, 5, 31, 23) - timedelta(microseconds=1), PATIENT
    )
    assert at is not None and at.key == "daily:2024-06-01@Asia/Seoul"
    assert before is not None and before.key == "daily:2024-05-31@Asia/Seoul"


def test_honolulu_and_seoul_at_the_same_instant_are_in_different_periods() -> None:
    """00:30 UTC on 1 June is 09:30 on 1 June in Seoul but 14:30 on 31 May in Honolulu."""
    now = utc(2024, 6, 1, 0, 30)
    seoul = due_period(Frequency.DAILY, SEOUL, now, SCHEDULE)
    honolulu = due_period(Frequency.DAILY, HONOLULU, now, SCHEDULE)
    assert seoul is not None and honolulu is not None
    assert seoul.key == "daily:2024-06-01@Asia/Seoul"
    assert seoul.end == utc(2024, 5, 31, 23)  # 08:00 KST
    assert honolulu.key == "daily:2024-05-31@Pacific/Honolulu"
    assert honolulu.end == utc(2024, 5, 31, 18)  # 08:00 HST


def test_a_post_goes_out_in_seoul_before_honolulu() -> None:
    """Announced at 20:00 UTC on 31 May: in Seoul's 1 June digest (sent 23:00 UTC), and in
    Honolulu's 1 June digest (sent 18:00 UTC the next day), once each."""
    announced = [post("a", utc(2024, 5, 31, 20))]
    seoul = subscriber(1, timezone=SEOUL)
    honolulu = subscriber(2, timezone=HONOLULU)
    first = plan_digests(
        [Recipient(seoul), Recipient(honolulu)],
        announced,
        now=utc(2024, 5, 31, 23, 30),
        schedule=SCHEDULE,
        max_posts=20,
    )
    assert [(d.period.key, d.subscriber_ids) for d in first.digests] == [
        ("daily:2024-06-01@Asia/Seoul", (1,))
    ]
    later = plan_digests(
        [Recipient(seoul, first.covered[1]), Recipient(honolulu)],
        announced,
        now=utc(2024, 6, 1, 18, 0),
        schedule=SCHEDULE,
        max_posts=20,
    )
    assert [(d.period.key, d.subscriber_ids) for d in later.digests] == [
        ("daily:2024-06-01@Pacific/Honolulu", (2,))
    ]


def test_spring_forward_day_is_23_hours_long() -> None:
    """New York, 10 March 2024: 08:00 EST on the 9th to 08:00 EDT on the 10th."""
    period = due_period(Frequency.DAILY, NEW_YORK, utc(2024, 3, 10, 13), SCHEDULE)
    assert period is not None and period.start is not None
    assert period.start == utc(2024, 3, 9, 13)
    assert period.end == utc(2024, 3, 10, 12)
    assert period.end - period.start == timedelta(hours=23)


def test_fall_back_day_is_25_hours_long() -> None:
    period = due_period(Frequency.DAILY, NEW_YORK, utc(2024, 11, 3, 14), SCHEDULE)
    assert period is not None and period.start is not None
    assert period.end - period.start == timedelta(hours=25)
    assert period.end == utc(2024, 11, 3, 13)  # 08:00 EST


def test_a_send_time_in_the_dst_gap_moves_forward_with_the_clock() -> None:
    """02:30 does not exist in New York on 10 March 2024: it is sent at 03:30 EDT."""
    moment = send_moment(datetime(2024, 3, 10).date(), time(2, 30), ZoneInfo(NEW_YORK))
    assert moment == utc(2024, 3, 10, 7, 30)
    assert moment.astimezone(ZoneInfo(NEW_YORK)).hour == 3


def test_a_send_time_in_the_dst_fold_takes_the_first_one() -> None:
    moment = send_moment(datetime(2024, 11, 3).date(), time(1, 30), ZoneInfo(NEW_YORK))
    assert moment == utc(2024, 11, 3, 5, 30)  # 01:30 EDT, not 01:30 EST


def test_weekly_period_ends_on_the_configured_weekday() -> None:
    """Wednesday 5 June 2024: the weekly digest went out Monday 3 June 08:00 KST."""
    period = due_period(Frequency.WEEKLY, SEOUL, utc(2024, 6, 5, 3), PATIENT)
    assert period is not None
    assert period.key == "weekly:2024-06-03@Asia/Seoul"
    assert (period.start, period.end) == (utc(2024, 5, 26, 23), utc(2024, 6, 2, 23))


def test_weekly_period_across_a_dst_change_is_a_week_of_wall_clock() -> None:
    berlin = "Europe/Berlin"  # DST began on Sunday 31 March 2024
    period = due_period(Frequency.WEEKLY, berlin, utc(2024, 4, 1, 12), PATIENT)
    assert period is not None and period.start is not None
    assert period.end == utc(2024, 4, 1, 6)  # Monday 08:00 CEST
    assert period.end - period.start == timedelta(hours=167)


def test_a_digest_later_than_max_lateness_is_not_due() -> None:
    """The daemon was down at 08:00: at 19:00 it still goes out, at 21:00 it waits."""
    assert due_period(Frequency.DAILY, SEOUL, utc(2024, 6, 1, 10), SCHEDULE) is not None
    assert due_period(Frequency.DAILY, SEOUL, utc(2024, 6, 1, 12), SCHEDULE) is None


def test_immediate_period_ends_now_and_is_named_by_the_second() -> None:
    now = datetime(2024, 6, 1, 8, 0, 5, 123456, tzinfo=UTC)
    period = due_period(Frequency.IMMEDIATE, None, now, SCHEDULE)
    assert period == Period(
        Frequency.IMMEDIATE, "immediate:2024-06-01T08:00:05Z@Asia/Seoul", None, now, SEOUL
    )


def test_an_unknown_zone_falls_back_to_the_site_zone() -> None:
    period = due_period(Frequency.DAILY, "Mars/Olympus_Mons", utc(2024, 6, 1, 0, 30), SCHEDULE)
    assert period is not None and period.end == utc(2024, 5, 31, 23)


def test_next_send_for_each_frequency() -> None:
    now = utc(2024, 6, 5, 3)  # Wednesday, 12:00 KST
    assert next_send(Frequency.DAILY, SEOUL, now, SCHEDULE) == utc(2024, 6, 5, 23)
    assert next_send(Frequency.WEEKLY, SEOUL, now, SCHEDULE) == utc(2024, 6, 9, 23)
    assert next_send(Frequency.IMMEDIATE, SEOUL, now, SCHEDULE) == now


def test_upcoming_period_is_the_one_in_progress() -> None:
    period = upcoming_period(Frequency.DAILY, SEOUL, utc(2024, 6, 5, 3), SCHEDULE)
    assert period.key == "daily:2024-06-06@Asia/Seoul"
    assert (period.start, period.end) == (utc(2024, 6, 4, 23), utc(2024, 6, 5, 23))


# --- choosing posts -------------------------------------------------------------------------


def test_categories_match_as_slugs_and_empty_means_everything() -> None:
    assert matches(("Smart City",), category_keys(("smart-city",)))
    assert matches(("스마트시티", "부산"), category_keys(("부산",)))
    assert not matches(("서울",), category_keys(("부산",)))
    assert matches(("서울",), category_keys(()))
    assert not matches((), category_keys(("부산",)))


def _choose(
    announced: list[Announced],
    *,
    wanted: frozenset[str] = frozenset(),
    joined: datetime = LONG_AGO,
    cursor: Cursor | None = None,
    until: datetime = FAR_AHEAD,
    max_posts: int = 20,
) -> ChosenPosts:
    """One subscriber's choice, as plan_digests makes it (cursor and joining first)."""
    ordered = in_announcement_order(announced)
    recipient = Recipient(subscriber(joined=joined), cursor)
    start = next(
        (i for i, a in enumerate(ordered) if not start_of(recipient).covers(a.position)),
        len(ordered),
    )
    stop = sum(1 for a in ordered if a.eligible_at <= until)
    return choose_posts(
        ordered, wanted=wanted, start=start, stop=stop, until=until, max_posts=max_posts
    )


def test_a_capped_digest_takes_the_first_to_become_new_shown_newest_first() -> None:
    announced = [post(f"p{i}", utc(2024, 6, 1, i)) for i in range(10)]
    choice = _choose(announced, max_posts=3)
    assert choice.post_ids == ("p2", "p1", "p0")
    assert choice.cursor == Cursor(utc(2024, 6, 1, 2), "p2")  # the rest come next


def test_posts_are_shown_by_publication_not_by_announcement() -> None:
    announced = [
        post("old", utc(2024, 6, 1, 9), published=utc(2024, 5, 1)),
        post("new", utc(2024, 6, 1, 8), published=utc(2024, 6, 1, 8)),
    ]
    assert _choose(announced).post_ids == ("new", "old")


def test_only_matching_categories_are_chosen() -> None:
    announced = [
        post("busan", utc(2024, 6, 1, 1), categories=("부산",)),
        post("seoul", utc(2024, 6, 1, 2), categories=("서울",)),
        post("both", utc(2024, 6, 1, 3), categories=("서울", "부산")),
    ]
    assert _choose(announced, wanted=category_keys(("부산",))).post_ids == ("both", "busan")


def test_a_new_subscriber_gets_what_becomes_new_after_joining() -> None:
    """Joined at noon: a post announced at 11:00 is not theirs, one at 13:00 is."""
    announced = [post("before", utc(2024, 6, 1, 11)), post("after", utc(2024, 6, 1, 13))]
    assert _choose(announced, joined=utc(2024, 6, 1, 12)).post_ids == ("after",)


@pytest.mark.parametrize(
    "dated",
    [
        utc(2024, 5, 31, 15),  # 2024-06-01 in Seoul at midnight, as `date: 2024-06-01` reads
        utc(2024, 6, 1, 11, 59, 59),  # one second before joining
        utc(2024, 5, 29, 12),  # three days before
    ],
)
def test_a_post_dated_before_joining_but_new_after_is_theirs(dated: datetime) -> None:
    """The front-matter date orders and is shown; it never decides who gets a post."""
    announced = [post("dated-earlier", utc(2024, 6, 1, 13), published=dated)]
    assert _choose(announced, joined=utc(2024, 6, 1, 12)).post_ids == ("dated-earlier",)


def test_the_window_is_after_the_cursor_up_to_the_period_end() -> None:
    announced = [
        post("sent-before", utc(2024, 6, 1, 1)),
        post("in", utc(2024, 6, 1, 5)),
        post("next-period", utc(2024, 6, 1, 9)),
    ]
    choice = _choose(announced, cursor=Cursor(utc(2024, 6, 1, 2)), until=utc(2024, 6, 1, 8))
    assert choice.post_ids == ("in",)
    assert choice.cursor == Cursor(utc(2024, 6, 1, 8))


def test_a_cursor_among_posts_new_at_one_instant_takes_up_after_its_post() -> None:
    """A build announces many posts at one moment; a cap may stop among them."""
    at = utc(2024, 6, 1, 5)
    announced = [post(name, at) for name in ("a", "b", "c", "d")]
    assert _choose(announced, cursor=Cursor(at, "b")).post_ids == ("d", "c")
    assert _choose(announced, cursor=Cursor(at)).post_ids == ()


def test_joining_covers_posts_new_at_that_instant_even_past_a_cursor_there() -> None:
    at = utc(2024, 6, 1, 5)
    recipient = Recipient(subscriber(joined=at), Cursor(at, "a"))
    assert start_of(recipient) == Cursor(at)


def test_content_key_names_the_post_list() -> None:
    assert content_key(["a", "b"]) == content_key(("a", "b"))
    assert content_key(["a", "b"]) != content_key(["b", "a"])


# --- planning --------------------------------------------------------------------------------

NOW = utc(2024, 6, 1, 0, 30)  # 09:30 KST: the daily digest of 1 June is due


def test_plan_groups_subscribers_with_the_same_posts_into_one_digest() -> None:
    announced = [
        post("busan", utc(2024, 5, 31, 10), categories=("부산",)),
        post("seoul", utc(2024, 5, 31, 11), categories=("서울",)),
    ]
    recipients = [
        Recipient(subscriber(1, categories=("부산",))),
        Recipient(subscriber(2, categories=("부산",))),
        Recipient(subscriber(3)),
        Recipient(subscriber(4, categories=("제주",))),
    ]
    plan = plan_digests(recipients, announced, now=NOW, schedule=SCHEDULE, max_posts=20)
    assert sorted((d.post_ids, d.subscriber_ids) for d in plan.digests) == [
        (("busan",), (1, 2)),
        (("seoul", "busan"), (3,)),
    ]
    # Subscriber 4 got nothing, but the window was looked at: it is covered too.
    assert plan.covered == dict.fromkeys((1, 2, 3, 4), Cursor(utc(2024, 5, 31, 23)))
    assert plan.messages == 3


def test_no_matching_post_means_no_email() -> None:
    announced = [post("seoul", utc(2024, 5, 31, 10), categories=("서울",))]
    plan = plan_digests(
        [Recipient(subscriber(1, categories=("부산",)))],
        announced,
        now=NOW,
        schedule=SCHEDULE,
        max_posts=20,
    )
    assert plan.digests == ()


def test_planning_the_same_period_again_finds_nothing() -> None:
    announced = [post("a", utc(2024, 5, 31, 10))]
    first = plan_digests(
        [Recipient(subscriber(1))], announced, now=NOW, schedule=SCHEDULE, max_posts=20
    )
    again = plan_digests(
        [Recipient(subscriber(1), first.covered[1])],
        announced,
        now=NOW + timedelta(minutes=5),
        schedule=SCHEDULE,
        max_posts=20,
    )
    assert len(first.digests) == 1
    assert again.digests == () and again.covered == {}


def test_each_frequency_gets_its_own_period() -> None:
    announced = [post("a", utc(2024, 5, 31, 10))]
    recipients = [
        Recipient(subscriber(1, frequency=Frequency.IMMEDIATE)),
        Recipient(subscriber(2, frequency=Frequency.DAILY)),
        Recipient(subscriber(3, frequency=Frequency.WEEKLY)),
    ]
    monday = utc(2024, 6, 3, 0, 30)  # 09:30 KST on a Monday: all three are due
    plan = plan_digests(recipients, announced, now=monday, schedule=SCHEDULE, max_posts=20)
    assert sorted(d.period.key for d in plan.digests) == [
        "daily:2024-06-03@Asia/Seoul",
        "immediate:2024-06-03T00:30:00Z@Asia/Seoul",
        "weekly:2024-06-03@Asia/Seoul",
    ]


def test_a_weekly_subscriber_waits_for_the_weekday() -> None:
    announced = [post("a", utc(2024, 6, 4, 10))]  # Tuesday
    recipients = [Recipient(subscriber(1, frequency=Frequency.WEEKLY))]
    thursday = utc(2024, 6, 6, 0, 30)
    monday = utc(2024, 6, 10, 0, 30)
    assert (
        plan_digests(recipients, announced, now=thursday, schedule=SCHEDULE, max_posts=20).digests
        == ()
    )
    [digest] = plan_digests(
        recipients, announced, now=monday, schedule=SCHEDULE, max_posts=20
    ).digests
    assert digest.period.key == "weekly:2024-06-10@Asia/Seoul"


def test_an_immediate_subscriber_gets_each_post_once() -> None:
    first_post = post("a", utc(2024, 6, 1, 8, 0, 10))
    recipient = Recipient(subscriber(1, frequency=Frequency.IMMEDIATE))
    first = plan_digests(
        [recipient], [first_post], now=utc(2024, 6, 1, 8, 1), schedule=SCHEDULE, max_posts=20
    )
    second_post = post("b", utc(2024, 6, 1, 8, 1, 30))
    second = plan_digests(
        [replace(recipient, cursor=first.covered[1])],
        [first_post, second_post],
        now=utc(2024, 6, 1, 8, 2),
        schedule=SCHEDULE,
        max_posts=20,
    )
    assert [d.post_ids for d in first.digests] == [("a",)]
    assert [d.post_ids for d in second.digests] == [("b",)]


def test_a_late_period_rolls_its_posts_into_the_next() -> None:
    announced = [post("a", utc(2024, 5, 31, 10))]
    recipients = [Recipient(subscriber(1))]
    evening = utc(2024, 6, 1, 12)  # 21:00 KST, 13 h after the 08:00 send
    late = plan_digests(recipients, announced, now=evening, schedule=SCHEDULE, max_posts=20)
    assert late.digests == () and late.late == 1 and late.covered == {}
    next_morning = utc(2024, 6, 2, 0)
    [digest] = plan_digests(
        recipients, announced, now=next_morning, schedule=SCHEDULE, max_posts=20
    ).digests
    assert digest.period.key == "daily:2024-06-02@Asia/Seoul" and digest.post_ids == ("a",)


def test_capped_posts_go_into_the_next_digest() -> None:
    """At most max_posts in one digest; the rest of that window are carried, not dropped."""
    announced = [post(f"p{i}", utc(2024, 5, 31, i)) for i in range(5)]
    first = plan_digests(
        [Recipient(subscriber(1))], announced, now=NOW, schedule=SCHEDULE, max_posts=2
    )
    assert [d.post_ids for d in first.digests] == [("p1", "p0")]
    second = plan_digests(
        [Recipient(subscriber(1), first.covered[1])],
        announced,
        now=utc(2024, 6, 2, 0, 30),
        schedule=SCHEDULE,
        max_posts=2,
    )
    assert [d.post_ids for d in second.digests] == [("p3", "p2")]
    third = plan_digests(
        [Recipient(subscriber(1), second.covered[1])],
        announced,
        now=utc(2024, 6, 3, 0, 30),
        schedule=SCHEDULE,
        max_posts=2,
    )
    assert [d.post_ids for d in third.digests] == [("p4",)]
    assert third.covered[1] == Cursor(utc(2024, 6, 2, 23))


def test_the_flood_guard_counts_more_than_the_limit() -> None:
    assert not is_flood(50, 50)
    assert is_flood(51, 50)


@pytest.mark.parametrize("zone", [SEOUL, HONOLULU, NEW_YORK, "Europe/London", "UTC"])
def test_consecutive_daily_periods_tile_time_without_gaps(zone: str) -> None:
    """Over a year (two DST changes where there are any), each period starts where the
    previous ended, so every announcement falls in exactly one."""
    moment = utc(2024, 1, 1, 12)
    previous: Period | None = None
    while moment < utc(2025, 1, 1):
        period = due_period(Frequency.DAILY, zone, moment, PATIENT)
        assert period is not None
        if previous is not None and period.key != previous.key:
            assert period.start == previous.end
        previous = period
        moment += timedelta(hours=6)
