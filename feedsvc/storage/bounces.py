"""Undoing bounces: `feedsvc subscribers unbounce` restores subscribers bounced by
mistake (a relay that refused every recipient) to ``active``, resets their bounce count
(:func:`~feedsvc.storage.delivery_outcomes.clear_bounces`) and records an ``unbounced``
event for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from feedsvc.models import SubscriberEventKind, SubscriberStatus
from feedsvc.storage.delivery_outcomes import clear_bounces
from feedsvc.storage.inbound_signals import clear_signal_bounces
from feedsvc.storage.schema import subscriber_events, subscribers
from feedsvc.storage.subscribers import record_event


@dataclass
class Unbounced:
    """What :func:`unbounce` did: addresses restored; those named that were not bounced
    (with their status); those named that no subscriber has."""

    restored: list[str] = field(default_factory=list)
    not_bounced: list[tuple[str, SubscriberStatus]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


_BOUNCED = SubscriberStatus.BOUNCED.value
_CHUNK = 500  # addresses per lookup (SQLite's old limit is 999 parameters a statement)


def bounced_since(conn: Connection, since: datetime) -> list[str]:
    """The addresses of subscribers that are bounced now and whose bounce (the latest
    ``bounced`` event) happened at ``since`` or later, oldest subscriber first."""
    latest = (
        select(subscriber_events.c.subscriber_id, func.max(subscriber_events.c.at).label("at"))
        .where(subscriber_events.c.kind == SubscriberEventKind.BOUNCED.value)
        .group_by(subscriber_events.c.subscriber_id)
        .subquery()
    )
    query = (
        select(subscribers.c.email)
        .join(latest, latest.c.subscriber_id == subscribers.c.id)
        .where(subscribers.c.status == _BOUNCED, latest.c.at >= since)
        .order_by(subscribers.c.id)
    )
    return list(conn.execute(query).scalars())


def unbounce(conn: Connection, emails: Sequence[str], *, now: datetime, actor: str) -> Unbounced:
    """Restore each of ``emails`` (normalised) that is ``bounced`` to ``active``: its
    failures stop counting as bounces, and an ``unbounced`` event says who did it."""
    done = Unbounced()
    wanted = list(dict.fromkeys(emails))
    found: dict[str, tuple[int, SubscriberStatus]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = (
            select(subscribers.c.id, subscribers.c.email, subscribers.c.status)
            .where(subscribers.c.email.in_(wanted[start : start + _CHUNK]))
            .with_for_update()
        )
        found.update(
            (row.email, (row.id, SubscriberStatus(row.status))) for row in conn.execute(query)
        )
    for email in wanted:
        if email not in found:
            done.unknown.append(email)
            continue
        subscriber_id, status = found[email]
        if status is not SubscriberStatus.BOUNCED:
            done.not_bounced.append((email, status))
            continue
        changed = conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id, subscribers.c.status == _BOUNCED)
            .values(status=SubscriberStatus.ACTIVE.value)
        ).rowcount
        if (
            not changed
        ):  # pragma: no cover - the row is locked above (PostgreSQL; SQLite: one writer)
            continue
        cleared = clear_bounces(conn, [subscriber_id]) + clear_signal_bounces(conn, [subscriber_id])
        record_event(
            conn,
            subscriber_id,
            SubscriberEventKind.UNBOUNCED,
            now=now,
            actor=actor,
            detail={"was": _BOUNCED, "bounces_cleared": cleared},
        )
        done.restored.append(email)
    return done
