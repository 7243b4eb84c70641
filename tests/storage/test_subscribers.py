"""Subscribers in the store, on SQLite and PostgreSQL: upserts, their rules, forget, events."""

from __future__ import annotations

import multiprocessing
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Table, func, insert, select, text

from feedsvc.models import (
    Frequency,
    Subscriber,
    SubscriberEventKind,
    SubscriberInput,
    SubscriberStatus,
)
from feedsvc.storage import Store, open_store
from feedsvc.storage.engine import current_revision, make_engine, run_alembic_upgrade
from feedsvc.storage.posts import SourceRow, load_sources
from feedsvc.storage.schema import (
    HEAD_REVISION,
    posts,
    subscriber_events,
    subscribers,
    suppressions,
)
from feedsvc.storage.subscriber_import import BatchWriter, write_batch
from feedsvc.storage.subscriber_merge import UPDATABLE
from feedsvc.storage.subscriber_upserts import UpsertResult, save_subscribers
from feedsvc.storage.subscribers import (
    count_by_status,
    events_of,
    forget,
    get_subscriber,
    is_suppressed,
    iter_subscribers,
    unsubscribe,
)

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
ACTOR = "cli:편집팀"
PROFILE = frozenset({"name", "frequency", "categories", "timezone"})


def _input(email: str = "minji@example.kr", **changes: object) -> SubscriberInput:
    values: dict[str, object] = {"email": email, "name": "구독자 김민지"}
    values.update(changes)
    return SubscriberInput(**values)  # type: ignore[arg-type]


def _save(
    store: Store,
    rows: Sequence[SubscriberInput],
    updates: Collection[str] = PROFILE | {"status"},
    now: datetime = T0,
    event: SubscriberEventKind = SubscriberEventKind.IMPORTED,
    dry_run: bool = False,
) -> list[UpsertResult]:
    return write_batch(
        store,
        rows,
        updates=updates,
        now=now,
        actor=ACTOR,
        event=event,
        source="구독자.csv",
        dry_run=dry_run,
    )


def _get(store: Store, email: str = "minji@example.kr") -> Subscriber:
    with store.read() as conn:
        found = get_subscriber(conn, email)
    assert found is not None
    return found


def _status(store: Store, email: str = "minji@example.kr") -> SubscriberStatus:
    return _get(store, email).status


def _count(store: Store, table: Table) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_new_address_is_added_with_every_field(store: Store) -> None:
    row = _input(
        frequency=Frequency.WEEKLY,
        categories=("부산", "스마트시티"),
        timezone="Asia/Seoul",
        consent_source="import 구독자.csv",
        line=2,
    )
    assert _save(store, [row]) == [UpsertResult.ADDED]
    with store.read() as conn:
        saved = get_subscriber(conn, "minji@example.kr")
    assert saved is not None
    assert (saved.name, saved.frequency, saved.categories, saved.timezone) == (
        "구독자 김민지",
        Frequency.WEEKLY,
        ("부산", "스마트시티"),
        "Asia/Seoul",
    )
    assert (saved.status, saved.created, saved.confirmed, saved.unsubscribed) == (
        SubscriberStatus.ACTIVE,
        T0,
        None,
        None,
    )
    assert saved.consent_source == "import 구독자.csv"


def test_every_written_row_gets_an_event_naming_file_and_line(store: Store) -> None:
    _save(store, [_input(line=2)])
    _save(store, [_input(name="김민지", line=9)], now=T1)
    with store.read() as conn:
        saved = get_subscriber(conn, "minji@example.kr")
        assert saved is not None
        events = events_of(conn, saved.id)
    assert [(e.kind, e.at, e.actor) for e in events] == [
        (SubscriberEventKind.IMPORTED, T0, ACTOR),
        (SubscriberEventKind.IMPORTED, T1, ACTOR),
    ]
    assert events[0].detail == {
        "outcome": "added",
        "status": "active",
        "file": "구독자.csv",
        "line": 2,
    }
    assert events[1].detail["outcome"] == "updated"


def test_a_single_add_is_subscribed_then_updated(store: Store) -> None:
    for _ in range(2):
        _save(store, [_input()], event=SubscriberEventKind.SUBSCRIBED)
    with store.read() as conn:
        saved = get_subscriber(conn, "minji@example.kr")
        assert saved is not None
        kinds = [e.kind for e in events_of(conn, saved.id)]
    assert kinds == [SubscriberEventKind.SUBSCRIBED, SubscriberEventKind.UPDATED]


def test_existing_address_is_updated_and_keeps_its_creation_time(store: Store) -> None:
    _save(store, [_input()])
    assert _save(store, [_input(name="김민지", frequency=Frequency.IMMEDIATE)], now=T1) == [
        UpsertResult.UPDATED
    ]
    with store.read() as conn:
        saved = get_subscriber(conn, "minji@example.kr")
    assert saved is not None
    assert (saved.name, saved.frequency, saved.created) == ("김민지", Frequency.IMMEDIATE, T0)


def test_fields_not_in_updates_are_left_as_they_are(store: Store) -> None:
    _save(store, [_input(timezone="Asia/Seoul", categories=("부산",))])
    _save(store, [_input(name="다른 이름", timezone=None, categories=())], updates={"name"})
    with store.read() as conn:
        saved = get_subscriber(conn, "minji@example.kr")
    assert saved is not None
    assert (saved.name, saved.timezone, saved.categories) == ("다른 이름", "Asia/Seoul", ("부산",))


def test_no_updatable_field_still_records_the_row(store: Store) -> None:
    _save(store, [_input()])
    assert _save(store, [_input(name="무시됨")], updates=()) == [UpsertResult.UPDATED]
    assert _get(store).name == "구독자 김민지"


@pytest.mark.parametrize(
    "stopped",
    [SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED],
)
def test_import_never_reactivates_a_stopped_address(
    store: Store, stopped: SubscriberStatus
) -> None:
    _save(store, [_input(status=stopped)])
    before = _get(store)
    outcome = _save(store, [_input(name="새 이름", status=SubscriberStatus.ACTIVE)], now=T1)
    assert outcome == [UpsertResult.KEPT_STOPPED]
    after = _get(store)
    assert after.status == stopped
    assert after.unsubscribed == before.unsubscribed
    assert after.name == "새 이름"


def test_unsubscribed_without_a_date_gets_the_time_of_the_import(store: Store) -> None:
    _save(store, [_input(status=SubscriberStatus.UNSUBSCRIBED)])
    assert _get(store).unsubscribed == T0


def test_import_can_stop_an_active_address(store: Store) -> None:
    _save(store, [_input()])
    _save(store, [_input(status=SubscriberStatus.UNSUBSCRIBED)], now=T1)
    after = _get(store)
    assert (after.status, after.unsubscribed) == (SubscriberStatus.UNSUBSCRIBED, T1)


def test_active_address_never_goes_back_to_pending(store: Store) -> None:
    _save(store, [_input()])
    assert _save(store, [_input(status=SubscriberStatus.PENDING)]) == [UpsertResult.UPDATED]
    assert _status(store) == SubscriberStatus.ACTIVE


def test_pending_address_becomes_active(store: Store) -> None:
    _save(store, [_input(status=SubscriberStatus.PENDING)])
    _save(store, [_input(status=SubscriberStatus.ACTIVE)])
    assert _status(store) == SubscriberStatus.ACTIVE


def test_confirmation_time_is_only_ever_filled_in(store: Store) -> None:
    _save(store, [_input(confirmed=T0)], updates={"confirmed"})
    _save(store, [_input(confirmed=T1)], updates={"confirmed"})
    _save(store, [_input(confirmed=None)], updates={"confirmed"})
    assert _get(store).confirmed == T0


def test_dry_run_predicts_and_writes_nothing(store: Store) -> None:
    _save(store, [_input("old@example.kr", status=SubscriberStatus.BOUNCED)])
    rows = [_input("new@example.kr"), _input("old@example.kr")]
    assert _save(store, rows, dry_run=True) == [UpsertResult.ADDED, UpsertResult.KEPT_STOPPED]
    assert _count(store, subscribers) == 1
    assert _count(store, subscriber_events) == 1


def test_a_batch_with_the_same_address_twice_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="same address twice"), store.write() as conn:
        save_subscribers(
            conn,
            [_input(), _input()],
            updates=PROFILE,
            now=T0,
            actor=ACTOR,
            event=SubscriberEventKind.IMPORTED,
        )


def test_unknown_update_field_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot update"), store.write() as conn:
        save_subscribers(
            conn,
            [_input()],
            updates={"created"},
            now=T0,
            actor=ACTOR,
            event=SubscriberEventKind.IMPORTED,
        )
    assert "created" not in UPDATABLE


def test_several_batches_in_one_transaction_all_land(store: Store) -> None:
    with store.write() as conn:
        for start in (0, 3):
            save_subscribers(
                conn,
                [_input(f"user{i}@example.kr") for i in range(start, start + 3)],
                updates=PROFILE,
                now=T0,
                actor=ACTOR,
                event=SubscriberEventKind.IMPORTED,
            )
    assert _count(store, subscribers) == 6
    assert _count(store, subscriber_events) == 6


def test_outcomes_follow_input_order_not_address_order(store: Store) -> None:
    _save(store, [_input("b@example.kr")])
    rows = [_input("c@example.kr"), _input("b@example.kr"), _input("a@example.kr")]
    assert _save(store, rows) == [UpsertResult.ADDED, UpsertResult.UPDATED, UpsertResult.ADDED]


def test_unsubscribe_keeps_the_record_and_logs_it(store: Store) -> None:
    _save(store, [_input()])
    with store.write() as conn:
        before = unsubscribe(conn, "minji@example.kr", now=T1, actor=ACTOR)
    assert before is not None and before.status == SubscriberStatus.ACTIVE
    with store.read() as conn:
        after = get_subscriber(conn, "minji@example.kr")
        assert after is not None
        kinds = [e.kind for e in events_of(conn, after.id)]
    assert (after.status, after.unsubscribed) == (SubscriberStatus.UNSUBSCRIBED, T1)
    assert kinds[-1] == SubscriberEventKind.UNSUBSCRIBED


def test_unsubscribing_an_unknown_address_changes_nothing(store: Store) -> None:
    with store.write() as conn:
        assert unsubscribe(conn, "nobody@example.kr", now=T1, actor=ACTOR) is None
    assert _count(store, subscriber_events) == 0


def test_unsubscribing_a_bounced_address_leaves_it_bounced(store: Store) -> None:
    _save(store, [_input(status=SubscriberStatus.BOUNCED)])
    with store.write() as conn:
        unsubscribe(conn, "minji@example.kr", now=T1, actor=ACTOR)
    assert _status(store) == SubscriberStatus.BOUNCED


def test_forget_erases_the_subscriber_and_its_events(store: Store) -> None:
    _save(store, [_input(), _input("jisu@example.kr", name="구독자 박지수")])
    with store.write() as conn:
        assert forget(conn, "minji@example.kr", now=T1, actor=ACTOR) is True
    with store.read() as conn:
        assert get_subscriber(conn, "minji@example.kr") is None
        assert get_subscriber(conn, "jisu@example.kr") is not None
        assert is_suppressed(conn, "minji@example.kr")
        [erased] = events_of(conn, None)
        rows = conn.execute(select(subscriber_events.c.detail)).scalars().all()
    assert erased.kind == SubscriberEventKind.FORGOTTEN
    assert not any("minji" in (row or "") for row in rows)
    assert _count(store, subscriber_events) == 2  # jisu's, and the erasure


def test_forgotten_address_is_never_saved_again(store: Store) -> None:
    _save(store, [_input()])
    with store.write() as conn:
        forget(conn, "minji@example.kr", now=T1, actor=ACTOR)
    rows = [_input("jisu@example.kr"), _input()]
    assert _save(store, rows) == [UpsertResult.ADDED, UpsertResult.SUPPRESSED]
    assert _save(store, rows, dry_run=True) == [UpsertResult.UPDATED, UpsertResult.SUPPRESSED]
    with store.read() as conn:
        assert get_subscriber(conn, "minji@example.kr") is None


def test_forgetting_an_unknown_address_still_suppresses_it(store: Store) -> None:
    for _ in range(2):
        with store.write() as conn:
            assert forget(conn, "stranger@example.kr", now=T1, actor=ACTOR) is False
    assert _count(store, suppressions) == 1
    assert _save(store, [_input("stranger@example.kr")]) == [UpsertResult.SUPPRESSED]


def test_listing_filters_by_status_in_the_order_added(store: Store) -> None:
    _save(store, [_input("c@example.kr", name="구독자 셋")])
    _save(store, [_input("a@example.kr", status=SubscriberStatus.PENDING)])
    _save(store, [_input("b@example.kr", status=SubscriberStatus.BOUNCED)])
    with store.read() as conn:
        everyone = [s.email for s in iter_subscribers(conn)]
        some = [
            s.email
            for s in iter_subscribers(conn, [SubscriberStatus.PENDING, SubscriberStatus.ACTIVE])
        ]
        counts = count_by_status(conn)
    assert everyone == ["c@example.kr", "a@example.kr", "b@example.kr"]
    assert some == ["c@example.kr", "a@example.kr"]
    assert counts[SubscriberStatus.BOUNCED] == 1
    assert counts[SubscriberStatus.COMPLAINED] == 0


def test_batch_writer_returns_every_batch_in_order(store: Store) -> None:
    batches = [[_input(f"user{n}-{i}@example.kr") for i in range(50)] for n in range(5)]
    done = []
    with BatchWriter(
        store, updates=PROFILE, now=T0, actor=ACTOR, event=SubscriberEventKind.IMPORTED
    ) as writer:
        for batch in batches:
            done += writer.submit(batch)
        done += writer.finish()
    assert [list(rows) for rows, _ in done] == batches
    assert all(outcomes == [UpsertResult.ADDED] * 50 for _, outcomes in done)
    assert _count(store, subscribers) == 250


def test_batch_writer_raises_a_failed_batch(store: Store) -> None:
    with (
        pytest.raises(ValueError, match="same address twice"),
        BatchWriter(
            store, updates=PROFILE, now=T0, actor=ACTOR, event=SubscriberEventKind.IMPORTED
        ) as writer,
    ):
        writer.submit([_input(), _input()])
        writer.finish()


# --- migrations ---------------------------------------------------------------------


COLUMNS_0001 = [name for name in SourceRow.__slots__ if name != "problem_message"]


def _source_row() -> SourceRow:
    return SourceRow(
        source_path="2024/부산-소식.md",
        post_id="https://news.example.kr/2024/busan/",
        slug="busan",
        size=10,
        mtime_ns=1,
        content_hash="h",
        fingerprint="f",
        first_seen=T0,
        published=T0,
        meta=None,
        render_key=None,
        problem=None,
        problem_line=None,
    )


def test_store_at_0001_is_migrated_keeping_its_posts(store_url: str) -> None:
    engine = make_engine(store_url)
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn, "0001")
        row = _source_row()  # with the columns of 0001 (the newer ones are added later)
        conn.execute(insert(posts).values({k: getattr(row, k) for k in COLUMNS_0001}))
    engine.dispose()
    opened = open_store(store_url)
    try:
        assert str(opened.migration) == f"migrated the store from revision 0001 to {HEAD_REVISION}"
        with opened.read() as conn:
            assert current_revision(conn) == HEAD_REVISION
            assert list(load_sources(conn)) == ["2024/부산-소식.md"]
        assert _save(opened, [_input()]) == [UpsertResult.ADDED]
    finally:
        opened.close()


def test_opening_says_whether_it_created_the_store(store_url: str) -> None:
    first = open_store(store_url)
    second = open_store(store_url)
    assert str(first.migration) == f"created a new store at revision {HEAD_REVISION}"
    assert second.migration is None
    first.close()
    second.close()


# --- several processes at once --------------------------------------------------------


def _import_in_process(url: str, prefix: str, shared: int) -> None:
    opened = open_store(url)
    own = [_input(f"{prefix}{i}@example.kr", name=f"구독자 {prefix}{i}") for i in range(300)]
    common = [_input(f"shared{i}@example.kr", name=f"공유 {prefix}") for i in range(shared)]
    rows = own + common
    for start in range(0, len(rows), 50):
        _save(opened, rows[start : start + 50])
    for i in range(20):
        _save(
            opened,
            [_input(f"{prefix}-add{i}@example.kr")],
            event=SubscriberEventKind.SUBSCRIBED,
        )
    opened.close()


def test_two_processes_importing_at_once_lose_nothing(store_url: str) -> None:
    """Concurrent imports of overlapping files (SQLite WAL + BEGIN IMMEDIATE, PostgreSQL)."""
    open_store(store_url).close()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_import_in_process, args=(store_url, p, 200)) for p in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    opened = open_store(store_url)
    with opened.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM subscribers")).scalar() == 2 * 320 + 200
        assert (
            conn.execute(text("SELECT count(*) FROM subscriber_events")).scalar()
            == 2 * 320 + 2 * 200
        )
    opened.close()
