"""The double opt-in queue: rendered confirmation emails, claimed, sent once, retried.

Rows go ``pending`` → ``sending`` (claimed, with a lease) → ``sent``; a temporary
failure makes them ``retry`` at a later time, a permanent one ``failed``. A row whose
lease ran out (the process died mid-send) is claimed again. PostgreSQL skips rows other
processes hold (``FOR UPDATE SKIP LOCKED``); on SQLite the write transaction is exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from feedsvc.storage.schema import confirmations, subscribers

PENDING, SENDING, SENT, RETRY, FAILED = "pending", "sending", "sent", "retry", "failed"
STATUSES = (PENDING, SENDING, SENT, RETRY, FAILED)


@dataclass(frozen=True, slots=True)
class QueuedConfirmation:
    """A claimed confirmation, ready to hand to a backend."""

    confirmation_id: int
    subscriber_id: int
    email: str
    message_id: str
    message: bytes
    attempts: int  # including this one


def queue_confirmation(
    conn: Connection, subscriber_id: int, *, message_id: str, message: bytes, now: datetime
) -> int:
    """Store a rendered confirmation for sending; its id."""
    result = conn.execute(
        insert(confirmations)
        .values(
            subscriber_id=subscriber_id,
            status=PENDING,
            message_id=message_id,
            message=message,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(confirmations.c.id)
    )
    return int(result.scalar_one())


def last_confirmation_at(conn: Connection, subscriber_id: int) -> datetime | None:
    """When the newest confirmation for ``subscriber_id`` was queued (None: never)."""
    return conn.execute(
        select(func.max(confirmations.c.created_at)).where(
            confirmations.c.subscriber_id == subscriber_id
        )
    ).scalar()


def recent_confirmations(conn: Connection, *, limit: int) -> list[tuple[str, datetime]]:
    """The newest ``limit`` confirmations as (address, when queued), newest first. Read
    backwards along the primary key, so the cost stays the same as the table grows."""
    query = (
        select(subscribers.c.email, confirmations.c.created_at)
        .join(subscribers, subscribers.c.id == confirmations.c.subscriber_id)
        .order_by(confirmations.c.id.desc())
        .limit(limit)
    )
    return [(row.email, row.created_at) for row in conn.execute(query)]


def claim_confirmations(
    conn: Connection, now: datetime, *, limit: int, lease: timedelta
) -> list[QueuedConfirmation]:
    """Claim up to ``limit`` due rows: they become ``sending`` until ``now + lease``."""
    due = or_(
        and_(confirmations.c.status.in_([PENDING, RETRY]), confirmations.c.next_attempt_at <= now),
        and_(confirmations.c.status == SENDING, confirmations.c.lease_until < now),
    )
    query = (
        select(
            confirmations.c.id,
            confirmations.c.subscriber_id,
            confirmations.c.message_id,
            confirmations.c.message,
            confirmations.c.attempts,
            subscribers.c.email,
        )
        .join(subscribers, subscribers.c.id == confirmations.c.subscriber_id)
        .where(due)
        .order_by(confirmations.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=confirmations, skip_locked=True)
    claimed = [
        QueuedConfirmation(
            row.id, row.subscriber_id, row.email, row.message_id, row.message, row.attempts + 1
        )
        for row in conn.execute(query)
    ]
    if claimed:
        conn.execute(
            update(confirmations)
            .where(confirmations.c.id.in_([c.confirmation_id for c in claimed]))
            .values(status=SENDING, lease_until=now + lease, attempts=confirmations.c.attempts + 1)
        )
    return claimed


def mark_confirmation(
    conn: Connection,
    confirmation_id: int,
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    next_attempt: datetime | None = None,
) -> None:
    """Record how sending went: ``sent``, ``retry`` (at ``next_attempt``) or ``failed``."""
    values: dict[str, object] = {"status": status, "lease_until": None, "last_error": error}
    if status == SENT:
        values["sent_at"] = now
    if next_attempt is not None:
        values["next_attempt_at"] = next_attempt
    conn.execute(update(confirmations).where(confirmations.c.id == confirmation_id).values(values))


def confirmation_counts(conn: Connection) -> dict[str, int]:
    """How many confirmations have each status (every status present)."""
    counts = dict.fromkeys(STATUSES, 0)
    query = select(confirmations.c.status, func.count()).group_by(confirmations.c.status)
    for status, count in conn.execute(query):
        counts[status] = count
    return counts
