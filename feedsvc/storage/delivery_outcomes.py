"""Recording what became of claimed deliveries: sent, retry, failed, released; bounces.

Outcomes are written in batches, one short transaction each, after the SMTP work. Only a
row still ``sending`` changes (except to ``sent``): if its lease ran out and another
sender got it sent meanwhile, a late retry or failure from the first must not undo that.

A subscriber's bounces are its failed rows whose ``last_error`` ends in
:data:`BOUNCE_NOTE`: failures that refused the address
(:func:`feedsvc.delivery.smtp.refuses_address`),
not the message or the sender. `feedsvc subscribers unbounce` turns the note into
:data:`CLEARED_NOTE` (:func:`clear_bounces`), which resets the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from feedsvc.models import DeliveryStatus, SubscriberEventKind, SubscriberStatus
from feedsvc.storage.schema import deliveries, subscribers
from feedsvc.storage.subscribers import record_event

ACTOR = "delivery"
# How a row released because sending paused (authentication, TLS) says so: `feedsvc
# status` finds the pause by it while such rows wait.
PAUSED = "sending paused: "
# How a failed row says whether it counts towards its subscriber's bounces.
BOUNCE_NOTE = " (the address was refused: counts as a bounce)"
NOT_A_BOUNCE = " (the message was refused, not the address: not counted as a bounce)"
CLEARED_NOTE = " (the address was refused; cleared by `feedsvc subscribers unbounce`)"


class Result(StrEnum):
    """What became of one attempt."""

    SENT = "sent"  # the server answered 250 after the final dot
    RETRY = "retry"  # 4xx, a timeout, a dropped connection: try again later
    FAILED = "failed"  # 5xx (a hard failure), or too old to retry
    RELEASED = "released"  # never attempted (sending paused or stopped): due again at once


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One attempt's result, as the sender reports it to the store."""

    delivery_id: int
    subscriber_id: int
    result: Result
    code: int | None = None
    reply: str | None = None
    error: str | None = None
    next_attempt: datetime | None = None
    bounce: bool = False  # a failure that refused the address (ends in BOUNCE_NOTE)


_SENDING = deliveries.c.status == DeliveryStatus.SENDING.value
COUNTS_AS_BOUNCE = and_(
    deliveries.c.status == DeliveryStatus.FAILED.value,
    deliveries.c.last_error.like("%" + BOUNCE_NOTE),
)
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
_RETRY = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("d_id"), _SENDING)
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
    .where(deliveries.c.id == bindparam("d_id"), _SENDING)
    .values(
        status=DeliveryStatus.FAILED.value,
        reply_code=bindparam("d_code"),
        reply=bindparam("d_reply"),
        last_error=bindparam("d_error"),
        lease_until=None,
    )
)
# Released rows were never tried: the attempt the claim counted is given back. The time
# is when they were given back, so that a pause is dated after every message its run sent.
_RELEASED = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("d_id"), _SENDING)
    .values(
        status=DeliveryStatus.PENDING.value,
        attempts=deliveries.c.attempts - 1,
        last_error=bindparam("d_error"),
        last_attempt_at=bindparam("d_at"),
        lease_until=None,
    )
)


def _parameters(kind: Result, o: DeliveryOutcome, now: datetime) -> dict[str, Any]:
    if kind is Result.SENT:
        return {"d_id": o.delivery_id, "d_at": now, "d_code": o.code, "d_reply": o.reply}
    if kind is Result.RETRY:
        return {
            "d_id": o.delivery_id,
            "d_next": o.next_attempt,
            "d_code": o.code,
            "d_reply": o.reply,
            "d_error": o.error,
        }
    if kind is Result.FAILED:
        return {"d_id": o.delivery_id, "d_code": o.code, "d_reply": o.reply, "d_error": o.error}
    return {"d_id": o.delivery_id, "d_error": o.error, "d_at": now}


_STATEMENTS = {
    Result.SENT: _SENT,
    Result.RETRY: _RETRY,
    Result.FAILED: _FAILED,
    Result.RELEASED: _RELEASED,
}


def record_outcomes(
    conn: Connection, outcomes: Sequence[DeliveryOutcome], now: datetime, *, bounce_limit: int
) -> list[int]:
    """Write a batch of outcomes; subscribers with ``bounce_limit`` failures that refused
    their address become ``bounced`` (with an event). Returns the ids of the subscribers
    bounced now."""
    by_kind: dict[Result, list[dict[str, Any]]] = {kind: [] for kind in Result}
    for o in outcomes:
        by_kind[o.result].append(_parameters(o.result, o, now))
    for kind, rows in by_kind.items():
        if rows:
            _update_many(conn, _STATEMENTS[kind], rows)
    hard = sorted({o.subscriber_id for o in outcomes if o.result is Result.FAILED and o.bounce})
    return _bounce(conn, hard, now, bounce_limit) if hard else []


def _update_many(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``statement`` once per row. On SQLite the rows go to the driver's executemany
    directly: SQLAlchemy's per-row parameter work costs more than SQLite's own (as in
    :mod:`feedsvc.storage.bulk`), and a send records every message."""
    if conn.dialect.name != "sqlite":
        conn.execute(statement, rows)
        return
    sql, steps, fixed = _sqlite_form(conn, statement, rows[0])
    values = [
        tuple(
            (value if process is None or value is None else process(value))
            for name, process in steps
            for value in (row[name] if name in row else fixed[name],)
        )
        for row in rows
    ]
    conn.exec_driver_sql(sql, values)


_Steps = list[tuple[str, Any]]
# Compiled once per statement: a sender records a few rows at a time, many times a
# second, and compiling costs far more than SQLite takes to run the statement.
_SQLITE_FORMS: dict[int, tuple[str, _Steps, dict[str, Any]]] = {}


def _sqlite_form(
    conn: Connection, statement: Any, row: dict[str, Any]
) -> tuple[str, _Steps, dict[str, Any]]:
    """The SQL of ``statement`` (one of this module's), its parameters' names, each with
    its type's bind processor, and the values the statement carries itself."""
    form = _SQLITE_FORMS.get(id(statement))
    if form is not None:
        return form
    compiled = statement.compile(dialect=conn.dialect)
    # The values the statement carries itself (not the first row's, which are not kept).
    fixed = {k: v for k, v in compiled.construct_params(row).items() if k not in row}
    names = tuple(compiled.positiontup or ())
    # dialect_impl: a TypeDecorator's own bind_processor skips the dialect's (dates as text)
    processors = [
        compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        for name in names
    ]
    form = (compiled.string, list(zip(names, processors, strict=True)), fixed)
    _SQLITE_FORMS[id(statement)] = form
    return form


def _bounce(conn: Connection, ids: Sequence[int], now: datetime, limit: int) -> list[int]:
    """Mark bounced the active subscribers among ``ids`` with ``limit`` failures that
    refused their address."""
    counts = (
        select(deliveries.c.subscriber_id, func.count())
        .where(deliveries.c.subscriber_id.in_(ids), COUNTS_AS_BOUNCE)
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
                .where(deliveries.c.subscriber_id == subscriber_id, COUNTS_AS_BOUNCE)
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


def clear_bounces(conn: Connection, subscriber_ids: Sequence[int]) -> int:
    """Stop the failures that refused these subscribers' addresses from counting as
    bounces (their rows stay failed, saying so); how many rows changed."""
    if not subscriber_ids:
        return 0
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.subscriber_id.in_(list(subscriber_ids)), COUNTS_AS_BOUNCE)
        .values(last_error=func.replace(deliveries.c.last_error, BOUNCE_NOTE, CLEARED_NOTE))
    )
    return int(result.rowcount)
