"""Claiming deliveries for sending: a lease, committed before any SMTP.

A sender claims due rows in one short write transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so senders never wait on each other; ``BEGIN IMMEDIATE`` on SQLite, which
serialises writers), moving them to ``sending`` until ``now + lease``. It commits, talks
SMTP with no transaction open, then records every outcome (:mod:`.delivery_outcomes`).
While it holds rows it renews their lease (:func:`renew_leases`), so the lease can be
short: a row whose lease expired (its sender died) is due again soon, with the same
bytes, so a crash can only ever send the messages in flight twice, each time with the
same Message-ID.

Which sender holds a row is not stored: each claim adds one to ``attempts`` (and a
release takes it back only from ``sending``), so ``sending`` with the count a sender's
claim left means that sender still holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select, update

from feedsvc.models import DeliveryStatus, SubscriberStatus
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
    return_path: str | None = None  # the envelope sender (VERP); None: delivery's default


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed row: the message, its recipient, and when its retry allowance started."""

    message: Claimed
    queued_at: datetime


def _due_queries() -> tuple[Select[Any], ...]:
    """The queries for due rows, each through a (status, time) index: expired leases
    first (their sender died), then retries, then new rows."""
    queries = [
        select(deliveries.c.id)
        .where(
            deliveries.c.status == DeliveryStatus.SENDING.value,
            deliveries.c.lease_until < bindparam("now"),
        )
        .order_by(deliveries.c.lease_until, deliveries.c.id)
    ]
    queries += [
        select(deliveries.c.id)
        .where(
            deliveries.c.status == status,
            deliveries.c.next_attempt_at <= bindparam("now"),
            deliveries.c.message_id.is_not(None),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        for status in (DeliveryStatus.RETRY.value, DeliveryStatus.PENDING.value)
    ]
    return tuple(query.limit(bindparam("limit")) for query in queries)


# Built once: a sender claims a few rows at a time, many times a second, and building a
# statement costs more than SQLite takes to run it (the compiled form is cached).
_DUE = _due_queries()
_DUE_SKIP_LOCKED = tuple(query.with_for_update(skip_locked=True) for query in _DUE)


def _due_ids(conn: Connection, now: datetime, limit: int, new_first: bool) -> list[int]:
    """Ids of up to ``limit`` due rows: expired leases, then retries, then new rows; or
    new rows first (rows other senders are claiming right now are skipped on
    PostgreSQL)."""
    queries = _DUE_SKIP_LOCKED if conn.dialect.name == "postgresql" else _DUE
    if new_first:
        expired, retries, new = queries
        queries = (new, expired, retries)
    found: list[int] = []
    for query in queries:
        if len(found) >= limit:
            break
        found.extend(conn.execute(query, {"now": now, "limit": limit - len(found)}).scalars())
    return found


_CLAIMED_ROWS = (
    select(
        deliveries.c.id,
        deliveries.c.subscriber_id,
        deliveries.c.message_id,
        delivery_messages.c.message,
        delivery_messages.c.return_path,
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


_CLAIM = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=DeliveryStatus.SENDING.value,
        lease_until=bindparam("until"),
        attempts=deliveries.c.attempts + 1,
        last_attempt_at=bindparam("now"),
    )
)
_RENEW = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.status == DeliveryStatus.SENDING.value,
        deliveries.c.attempts == bindparam("held_attempts"),
    )
    .values(lease_until=bindparam("until"))
    .returning(deliveries.c.id)
)


def claim_due(
    conn: Connection, now: datetime, *, limit: int, lease: timedelta, new_first: bool = False
) -> list[Claim]:
    """Claim up to ``limit`` rendered rows that are due: pending, retry whose time has
    come, or sending whose lease expired. They become ``sending`` until ``now + lease``.

    Expired leases come first, then retries, then new rows; with ``new_first`` new rows
    come first and the others only when new ones run short. A sender claiming a few rows
    many times a second passes it on all but one claim a second: one query a claim
    instead of three, and a dead sender's rows wait at most a second longer.

    Rows of subscribers who are no longer active (unsubscribed or bounced after the
    digest was made) are cancelled here instead: they get nothing.
    """
    ids = _due_ids(conn, now, limit, new_first)
    if not ids:
        return []
    claims: list[Claim] = []
    stopped: list[int] = []
    active = SubscriberStatus.ACTIVE.value
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(_CLAIMED_ROWS, {"ids": ids[start : start + _CHUNK]}).all()
        for row in rows:
            delivery_id, subscriber_id, message_id, data, path, attempts, queued, email, status = (
                row
            )
            if status != active:
                stopped.append(delivery_id)
                continue
            message = Claimed(
                delivery_id, subscriber_id, email, message_id, data, attempts + 1, path
            )
            claims.append(Claim(message, queued))
    if stopped:
        cancel_deliveries(conn, stopped, LEFT)
    claimed = [c.message.delivery_id for c in claims]
    for start in range(0, len(claimed), _CHUNK):
        conn.execute(
            _CLAIM, {"ids": claimed[start : start + _CHUNK], "until": now + lease, "now": now}
        )
    return claims


def renew_leases(
    conn: Connection, held: Mapping[int, int], now: datetime, *, lease: timedelta
) -> set[int]:
    """Move the lease of every row in ``held`` (delivery id → the ``attempts`` its claim
    left) that this sender still holds to ``now + lease``. Returns the ids it no longer
    holds: another sender claimed them after their lease ran out, or they were cancelled.
    """
    by_attempts: defaultdict[int, list[int]] = defaultdict(list)
    for delivery_id, attempts in held.items():
        by_attempts[attempts].append(delivery_id)
    renewed: set[int] = set()
    for attempts, ids in by_attempts.items():  # usually one count: a fresh digest's rows
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            values = {"ids": chunk, "held_attempts": attempts, "until": now + lease}
            renewed.update(conn.execute(_RENEW, values).scalars())
    return set(held) - renewed


def cancel_deliveries(conn: Connection, ids: Sequence[int], reason: str) -> None:
    """Cancel open rows (never sent): the subscriber left, or the digest's posts went."""
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids[start : start + _CHUNK]), deliveries.c.status.in_(OPEN))
            .values(status=DeliveryStatus.CANCELLED.value, last_error=reason, lease_until=None)
        )
