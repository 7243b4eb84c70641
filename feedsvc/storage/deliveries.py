"""Queries for sending: claims with a lease, outcomes, bounces, counts, list and re-queue.

A sender claims due rows in one short write transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so senders never wait on each other; ``BEGIN IMMEDIATE`` on SQLite, which
serialises writers), moving them to ``sending`` until ``now + lease``. It commits, talks
SMTP with no transaction open, then records every outcome in one more short transaction.
A row whose lease expired (its sender died) is due again, with the same bytes, so a crash
can only ever send the messages in flight twice, each time with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from feedsvc.digests import DeliveryStatus
from feedsvc.models import SubscriberEventKind, SubscriberStatus
from feedsvc.storage.digests import Claimed
from feedsvc.storage.schema import deliveries, subscribers
from feedsvc.storage.subscribers import record_event

_CHUNK = 500
ACTOR = "delivery"
LEFT = "the subscriber is no longer active"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed row: the message, its recipient, and when its retry allowance started."""

    message: Claimed
    queued_at: datetime


def _due_ids(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Ids of up to ``limit`` due rows, each found through the (status, time) indexes."""
    pg = conn.dialect.name == "postgresql"
    found: list[int] = []
    queries = [
        select(deliveries.c.id)
        .where(
            deliveries.c.status == status,
            deliveries.c.next_attempt_at <= now,
            deliveries.c.message.is_not(None),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        for status in (DeliveryStatus.RETRY.value, DeliveryStatus.PENDING.value)
    ]
    queries.insert(
        0,
        select(deliveries.c.id)
        .where(
            deliveries.c.status == DeliveryStatus.SENDING.value,
            deliveries.c.lease_until < now,
        )
        .order_by(deliveries.c.lease_until, deliveries.c.id),
    )
    for query in queries:
        if len(found) >= limit:
            break
        query = query.limit(limit - len(found))
        if pg:
            query = query.with_for_update(skip_locked=True)
        found.extend(conn.execute(query).scalars())
    return found


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
    query = (
        select(
            deliveries.c.id,
            deliveries.c.subscriber_id,
            deliveries.c.message_id,
            deliveries.c.message,
            deliveries.c.attempts,
            deliveries.c.created_at,
            deliveries.c.queued_at,
            subscribers.c.email,
            subscribers.c.status,
        )
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(deliveries.c.id)
    )
    for start in range(0, len(ids), _CHUNK):
        for row in conn.execute(query, {"ids": ids[start : start + _CHUNK]}):
            if row.status != SubscriberStatus.ACTIVE.value:
                stopped.append(row.id)
                continue
            message = Claimed(
                row.id,
                row.subscriber_id,
                row.email,
                row.message_id,
                row.message,
                row.attempts + 1,
            )
            claims.append(Claim(message, row.queued_at or row.created_at))
    if stopped:
        cancel(conn, stopped, LEFT)
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


def cancel(conn: Connection, ids: Sequence[int], reason: str) -> None:
    """Cancel open rows (never sent)."""
    open_ = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRY.value, DeliveryStatus.SENDING.value)
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids[start : start + _CHUNK]), deliveries.c.status.in_(open_))
            .values(status=DeliveryStatus.CANCELLED.value, last_error=reason, lease_until=None)
        )


class Result(StrEnum):
    """What became of one attempt."""

    SENT = "sent"  # the server answered 250 after the final dot
    RETRY = "retry"  # 4xx, a timeout, a dropped connection: try again later
    FAILED = "failed"  # 5xx (a hard failure), or too old to retry
    RELEASED = "released"  # never attempted (sending paused): due again at once


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result, as the sender reports it to the store."""

    delivery_id: int
    subscriber_id: int
    result: Result
    code: int | None = None
    reply: str | None = None
    error: str | None = None
    next_attempt: datetime | None = None


_SENT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("d_id"))
    .values(
        status=DeliveryStatus.SENT.value,
        sent_at=bindparam("d_at"),
        reply_code=bindparam("d_code"),
        reply=bindparam("d_reply"),
        lease_until=None,
        last_error=None,
    )
)
# Only a row still "sending" changes: if its lease ran out and another sender got it sent
# meanwhile, a late retry or failure from the first sender must not undo that.
_RETRY = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("d_id"), deliveries.c.status == DeliveryStatus.SENDING.value
    )
    .values(
        status=DeliveryStatus.RETRY.value,
        next_attempt_at=bindparam("d_next"),
        reply_code=bindparam("d_code"),
        reply=bindparam("d_reply"),
        last_error=bindparam("d_error"),
        lease_until=None,
    )
)
_FAILED = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("d_id"), deliveries.c.status == DeliveryStatus.SENDING.value
    )
    .values(
        status=DeliveryStatus.FAILED.value,
        reply_code=bindparam("d_code"),
        reply=bindparam("d_reply"),
        last_error=bindparam("d_error"),
        lease_until=None,
    )
)
# Released rows were never tried: the attempt the claim counted is given back.
_RELEASED = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("d_id"), deliveries.c.status == DeliveryStatus.SENDING.value
    )
    .values(
        status=DeliveryStatus.PENDING.value,
        attempts=deliveries.c.attempts - 1,
        last_error=bindparam("d_error"),
        lease_until=None,
    )
)


def record_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], now: datetime, *, bounce_limit: int
) -> list[int]:
    """Write a batch of outcomes; subscribers with ``bounce_limit`` hard failures become
    ``bounced`` (with an event). Returns the ids of the subscribers bounced now."""
    by_kind: dict[Result, list[dict[str, Any]]] = {kind: [] for kind in Result}
    for o in outcomes:
        by_kind[o.result].append(
            {
                "d_id": o.delivery_id,
                "d_at": now,
                "d_code": o.code,
                "d_reply": o.reply,
                "d_error": o.error,
                "d_next": o.next_attempt,
            }
        )
    statements = {
        Result.SENT: _SENT,
        Result.RETRY: _RETRY,
        Result.FAILED: _FAILED,
        Result.RELEASED: _RELEASED,
    }
    for kind, rows in by_kind.items():
        if rows:
            keys = {
                Result.SENT: ("d_id", "d_at", "d_code", "d_reply"),
                Result.RETRY: ("d_id", "d_next", "d_code", "d_reply", "d_error"),
                Result.FAILED: ("d_id", "d_code", "d_reply", "d_error"),
                Result.RELEASED: ("d_id", "d_error"),
            }[kind]
            conn.execute(statements[kind], [{k: r[k] for k in keys} for r in rows])
    hard = sorted(
        {o.subscriber_id for o in outcomes if o.result is Result.FAILED and _is_hard(o.code)}
    )
    return _bounce(conn, hard, now, bounce_limit) if hard else []


def _is_hard(code: int | None) -> bool:
    return code is not None and 500 <= code < 600


def _bounce(conn: Connection, ids: Sequence[int], now: datetime, limit: int) -> list[int]:
    """Mark bounced the active subscribers among ``ids`` with ``limit`` hard failures."""
    counts = (
        select(deliveries.c.subscriber_id, func.count())
        .where(
            deliveries.c.subscriber_id.in_(ids),
            deliveries.c.status == DeliveryStatus.FAILED.value,
            deliveries.c.reply_code >= 500,
            deliveries.c.reply_code < 600,
        )
        .group_by(deliveries.c.subscriber_id)
    )
    over = {sid: n for sid, n in conn.execute(counts) if n >= limit}
    bounced: list[int] = []
    for subscriber_id, failures in sorted(over.items()):
        changed = conn.execute(
            update(subscribers)
            .where(
                subscribers.c.id == subscriber_id,
                subscribers.c.status == SubscriberStatus.ACTIVE.value,
            )
            .values(status=SubscriberStatus.BOUNCED.value)
        ).rowcount
        if changed:
            last = conn.execute(
                select(deliveries.c.reply_code, deliveries.c.reply)
                .where(
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == DeliveryStatus.FAILED.value,
                )
                .order_by(deliveries.c.id.desc())
                .limit(1)
            ).one()
            record_event(
                conn,
                subscriber_id,
                SubscriberEventKind.BOUNCED,
                now=now,
                actor=ACTOR,
                detail={"hard_failures": failures, "code": last[0], "reply": last[1]},
            )
            bounced.append(subscriber_id)
    return bounced


# --- what `feedsvc status` and `feedsvc deliveries` show ----------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int  # waiting for their first attempt (or sending now)
    retrying: int
    failed: int
    sent: int
    cancelled: int
    last_error: str | None  # of the most recently tried row that has one


def delivery_summary(conn: Connection) -> DeliveryCounts:
    counts = dict.fromkeys(DeliveryStatus, 0)
    for status, n in conn.execute(
        select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    ):
        counts[DeliveryStatus(status)] = n
    last = conn.execute(
        select(deliveries.c.last_error)
        .where(
            deliveries.c.last_error.is_not(None),
            deliveries.c.status.in_([DeliveryStatus.RETRY.value, DeliveryStatus.FAILED.value]),
        )
        .order_by(deliveries.c.last_attempt_at.desc(), deliveries.c.id.desc())
        .limit(1)
    ).scalar()
    return DeliveryCounts(
        pending=counts[DeliveryStatus.PENDING] + counts[DeliveryStatus.SENDING],
        retrying=counts[DeliveryStatus.RETRY],
        failed=counts[DeliveryStatus.FAILED],
        sent=counts[DeliveryStatus.SENT],
        cancelled=counts[DeliveryStatus.CANCELLED],
        last_error=last,
    )


def due_count(conn: Connection, now: datetime) -> int:
    """How many rendered rows a sender would claim at ``now`` (for a progress bar)."""
    query = (
        select(func.count())
        .select_from(deliveries)
        .where(
            deliveries.c.message.is_not(None),
            (
                and_(
                    deliveries.c.status.in_(
                        [DeliveryStatus.PENDING.value, DeliveryStatus.RETRY.value]
                    ),
                    deliveries.c.next_attempt_at <= now,
                )
                | and_(
                    deliveries.c.status == DeliveryStatus.SENDING.value,
                    deliveries.c.lease_until < now,
                )
            ),
        )
    )
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    digest_id: int
    email: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    reply_code: int | None
    error: str | None


def list_deliveries(
    conn: Connection, *, status: DeliveryStatus | None = None, limit: int = 100
) -> list[DeliveryRow]:
    """Deliveries (of one status), newest first."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.digest_id,
            subscribers.c.email,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.last_attempt_at,
            deliveries.c.reply_code,
            deliveries.c.last_error,
        )
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(deliveries.c.status == status.value)
    return [
        DeliveryRow(r[0], r[1], r[2], DeliveryStatus(r[3]), r[4], r[5], r[6], r[7], r[8])
        for r in conn.execute(query)
    ]


def requeue_failed(conn: Connection, now: datetime, ids: Sequence[int] | None = None) -> int:
    """Failed rows (all, or those of ``ids``) become pending again, due now, with a fresh
    ``delivery.max_age`` allowance. Their bytes (and Message-ID) are unchanged."""
    query = update(deliveries).where(deliveries.c.status == DeliveryStatus.FAILED.value)
    if ids is not None:
        query = query.where(deliveries.c.id.in_(list(ids)))
    result = conn.execute(
        query.values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now,
            queued_at=now,
            lease_until=None,
        )
    )
    return int(result.rowcount)


def recent_send_timings(conn: Connection, limit: int = 1000) -> list[tuple[float, float]]:
    """(claim → accepted, queued → accepted) in seconds for the ``limit`` latest sent rows.

    The first is how long the SMTP side took for a message; the second how long a
    subscriber waited from the digest's creation. For `/metrics`.
    """
    query = (
        select(
            deliveries.c.last_attempt_at,
            deliveries.c.queued_at,
            deliveries.c.created_at,
            deliveries.c.sent_at,
        )
        .where(deliveries.c.status == DeliveryStatus.SENT.value, deliveries.c.sent_at.is_not(None))
        .order_by(deliveries.c.sent_at.desc())
        .limit(limit)
    )
    timings = []
    for attempted, queued, created, sent in conn.execute(query):
        waited = (sent - (queued or created)).total_seconds()
        took = (sent - attempted).total_seconds() if attempted is not None else waited
        timings.append((max(took, 0.0), max(waited, 0.0)))
    return timings
