"""What there is to know about deliveries: counts, the last error, a pause, rows to list,
re-queueing failed rows, and recent timings (`feedsvc status`, `feedsvc deliveries`,
`/metrics`, the progress bar).

The sending itself is in :mod:`.delivery_claims` (claims with a lease),
:mod:`.delivery_outcomes` (what became of each attempt) and :mod:`.delivery_messages`
(the rendered bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, select, update

from feedsvc.models import DeliveryStatus
from feedsvc.storage.delivery_outcomes import PAUSED
from feedsvc.storage.schema import deliveries, subscribers


@dataclass(frozen=True, slots=True)
class Pause:
    """Sending stopped on an authentication or TLS failure, and has not recovered since."""

    reason: str
    since: datetime | None
    waiting: int  # rows released by the pause, still waiting


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int  # waiting for their first attempt (or sending now)
    retrying: int
    failed: int
    sent: int
    cancelled: int
    last_error: str | None  # of the most recently tried row that has one
    paused: Pause | None = None


def delivery_counts(conn: Connection) -> dict[DeliveryStatus, int]:
    """How many deliveries have each status (every status present)."""
    counts = dict.fromkeys(DeliveryStatus, 0)
    query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    for status, count in conn.execute(query):
        counts[DeliveryStatus(status)] = count
    return counts


def delivery_summary(conn: Connection) -> DeliveryCounts:
    counts = delivery_counts(conn)
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
        paused=sending_paused(conn),
    )


def sending_paused(conn: Connection) -> Pause | None:
    """The pause the latest sender hit, while rows it released still wait and nothing
    was sent after it (else the cause was fixed)."""
    marked = and_(
        deliveries.c.status == DeliveryStatus.PENDING.value,
        deliveries.c.last_error.like(PAUSED + "%"),
    )
    latest = conn.execute(
        select(deliveries.c.last_error, deliveries.c.last_attempt_at)
        .where(marked)
        .order_by(deliveries.c.last_attempt_at.desc(), deliveries.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    reason: str = latest[0]
    since: datetime | None = latest[1]
    if since is not None:
        later = conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.status == DeliveryStatus.SENT.value, deliveries.c.sent_at > since)
            .limit(1)
        ).first()
        if later is not None:
            return None
    waiting = conn.execute(select(func.count()).select_from(deliveries).where(marked)).scalar()
    return Pause(reason.removeprefix(PAUSED), since, int(waiting or 0))


def due_count(conn: Connection, now: datetime, *, rendered_only: bool = True) -> int:
    """How many rows a sender would claim at ``now`` (for a progress bar); with
    ``rendered_only=False`` also those still waiting for their bytes."""
    due = and_(
        deliveries.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.RETRY.value]),
        deliveries.c.next_attempt_at <= now,
    ) | and_(
        deliveries.c.status == DeliveryStatus.SENDING.value,
        deliveries.c.lease_until < now,
    )
    query = select(func.count()).select_from(deliveries).where(due)
    if rendered_only:
        query = query.where(deliveries.c.message_id.is_not(None))
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
