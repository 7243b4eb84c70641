"""Bounces, complaints and unsubscribe mail that arrived after the relay said 250: each
kept once (table ``inbound_signals``), with what it did to its subscriber.

:func:`record_signal` writes the signal and applies the policy in the caller's
transaction, so that a signal and its effect are committed together or not at all; its
key makes a second reading of the same report (a crash before the mailbox was told)
change nothing.

Policy: a complaint stops the subscriber at once (``complained``, never mailed again); a
hard bounce counts with the hard failures of our own SMTP transactions towards
``delivery.bounce_limit``; soft bounces count within ``bounces.soft_window`` towards
``bounces.soft_limit``; an unsubscribe message unsubscribes. Every change is a
subscriber event naming the signal's source and the remote server's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from feedsvc.models import (
    InboundSignal,
    SignalKind,
    SignalOutcome,
    SubscriberEventKind,
    SubscriberStatus,
)
from feedsvc.storage.delivery_outcomes import COUNTS_AS_BOUNCE
from feedsvc.storage.schema import deliveries, inbound_signals, subscribers
from feedsvc.storage.subscribers import record_event


@dataclass(frozen=True, slots=True)
class SignalPolicy:
    bounce_limit: int = 1  # delivery.bounce_limit
    soft_limit: int = 3  # bounces.soft_limit
    soft_window: timedelta = timedelta(days=30)  # bounces.soft_window


_BOUNCES = (SignalKind.HARD_BOUNCE.value, SignalKind.SOFT_BOUNCE.value)
_LIVE = (SubscriberStatus.ACTIVE.value, SubscriberStatus.PENDING.value)

# Built once: a mailbox run applies thousands of signals, and building a statement (and its
# cache key) costs more than SQLite takes to run it.
_INSERT = {
    postgresql: maker(inbound_signals)
    .on_conflict_do_nothing(index_elements=[inbound_signals.c.key])
    .returning(inbound_signals.c.id)
    for postgresql, maker in ((True, pg_insert), (False, sqlite_insert))
}
_SET_OUTCOME = (
    update(inbound_signals)
    .where(inbound_signals.c.id == bindparam("signal"))
    .values(outcome=bindparam("outcome"))
)
_HARD_SIGNALS = select(func.count()).where(
    inbound_signals.c.subscriber_id == bindparam("subscriber"),
    inbound_signals.c.kind == SignalKind.HARD_BOUNCE.value,
    inbound_signals.c.counts,
)
_HARD_FAILURES = select(func.count()).where(
    deliveries.c.subscriber_id == bindparam("subscriber"), COUNTS_AS_BOUNCE
)
_SOFT_SIGNALS = select(func.count()).where(
    inbound_signals.c.subscriber_id == bindparam("subscriber"),
    inbound_signals.c.kind == SignalKind.SOFT_BOUNCE.value,
    inbound_signals.c.counts,
    inbound_signals.c.received_at > bindparam("since"),
)
_STATUS = (
    select(subscribers.c.status)
    .where(subscribers.c.id == bindparam("subscriber"))
    .with_for_update()
)
_SET_STATUS = (
    update(subscribers)
    .where(subscribers.c.id == bindparam("subscriber"), subscribers.c.status == bindparam("was"))
    .values(status=bindparam("to"))
)
_DELIVERY_SUBSCRIBER = select(deliveries.c.subscriber_id).where(
    deliveries.c.id == bindparam("delivery")
)
_BY_MESSAGE_ID = (
    select(deliveries.c.id, deliveries.c.subscriber_id)
    .where(deliveries.c.message_id == bindparam("message_id"))
    .limit(1)
)


def record_signal(
    conn: Connection, signal: InboundSignal, now: datetime, policy: SignalPolicy, *, actor: str
) -> SignalOutcome:
    """Keep ``signal`` and apply it; ALREADY (and nothing changed) when its key was
    recorded before. ``actor``: who read it, for the events ("bounce mailbox", "ses" …)."""
    counts = signal.kind.value in _BOUNCES and signal.subscriber_id is not None
    values = {
        "key": signal.key[:255],
        "source": signal.source,
        "kind": signal.kind.value,
        "received_at": now,
        "subscriber_id": signal.subscriber_id,
        "delivery_id": signal.delivery_id,
        "status": signal.status,
        "diagnostic": signal.diagnostic,
        "outcome": SignalOutcome.IGNORED.value,
        "counts": counts,
    }
    inserted = conn.execute(_INSERT[conn.dialect.name == "postgresql"], values).first()
    if inserted is None:
        return SignalOutcome.ALREADY
    outcome = _apply(conn, signal, now, policy, actor)
    conn.execute(_SET_OUTCOME, {"signal": inserted[0], "outcome": outcome.value})
    return outcome


def is_recorded(conn: Connection, key: str) -> bool:
    query = select(inbound_signals.c.id).where(inbound_signals.c.key == key[:255])
    return conn.execute(query).first() is not None


def _apply(
    conn: Connection, signal: InboundSignal, now: datetime, policy: SignalPolicy, actor: str
) -> SignalOutcome:
    if signal.kind is SignalKind.IGNORED:
        return SignalOutcome.IGNORED
    if signal.subscriber_id is None:
        return SignalOutcome.UNMATCHED
    detail: dict[str, Any] = {"source": signal.source, "signal": signal.kind.value}
    for name in ("delivery_id", "status", "diagnostic"):
        if getattr(signal, name) is not None:
            detail[name] = getattr(signal, name)
    if signal.kind is SignalKind.COMPLAINT:
        stopped = (SubscriberStatus.COMPLAINED.value,)
        return _change(
            conn, signal.subscriber_id, stopped, SubscriberStatus.COMPLAINED, now, actor, detail
        )
    if signal.kind is SignalKind.UNSUBSCRIBE:
        return _change(
            conn,
            signal.subscriber_id,
            (SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.COMPLAINED.value),
            SubscriberStatus.UNSUBSCRIBED,
            now,
            actor,
            detail,
        )
    reached = _bounces_reached(conn, signal, now, policy, detail)
    if not reached:
        return SignalOutcome.COUNTED
    outcome = _change(
        conn,
        signal.subscriber_id,
        tuple(s.value for s in SubscriberStatus if s.value not in _LIVE),
        SubscriberStatus.BOUNCED,
        now,
        actor,
        detail,
    )
    return SignalOutcome.BOUNCED if outcome is not SignalOutcome.NO_CHANGE else outcome


def _bounces_reached(
    conn: Connection,
    signal: InboundSignal,
    now: datetime,
    policy: SignalPolicy,
    detail: dict[str, Any],
) -> bool:
    """Whether the subscriber's bounces that count reach their limit (``detail`` gets
    the counts, for the event)."""
    who = {"subscriber": signal.subscriber_id}
    if signal.kind is SignalKind.HARD_BOUNCE:
        hard = conn.execute(_HARD_SIGNALS, who).scalar_one()  # this one included
        if hard < policy.bounce_limit:  # our own 5xx count too (else the limit is met)
            hard += conn.execute(_HARD_FAILURES, who).scalar_one()
        detail["hard_bounces"] = hard
        return bool(hard >= policy.bounce_limit)
    since = now - policy.soft_window
    soft = conn.execute(_SOFT_SIGNALS, {**who, "since": since}).scalar_one()
    detail["soft_bounces"] = soft
    detail["soft_window_days"] = round(policy.soft_window.total_seconds() / 86400, 2)
    return bool(soft >= policy.soft_limit)


_EVENTS = {
    SubscriberStatus.COMPLAINED: SubscriberEventKind.COMPLAINED,
    SubscriberStatus.UNSUBSCRIBED: SubscriberEventKind.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED: SubscriberEventKind.BOUNCED,
}
_OUTCOMES = {
    SubscriberStatus.COMPLAINED: SignalOutcome.COMPLAINED,
    SubscriberStatus.UNSUBSCRIBED: SignalOutcome.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED: SignalOutcome.BOUNCED,
}


def _change(
    conn: Connection,
    subscriber_id: int,
    unless: tuple[str, ...],
    to: SubscriberStatus,
    now: datetime,
    actor: str,
    detail: dict[str, Any],
) -> SignalOutcome:
    """``to`` unless the subscriber's status is one of ``unless``; the event says why."""
    was = conn.execute(_STATUS, {"subscriber": subscriber_id}).scalar()
    if was is None or was in unless:
        return SignalOutcome.NO_CHANGE
    conn.execute(_SET_STATUS, {"subscriber": subscriber_id, "was": was, "to": to.value})
    record_event(
        conn, subscriber_id, _EVENTS[to], now=now, actor=actor, detail={**detail, "was": was}
    )
    return _OUTCOMES[to]


def clear_signal_bounces(conn: Connection, subscriber_ids: Sequence[int]) -> int:
    """Stop these subscribers' bounce signals from counting (`subscribers unbounce`)."""
    if not subscriber_ids:
        return 0
    result = conn.execute(
        update(inbound_signals)
        .where(
            and_(
                inbound_signals.c.subscriber_id.in_(list(subscriber_ids)),
                inbound_signals.c.kind.in_(_BOUNCES),
                inbound_signals.c.counts,
            )
        )
        .values(counts=False)
    )
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class SignalCounts:
    """Signals received since a moment, for `bounces list` and `status`."""

    by_kind: dict[SignalKind, int]
    unmatched: int
    delivered: int  # messages sent in the same period: the complaint rate's denominator

    @property
    def complaint_rate(self) -> float | None:
        if not self.delivered:
            return None
        return self.by_kind.get(SignalKind.COMPLAINT, 0) / self.delivered


def signal_counts(conn: Connection, since: datetime) -> SignalCounts:
    rows = conn.execute(
        select(inbound_signals.c.kind, func.count())
        .where(inbound_signals.c.received_at >= since)
        .group_by(inbound_signals.c.kind)
    )
    by_kind = {SignalKind(kind): int(n) for kind, n in rows}
    unmatched = conn.execute(
        select(func.count()).where(
            inbound_signals.c.received_at >= since,
            inbound_signals.c.outcome == SignalOutcome.UNMATCHED.value,
        )
    ).scalar_one()
    delivered = conn.execute(select(func.count()).where(deliveries.c.sent_at >= since)).scalar_one()
    return SignalCounts(by_kind, int(unmatched), int(delivered))


def delivery_subscriber(conn: Connection, delivery_id: int) -> int | None:
    found = conn.execute(_DELIVERY_SUBSCRIBER, {"delivery": delivery_id}).scalar()
    return None if found is None else int(found)


def delivery_by_message_id(conn: Connection, message_ids: Sequence[str]) -> tuple[int, int] | None:
    """(delivery id, subscriber id) of the first of ``message_ids`` we sent."""
    for message_id in message_ids:
        row = conn.execute(_BY_MESSAGE_ID, {"message_id": message_id.strip()}).first()
        if row is not None:
            return int(row[0]), int(row[1])
    return None


@dataclass(frozen=True, slots=True)
class SignalRow:
    received_at: datetime
    kind: SignalKind
    source: str
    outcome: SignalOutcome
    email: str | None
    status: str | None
    diagnostic: str | None


def recent_signals(
    conn: Connection, *, limit: int, since: datetime | None = None
) -> list[SignalRow]:
    """The latest signals, newest first, with their subscriber's address."""
    query = (
        select(
            inbound_signals.c.received_at,
            inbound_signals.c.kind,
            inbound_signals.c.source,
            inbound_signals.c.outcome,
            subscribers.c.email,
            inbound_signals.c.status,
            inbound_signals.c.diagnostic,
        )
        .outerjoin(subscribers, subscribers.c.id == inbound_signals.c.subscriber_id)
        .order_by(inbound_signals.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(inbound_signals.c.received_at >= since)
    return [
        SignalRow(row[0], SignalKind(row[1]), row[2], SignalOutcome(row[3]), *row[4:])
        for row in conn.execute(query)
    ]
