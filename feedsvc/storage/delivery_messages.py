"""Rendering deliveries: the rows still without bytes, and storing their bytes once.

A delivery is created without a message (with its digest, in one transaction); the
renderer then stores its bytes in ``delivery_messages`` and its Message-ID on the row.
Bytes are never replaced: a row rendered twice (two renderers at once) keeps the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, bindparam, literal_column, select, update

from feedsvc.models import DeliveryStatus, SubscriberStatus
from feedsvc.storage.bulk import execute_many
from feedsvc.storage.schema import deliveries, delivery_messages, subscribers


@dataclass(frozen=True, slots=True)
class RenderJob:
    """A delivery whose message is not rendered yet, with its recipient as they are now."""

    delivery_id: int
    digest_id: int
    subscriber_id: int
    email: str
    name: str | None
    status: SubscriberStatus


def render_jobs(conn: Connection, *, limit: int, after_id: int = 0) -> list[RenderJob]:
    """Up to ``limit`` pending deliveries without message bytes, in id order, after
    ``after_id``."""
    pending: ColumnElement[bool] = deliveries.c.status == DeliveryStatus.PENDING.value
    if conn.dialect.name == "sqlite":
        # SQLite would pick the (status, next_attempt_at) index, then sort every pending
        # row for each batch (quadratic over a big digest); the unary "+" (SQLite's way to
        # say "no index for this term") keeps it on a rowid range scan in id order.
        pending = literal_column("+deliveries.status") == DeliveryStatus.PENDING.value
    query = (
        select(
            deliveries.c.id,
            deliveries.c.digest_id,
            subscribers.c.id,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.status,
        )
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(
            deliveries.c.message_id.is_(None),
            pending,
            deliveries.c.id > after_id,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [
        RenderJob(row[0], row[1], row[2], row[3], row[4], SubscriberStatus(row[5]))
        for row in conn.execute(query)
    ]


_SET_MESSAGE_ID = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("d_id"), deliveries.c.message_id.is_(None))
    .values(message_id=bindparam("d_mid"))
)


def _insert_new(conn: Connection) -> object:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(delivery_messages).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(delivery_messages).on_conflict_do_nothing()


# (delivery id, Message-ID, bytes, VERP return path or None)
RenderedMessage = tuple[int, str, bytes, str | None]


def save_rendered(conn: Connection, rendered: Sequence[RenderedMessage]) -> None:
    """Store (delivery id, Message-ID, bytes, return path); a row rendered before keeps
    its bytes."""
    if not rendered:
        return
    execute_many(
        conn,
        _insert_new(conn),
        delivery_messages,
        [{"delivery_id": i, "message": data, "return_path": path} for i, _, data, path in rendered],
    )
    conn.execute(_SET_MESSAGE_ID, [{"d_id": i, "d_mid": mid} for i, mid, _, _ in rendered])


def message_bytes(conn: Connection, delivery_id: int) -> bytes | None:
    """One delivery's stored bytes (None while it is not rendered)."""
    found: bytes | None = conn.execute(
        select(delivery_messages.c.message).where(delivery_messages.c.delivery_id == delivery_id)
    ).scalar()
    return found
