"""Queries for digests: posts, subscribers and cursors, digests and their deliveries.

The build records new posts (:mod:`.announcements`). Digest creation reads those
announcements, the active subscribers and their cursors, and writes digests, deliveries
and cursors in one write transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL a
transaction-level advisory lock, :func:`lock_digest_creation`), so two runs never create
a digest twice, and running the same period again creates nothing. Message bytes are
written later, once per row (:mod:`.delivery_messages`); sending is in
:mod:`.delivery_claims` and :mod:`.delivery_outcomes`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, text

from feedsvc.models import (
    Announced,
    Cursor,
    DeliveryStatus,
    Frequency,
    Period,
    Post,
    PostMeta,
    Recipient,
    RunPlan,
    SubscriberStatus,
    meta_from_dict,
)
from feedsvc.storage.bulk import execute_many, upsert
from feedsvc.storage.schema import (
    announcements,
    deliveries,
    digest_cursors,
    digests,
    posts,
    subscribers,
)
from feedsvc.storage.subscribers import subscriber_from_row

log = logging.getLogger("feedsvc.digests")

_CHUNK = 500
# A fixed advisory-lock key: one digest creation at a time on one PostgreSQL database.
_CREATION_LOCK = 0x6665_6564_6469_67


# --- posts as the build left them ---------------------------------------------------------


def _live_rows(conn: Connection, now: datetime, ids: Sequence[str] | None) -> Iterator[Any]:
    query = select(
        posts.c.post_id,
        posts.c.meta,
        posts.c.html,
        posts.c.summary,
        posts.c.first_seen,
        posts.c.source_path,
    ).where(
        posts.c.post_id.is_not(None),
        posts.c.meta.is_not(None),
        posts.c.published.is_not(None),
        posts.c.published <= now,
        posts.c.refused.is_(None),  # a duplicate the build left out: never mailed
    )
    if ids is None:
        yield from conn.execute(query)
        return
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        yield from conn.execute(query.where(posts.c.post_id.in_(wanted[start : start + _CHUNK])))


def _first_per_id(rows: Iterator[Any]) -> dict[str, Any]:
    """One row per post id: the file that has had it longest (duplicates lose, as in
    the build)."""
    chosen: dict[str, Any] = {}
    for row in rows:
        old = chosen.get(row.post_id)
        if old is None or (row.first_seen, row.source_path) < (old.first_seen, old.source_path):
            chosen[row.post_id] = row
    return chosen


def live_metas(conn: Connection, now: datetime) -> list[PostMeta]:
    """Every published, non-draft post's last good metadata, newest first."""
    rows = _first_per_id(_live_rows(conn, now, None))
    metas = [meta_from_dict(json.loads(row.meta)) for row in rows.values()]
    live = [m for m in metas if not m.draft and m.published <= now]
    return sorted(live, key=lambda m: (m.published, m.id), reverse=True)


def load_posts(conn: Connection, ids: Sequence[str], now: datetime) -> dict[str, Post]:
    """The last good render of the posts ``ids`` that are still live (others are missing)."""
    found: dict[str, Post] = {}
    for post_id, row in _first_per_id(_live_rows(conn, now, ids)).items():
        meta = meta_from_dict(json.loads(row.meta))
        if not meta.draft:
            found[post_id] = Post(meta, row.html or "", row.summary or meta.excerpt or "")
    return found


def load_announced(conn: Connection, *, since: datetime | None, until: datetime) -> list[Announced]:
    """Live posts that became new in ``[since, until]`` (held, archived and discarded ones
    never). ``since`` is inclusive: a cursor may stop among posts new at one instant."""
    query = select(announcements.c.post_id, announcements.c.eligible_at).where(
        announcements.c.eligible_at.is_not(None), announcements.c.eligible_at <= until
    )
    if since is not None:
        query = query.where(announcements.c.eligible_at >= since)
    eligible = {post_id: at for post_id, at in conn.execute(query)}
    rows = _first_per_id(_live_rows(conn, until, sorted(eligible)))
    found: list[Announced] = []
    for post_id, row in rows.items():
        meta = meta_from_dict(json.loads(row.meta))
        if meta.draft:
            continue
        found.append(
            Announced(
                post_id=post_id,
                eligible_at=eligible[post_id],
                published=meta.published,
                categories=meta.categories,
                title=meta.title,
            )
        )
    return found


# --- subscribers and cursors ------------------------------------------------------------------


def load_recipients(conn: Connection) -> Iterator[Recipient]:
    """Every active subscriber with their cursor, in id order (streamed)."""
    query = (
        select(subscribers, digest_cursors.c.covered_until, digest_cursors.c.covered_post)
        .outerjoin(digest_cursors, digest_cursors.c.subscriber_id == subscribers.c.id)
        .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
        .order_by(subscribers.c.id)
    )
    # yield_per on the statement: on the connection it would make every later statement
    # in this transaction a server-side cursor (an INSERT cannot be one).
    for row in conn.execute(query.execution_options(yield_per=1000)):
        yield Recipient(subscriber_from_row(row), _cursor(row.covered_until, row.covered_post))


def _cursor(until: datetime | None, post: str | None) -> Cursor | None:
    return None if until is None else Cursor(until, post)


def cursor_of(conn: Connection, subscriber_id: int) -> Cursor | None:
    """How far one subscriber's announcements were considered (None: not yet)."""
    query = select(digest_cursors.c.covered_until, digest_cursors.c.covered_post).where(
        digest_cursors.c.subscriber_id == subscriber_id
    )
    row = conn.execute(query).first()
    return None if row is None else _cursor(row.covered_until, row.covered_post)


def oldest_cursor(conn: Connection) -> datetime | None:
    """The earliest point any active subscriber's window can start from (for loading)."""
    joined = func.coalesce(subscribers.c.confirmed, subscribers.c.created)
    start = func.coalesce(digest_cursors.c.covered_until, joined)
    query = (
        select(func.min(start))
        .select_from(subscribers)
        .outerjoin(digest_cursors, digest_cursors.c.subscriber_id == subscribers.c.id)
        .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
    )
    value = conn.execute(query).scalar()
    if isinstance(value, str):  # SQLite: min() of a coalesce loses the column type
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# --- creating digests -----------------------------------------------------------------------


def lock_digest_creation(conn: Connection) -> None:
    """Serialise digest creation: PostgreSQL advisory lock (SQLite: BEGIN IMMEDIATE did)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CREATION_LOCK})


@dataclass(frozen=True, slots=True)
class Created:
    digests: int
    deliveries: int


def create_digests(conn: Connection, plan: RunPlan, now: datetime) -> Created:
    """Write ``plan``'s digests, one pending delivery per recipient, and the cursors.

    Idempotent: a digest that exists (same period and posts) is reused, a delivery that
    exists (same digest and subscriber) is left as it is.
    """
    new_digests = 0
    delivery_rows: list[dict[str, Any]] = []
    for item in plan.digests:
        digest_id, created = _digest_id(conn, item.period, item.post_ids, item.content_key, now)
        new_digests += created
        delivery_rows.extend(
            {
                "digest_id": digest_id,
                "subscriber_id": subscriber_id,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for subscriber_id in item.subscriber_ids
        )
    before = _count_deliveries(conn)
    statement = upsert(conn, deliveries).on_conflict_do_nothing(
        index_elements=["digest_id", "subscriber_id"]
    )
    for start in range(0, len(delivery_rows), 5000):
        execute_many(conn, statement, deliveries, delivery_rows[start : start + 5000])
    cursor_rows = [
        {"subscriber_id": subscriber_id, "covered_until": until, "covered_post": post}
        for subscriber_id, (until, post) in sorted(plan.covered.items())
    ]
    cursor_upsert = upsert(conn, digest_cursors)
    cursor_upsert = cursor_upsert.on_conflict_do_update(
        index_elements=["subscriber_id"],
        set_={
            "covered_until": cursor_upsert.excluded.covered_until,
            "covered_post": cursor_upsert.excluded.covered_post,
        },
    )
    for start in range(0, len(cursor_rows), 5000):
        execute_many(conn, cursor_upsert, digest_cursors, cursor_rows[start : start + 5000])
    return Created(new_digests, _count_deliveries(conn) - before)


def _count_deliveries(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(deliveries)).scalar() or 0)


def _digest_id(
    conn: Connection, period: Period, post_ids: Sequence[str], key: str, now: datetime
) -> tuple[int, bool]:
    """The id of the digest (period, content), inserted if new; and whether it was."""
    where = and_(digests.c.period_key == period.key, digests.c.content_key == key)
    found = conn.execute(select(digests.c.id).where(where)).scalar()
    if found is not None:
        return int(found), False
    statement = upsert(conn, digests).on_conflict_do_nothing(
        index_elements=["period_key", "content_key"]
    )
    conn.execute(
        statement.values(
            frequency=period.frequency.value,
            period_key=period.key,
            content_key=key,
            period_start=period.start,
            period_end=period.end,
            post_ids=json.dumps(list(post_ids), ensure_ascii=False),
            created_at=now,
        )
    )
    return int(conn.execute(select(digests.c.id).where(where)).scalar_one()), True


@dataclass(frozen=True, slots=True)
class StoredDigest:
    id: int
    period: Period
    post_ids: tuple[str, ...]
    created_at: datetime


def load_digest(conn: Connection, digest_id: int) -> StoredDigest:
    row = conn.execute(select(digests).where(digests.c.id == digest_id)).one()
    key: str = row.period_key
    zone = key.rpartition("@")[2]
    period = Period(Frequency(row.frequency), key, row.period_start, row.period_end, zone)
    return StoredDigest(row.id, period, tuple(json.loads(row.post_ids)), row.created_at)


def digest_counts(conn: Connection) -> dict[str, tuple[int, int]]:
    """Per frequency: how many digests were created, and how many of them went out to at
    least one subscriber (a delivery of it was sent). Every frequency present."""
    counts = {frequency.value: (0, 0) for frequency in Frequency}
    sent_ids = select(deliveries.c.digest_id).where(
        deliveries.c.status == DeliveryStatus.SENT.value
    )
    query = select(
        digests.c.frequency,
        func.count(),
        func.count().filter(digests.c.id.in_(sent_ids)),
    ).group_by(digests.c.frequency)
    for frequency, created, sent in conn.execute(query):
        counts[str(frequency)] = (int(created), int(sent))
    return counts
