"""Digests in the store (SQLite and PostgreSQL): announcements, the flood guard, creating
digests once, rendering once, claiming and sending through the outbox."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, delete, func, select, update

from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.mime import html_part, parse_message
from feedsvc.delivery.outbox import OutboxBackend
from feedsvc.models import DeliveryStatus, Post
from feedsvc.newsletter.jobs import (
    Renderer,
    create_due_digests,
    plan_due_digests,
    render_pending,
    send_pending,
)
from feedsvc.newsletter.tokens import Tokens
from feedsvc.storage import Store
from feedsvc.storage.announcements import held_posts, note_published, release_held
from feedsvc.storage.deliveries import delivery_counts
from feedsvc.storage.delivery_claims import claim_due
from feedsvc.storage.delivery_messages import save_rendered
from feedsvc.storage.delivery_outcomes import DeliveryOutcome, Result, record_outcomes
from feedsvc.storage.digests import load_announced
from feedsvc.storage.schema import (
    announcements,
    deliveries,
    delivery_messages,
    digest_cursors,
    digests,
    posts,
)
from feedsvc.storage.subscribers import forget, unsubscribe
from tests.digest_helpers import (
    SECRET,
    T0,
    add_subscriber,
    digest_settings,
    make_post,
    sample_posts,
    store_post,
)

ANNOUNCED = T0 + timedelta(hours=1)  # 20:00 KST on Friday 31 May
MORNING = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)  # 09:00 KST: the daily digest is due
LEASE = timedelta(minutes=5)


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": store_url})


def publish(
    store: Store, items: tuple[Post, ...], at: datetime = ANNOUNCED, limit: int = 50
) -> list[str]:
    with store.write() as conn:
        for post in items:
            store_post(conn, post)
        return note_published(conn, [p.meta for p in items], at, flood_limit=limit)


def count(store: Store, table: object) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


# --- announcements -----------------------------------------------------------------------


def test_a_post_becomes_new_once_whatever_its_edits(store: Store) -> None:
    post = make_post("festival")
    assert publish(store, (post,)) == [post.meta.id]
    edited = replace(post.meta, title="해운대 바다축제 (수정)", updated=ANNOUNCED)
    with store.write() as conn:
        assert note_published(conn, [edited], ANNOUNCED + timedelta(days=1)) == []
    with store.read() as conn:
        row = conn.execute(select(announcements)).one()
    assert (row.became_new_at, row.eligible_at, row.held) == (ANNOUNCED, ANNOUNCED, False)


def test_drafts_and_future_posts_are_not_announced(store: Store) -> None:
    draft = replace(make_post("draft").meta, draft=True)
    future = make_post("future", published=ANNOUNCED + timedelta(hours=1)).meta
    with store.write() as conn:
        assert note_published(conn, [draft, future], ANNOUNCED) == []
    assert count(store, announcements) == 0


def test_the_flood_guard_holds_too_many_new_posts(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    flood = tuple(make_post(f"moved-{i}", title=f"옮긴 글 {i}") for i in range(3))
    with caplog.at_level(logging.WARNING, logger="feedsvc.digests"):
        assert publish(store, flood, limit=2) == []
    assert "flood guard: 3 posts became new at once" in caplog.text
    assert "digest.flood_limit = 2" in caplog.text
    assert "feedsvc digest release" in caplog.text
    with store.read() as conn:
        assert [h.source_path for h in held_posts(conn)] == [
            "moved-0.md",
            "moved-1.md",
            "moved-2.md",
        ]
        assert load_announced(conn, since=None, until=MORNING) == []


def test_released_posts_become_new_at_release(store: Store) -> None:
    flood = tuple(make_post(f"moved-{i}") for i in range(3))
    publish(store, flood, limit=2)
    released_at = ANNOUNCED + timedelta(hours=2)
    with store.write() as conn:
        assert len(release_held(conn, released_at)) == 3
    with store.read() as conn:
        assert held_posts(conn) == []
        found = load_announced(conn, since=None, until=MORNING)
    assert {a.eligible_at for a in found} == {released_at}


def test_discarded_posts_are_never_emailed(store: Store) -> None:
    publish(store, tuple(make_post(f"moved-{i}") for i in range(3)), limit=2)
    with store.write() as conn:
        release_held(conn, ANNOUNCED, discard=True)
    with store.read() as conn:
        assert held_posts(conn) == []
        assert load_announced(conn, since=None, until=MORNING) == []
    with store.write() as conn:
        assert note_published(conn, [make_post("moved-0").meta], MORNING) == []


def test_a_removed_post_is_no_longer_announced(store: Store) -> None:
    publish(store, sample_posts())
    with store.write() as conn:
        conn.execute(delete(posts).where(posts.c.source_path == "bus-routes.md"))
    with store.read() as conn:
        found = load_announced(conn, since=None, until=MORNING)
    assert sorted(a.post_id.rsplit("/", 2)[-2] for a in found) == [
        "haeundae-festival",
        "smart-city-expo",
    ]


# --- creating digests ------------------------------------------------------------------------


def _subscribers(store: Store) -> dict[str, int]:
    with store.write() as conn:
        return {
            "minji": add_subscriber(conn, "minji@example.kr", categories=("부산",)),
            "jisu": add_subscriber(conn, "jisu@example.kr", name="박지수"),
            "seojun": add_subscriber(conn, "seojun@example.kr", categories=("부산",)),
            "weekly": add_subscriber(conn, "weekly@example.kr", frequency="weekly"),
            "gone": add_subscriber(conn, "gone@example.kr", status="unsubscribed"),
        }


def test_due_digests_are_created_once(store: Store, settings: Settings) -> None:
    ids = _subscribers(store)
    publish(store, sample_posts())
    first = create_due_digests(store, settings, MORNING)
    assert first.created is not None
    assert (first.created.digests, first.created.deliveries) == (2, 3)
    again = create_due_digests(store, settings, MORNING + timedelta(minutes=10))
    assert again.created is not None
    assert (again.created.digests, again.created.deliveries) == (0, 0)
    assert count(store, digests) == 2 and count(store, deliveries) == 3
    with store.read() as conn:
        rows = conn.execute(select(deliveries.c.subscriber_id, deliveries.c.status)).all()
        cursors: dict[int, datetime] = {
            row.subscriber_id: row.covered_until for row in conn.execute(select(digest_cursors))
        }
    assert sorted(rows) == sorted((ids[name], "pending") for name in ("minji", "jisu", "seojun"))
    assert cursors == dict.fromkeys(
        (ids["minji"], ids["jisu"], ids["seojun"]), datetime(2024, 5, 31, 23, tzinfo=UTC)
    )


def test_a_dry_run_plans_and_leaves_no_trace(store: Store, settings: Settings) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    due = plan_due_digests(store, settings, MORNING)
    assert due.plan.messages == 3
    assert count(store, digests) == 0 and count(store, deliveries) == 0
    assert count(store, digest_cursors) == 0


def test_a_dry_run_announces_unannounced_posts_only_in_its_plan(
    store: Store, settings: Settings
) -> None:
    """Posts the build has not announced become new at the run's time: in the dry run's
    plan (for the next period, so no message now), rolled back afterwards."""
    _subscribers(store)
    with store.write() as conn:
        for post in sample_posts():
            store_post(conn, post)
    due = plan_due_digests(store, settings, MORNING)
    assert len(due.announced) == 3 and due.plan.messages == 0
    assert count(store, announcements) == 0


def test_the_next_period_only_gets_the_posts_that_are_new_since(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    later = make_post(
        "later", published=MORNING + timedelta(hours=2), title="서울 소식", categories=("서울",)
    )
    publish(store, (later,), at=MORNING + timedelta(hours=2))
    # The edited festival post must not come back either.
    with store.write() as conn:
        conn.execute(update(posts).values(summary="수정된 요약"))
    second = create_due_digests(store, settings, MORNING + timedelta(days=1))
    assert [d.post_ids for d in second.plan.digests] == [(later.meta.id,)]
    assert second.plan.messages == 1  # jisu (every category); the others want 부산


def test_forgetting_a_subscriber_deletes_their_deliveries_and_cursor(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    with store.write() as conn:
        assert forget(conn, "jisu@example.kr", now=MORNING, actor="test")
    assert count(store, deliveries) == 2
    assert count(store, digest_cursors) == 2


# --- rendering and sending -------------------------------------------------------------------


def _with_bytes() -> Select[Any]:
    """Every delivery row with its message bytes (as ``message``)."""
    return select(deliveries, delivery_messages.c.message).join(
        delivery_messages, delivery_messages.c.delivery_id == deliveries.c.id
    )


def renderer(settings: Settings) -> Renderer:
    return Renderer(settings, Tokens(SECRET))


def test_messages_are_rendered_once_and_sent_to_the_outbox(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    assert render_pending(store, renderer(settings), MORNING).rendered == 3
    assert render_pending(store, renderer(settings), MORNING).rendered == 0
    with store.read() as conn:
        stored = {row.subscriber_id: row for row in conn.execute(_with_bytes())}
    for row in stored.values():
        message = parse_message(row.message)
        assert message["Message-ID"] == row.message_id
        assert message["To"].addresses[0].addr_spec.endswith("@example.kr")
    outbox = tmp_path / "outbox"
    sent = send_pending(store, OutboxBackend(outbox), FixedClock(MORNING))
    assert (sent.sent, sent.failed, sent.retried) == (3, 0, 0)
    files = sorted(p.name for p in outbox.iterdir())
    assert files == sorted(f"{row.message_id.strip('<>')}.eml" for row in stored.values())
    for row in stored.values():
        assert (outbox / f"{row.message_id.strip('<>')}.eml").read_bytes() == row.message
    assert send_pending(store, OutboxBackend(outbox), FixedClock(MORNING)).sent == 0
    with store.read() as conn:
        counts = delivery_counts(conn)
        sent_at = set(conn.execute(select(deliveries.c.sent_at)).scalars())
    assert counts[DeliveryStatus.SENT] == 3 and sent_at == {MORNING}


def test_jisu_gets_every_category_and_minji_only_busan(store: Store, settings: Settings) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, renderer(settings), MORNING)
    with store.read() as conn:
        rows = conn.execute(select(delivery_messages.c.message)).scalars().all()
    by_address = {parse_message(m)["To"].addresses[0].addr_spec: html_part(m) for m in rows}
    assert "부산 스마트시티 박람회" in by_address["jisu@example.kr"]
    assert "부산 스마트시티 박람회" not in by_address["minji@example.kr"]
    assert "해운대 바다축제" in by_address["minji@example.kr"]


def test_rendered_bytes_are_never_replaced(store: Store, settings: Settings) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, renderer(settings), MORNING)
    query = select(deliveries.c.id, deliveries.c.message_id, delivery_messages.c.message).join(
        delivery_messages, delivery_messages.c.delivery_id == deliveries.c.id
    )
    with store.read() as conn:
        first = {row.id: tuple(row) for row in conn.execute(query)}
    with store.write() as conn:
        save_rendered(conn, [(i, "<other@x>", b"other bytes", None) for i in first])
    with store.read() as conn:
        assert {row.id: tuple(row) for row in conn.execute(query)} == first


def test_a_subscriber_who_leaves_before_rendering_is_cancelled(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    with store.write() as conn:
        unsubscribe(conn, "minji@example.kr", now=MORNING, actor="test")
    report = render_pending(store, renderer(settings), MORNING)
    assert (report.rendered, report.cancelled) == (2, 1)


def test_a_subscriber_who_leaves_before_sending_is_cancelled_at_claim(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, renderer(settings), MORNING)
    with store.write() as conn:
        unsubscribe(conn, "jisu@example.kr", now=MORNING, actor="test")
    with store.write() as conn:
        claimed = [c.message for c in claim_due(conn, MORNING, limit=10, lease=LEASE)]
    assert sorted(c.email for c in claimed) == ["minji@example.kr", "seojun@example.kr"]
    with store.read() as conn:
        counts = delivery_counts(conn)
    assert (counts[DeliveryStatus.SENDING], counts[DeliveryStatus.CANCELLED]) == (2, 1)


def test_an_expired_lease_is_claimed_again_with_the_same_bytes(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, renderer(settings), MORNING)
    with store.write() as conn:
        first = [c.message for c in claim_due(conn, MORNING, limit=10, lease=LEASE)]
    with store.write() as conn:
        assert claim_due(conn, MORNING + LEASE / 2, limit=10, lease=LEASE) == []
    with store.write() as conn:
        again = [c.message for c in claim_due(conn, MORNING + LEASE * 2, limit=10, lease=LEASE)]
    assert [(c.delivery_id, c.message_id, c.message) for c in again] == [
        (c.delivery_id, c.message_id, c.message) for c in first
    ]
    assert {c.attempts for c in again} == {2}
    with store.write() as conn:
        sent = DeliveryOutcome(again[0].delivery_id, again[0].subscriber_id, Result.SENT)
        record_outcomes(conn, [sent], MORNING, bounce_limit=1)
        counts = delivery_counts(conn)
    assert counts[DeliveryStatus.SENT] == 1


def test_digests_whose_posts_were_all_removed_are_cancelled(
    store: Store, settings: Settings
) -> None:
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    with store.write() as conn:
        conn.execute(delete(posts))
    report = render_pending(store, renderer(settings), MORNING)
    assert (report.rendered, report.cancelled) == (0, 3)


def test_postgresql_senders_skip_rows_another_sender_holds(
    store: Store, settings: Settings
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers instead")
    _subscribers(store)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, renderer(settings), MORNING)
    with store.engine.connect() as first, first.begin():
        mine = [c.message for c in claim_due(first, MORNING, limit=2, lease=LEASE)]
        with store.write() as second:
            theirs = [c.message for c in claim_due(second, MORNING, limit=10, lease=LEASE)]
    assert len(mine) == 2 and len(theirs) == 1
    assert not {c.delivery_id for c in mine} & {c.delivery_id for c in theirs}


def test_a_first_build_announces_as_it_goes_and_mends_the_duplicates(store: Store) -> None:
    """announce_first per chunk, then settle_first once the duplicates are known: the rows
    are what note_published would have written for the posts that stayed."""
    from feedsvc.storage.announcements import announce_first, settle_first

    loser = replace(make_post("중복-하", post_id="같은-글").meta, source="하.md")
    winner = replace(make_post("중복-가", post_id="같은-글").meta, source="가.md")
    gone = replace(make_post("슬러그-중복").meta, source="나중.md")
    plain = make_post("광안리-불꽃축제").meta
    late = make_post("해운대-모래축제").meta  # live, though no chunk recorded it
    recorded: dict[str, str] = {}
    with store.write() as conn:
        announce_first(conn, [loser, gone], ANNOUNCED, recorded)
        announce_first(conn, [winner, plain], ANNOUNCED, recorded)
        announced = settle_first(conn, recorded, [winner, plain, late], ANNOUNCED)
    with store.read() as conn:
        rows = conn.execute(
            select(announcements.c.post_id, announcements.c.source_path, announcements.c.held)
        ).all()
    expected = {(m.id, m.source, False) for m in (winner, plain, late)}
    assert {tuple(r) for r in rows} == expected
    assert announced == sorted(m.id for m in (winner, plain, late))
