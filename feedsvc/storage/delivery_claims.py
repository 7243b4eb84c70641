"""Claiming deliveries for sending: a lease, committed before any SMTP.

A sender claims due rows in one short write transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so senders never wait on each other; ``BEGIN IMMEDIATE`` on SQLite, which
serialises writers), moving them to ``sending`` until ``now + lease``. It commits, talks
SMTP with no transaction open, then records every outcome (:mod:`.delivery_outcomes`).
A row whose lease expired (its sender died) is due again, with the same bytes, so a crash
can only ever send the messages in flight twice, each time with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, func, select, update

from feedsvc.digests import DeliveryStatus
from feedsvc.models import SubscriberStatus
from feedsvc.storage.schema import deliveries, delivery_messages, subscribers

_CHUNK = 500
LEFT = "the subscriber is no longer active"
OPEN = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRY.value, DeliveryStatus.SENDING.value)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for sending: its bytes and its recipient."""

    delivery_id: int
    subscriber_id: int
    email: str
    message_id: str
    message: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed row: the message, its recipient, and when its retry allowance started."""

    message: Claimed
    queued_at: datetime


def _due_ids(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Ids of up to ``limit`` due rows, each found through the (status, time) indexes:
    expired leases first (their sender died), then retries, then new rows."""
    pg = conn.dialect.name == "postgresql"
    queries = [
        select(deliveries.c.id)
        .where(
            deliveries.c.status == DeliveryStatus.SENDING.value,
            deliveries.c.lease_until < now,
        )
        .order_by(deliveries.c.lease_until, deliveries.c.id)
    ]
    queries += [
        select(deliveries.c.id)
        .where(
            deliveries.c.status == status,
            deliveries.c.next_attempt_at <= now,
            deliveries.c.message_id.is_not(None),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        for status in (DeliveryStatus.RETRY.value, DeliveryStatus.PENDING.value)
    ]
    found: list[int] = []
    for query in queries:
        if len(found) >= limit:
            break
        query = query.limit(limit - len(found))
        if pg:
            query = query.with_for_update(skip_locked=True)
        found.extend(conn.execute(query).scalars())
    return found


_CLAIMED_ROWS = (
    select(
        deliveries.c.id,
        deliveries.c.subscriber_id,
        deliveries.c.message_id,
        delivery_messages.c.message,
        deliveries.c.attempts,
        # delivery.max_age counts from here: re-queued rows start afresh.
        func.coalesce(deliveries.c.queued_at, deliveries.c.created_at).label("queued"),
        subscribers.c.email,
        subscribers.c.status,
    )
    .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
    .join(delivery_messages, delivery_messages.c.delivery_id == deliveries.c.id)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(deliveries.c.id)
)


def claim_due(conn: Connection, now: datetime, *, limit: int, lease: timedelta) -> list[Claim]:
    """Claim up to ``limit`` rendered rows that are due: pending, retry whose time has
    come, or sending whose lease expired. They become ``sending`` until ``now + lease``.

    Rows of subscribers who are no longer active (unsubscribed or bounced after the
    digest was made) are cancelled here instead: they get nothing.
    """
    ids = _due_ids(conn, now, limit)
    if not ids:
        return []
    claims: list[Claim] = []
    stopped: list[int] = []
    active = SubscriberStatus.ACTIVE.value
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(_CLAIMED_ROWS, {"ids": ids[start : start + _CHUNK]}).all()
        for delivery_id, subscriber_id, message_id, data, attempts, queued, email, status in rows:
            if status != active:
                stopped.append(delivery_id)
                continue
            message = Claimed(delivery_id, subscriber_id, email, message_id, data, attempts + 1)
            claims.append(Claim(message, queued))
    if stopped:
        cancel_deliveries(conn, stopped, LEFT)
    claimed = [c.message.delivery_id for c in claims]
    for start in range(0, len(claimed), _CHUNK):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(claimed[start : start + _CHUNK]))
            .values(
                status=DeliveryStatus.SENDING.value,
                lease_until=now + lease,
                attempts=deliveries.c.attempts + 1,
                last_attempt_at=now,
            )
        )
    return claims


def cancel_deliveries(conn: Connection, ids: Sequence[int], reason: str) -> None:
    """Cancel open rows (never sent): the subscriber left, or the digest's posts went."""
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids[start : start + _CHUNK]), deliveries.c.status.in_(OPEN))
            .values(status=DeliveryStatus.CANCELLED.value, last_error=reason, lease_until=None)
        )
