"""Subscriber changes made by subscribers themselves, on the web: sign up (pending),
confirm, unsubscribe, change preferences. Each change writes one event with actor
``web`` and the client's IP in its detail; a request that changes nothing writes none.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from feedsvc.models import Frequency, Subscriber, SubscriberEventKind, SubscriberStatus
from feedsvc.storage.schema import subscriber_events, subscribers
from feedsvc.storage.subscribers import (
    categories_json,
    get_subscriber,
    is_suppressed,
    record_event,
    subscriber_from_row,
)

ACTOR = "web"


def subscriber_by_id(conn: Connection, subscriber_id: int) -> Subscriber | None:
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    return None if row is None else subscriber_from_row(row)


def sign_up(
    conn: Connection,
    email: str,
    *,
    name: str | None,
    frequency: Frequency,
    categories: tuple[str, ...],
    now: datetime,
    ip: str | None,
) -> Subscriber | None:
    """The subscriber for ``email``: a new pending one, or the row already there as it is.
    None for an address erased with ``forget`` (nothing may be written about it)."""
    if is_suppressed(conn, email):
        return None
    insert: object
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert(subscribers)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = sqlite_insert(subscribers)
    statement = (
        insert.values(
            email=email,
            name=name,
            status=SubscriberStatus.PENDING.value,
            frequency=frequency.value,
            categories=categories_json(categories),
            timezone=None,
            created=now,
            consent_source=ACTOR,
            consent_ip=ip,
        )
        .on_conflict_do_nothing(index_elements=[subscribers.c.email])
        .returning(subscribers.c.id)
    )
    new_id = conn.execute(statement).scalar()
    if new_id is not None:
        record_event(
            conn,
            new_id,
            SubscriberEventKind.SUBSCRIBED,
            now=now,
            actor=ACTOR,
            detail={"ip": ip, "frequency": frequency.value, "categories": list(categories)},
        )
    return get_subscriber(conn, email)


def confirm(conn: Connection, subscriber: Subscriber, *, now: datetime, ip: str | None) -> bool:
    """Make ``subscriber`` active (confirmed now); False when it already was."""
    if subscriber.status is SubscriberStatus.ACTIVE:
        return False
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber.id)
        .values(
            status=SubscriberStatus.ACTIVE.value,
            confirmed=now,
            unsubscribed=None,
            consent_source=ACTOR,
            consent_ip=ip,
        )
    )
    record_event(
        conn,
        subscriber.id,
        SubscriberEventKind.CONFIRMED,
        now=now,
        actor=ACTOR,
        detail={"ip": ip, "from": subscriber.status.value},
    )
    return True


def unsubscribe(
    conn: Connection, subscriber: Subscriber, *, now: datetime, ip: str | None, via: str
) -> bool:
    """Unsubscribe ``subscriber``; False when nothing changed (already stopped)."""
    if subscriber.status.stopped:
        return False
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber.id)
        .values(status=SubscriberStatus.UNSUBSCRIBED.value, unsubscribed=now)
    )
    record_event(
        conn,
        subscriber.id,
        SubscriberEventKind.UNSUBSCRIBED,
        now=now,
        actor=ACTOR,
        detail={"ip": ip, "via": via},
    )
    return True


def unsubscribe_times(conn: Connection, subscriber_id: int) -> list[datetime]:
    """When ``subscriber_id`` unsubscribed (from its events), oldest first."""
    query = (
        select(subscriber_events.c.at)
        .where(
            subscriber_events.c.subscriber_id == subscriber_id,
            subscriber_events.c.kind == SubscriberEventKind.UNSUBSCRIBED.value,
        )
        .order_by(subscriber_events.c.id)
    )
    return list(conn.execute(query).scalars())


def change_preferences(
    conn: Connection,
    subscriber: Subscriber,
    *,
    frequency: Frequency,
    categories: tuple[str, ...],
    timezone: str | None,
    now: datetime,
    ip: str | None,
) -> list[str]:
    """Save the subscriber's choices; the names of the fields that changed."""
    changed: dict[str, object] = {}
    if frequency is not subscriber.frequency:
        changed["frequency"] = frequency.value
    if categories != subscriber.categories:
        changed["categories"] = list(categories)
    if timezone != subscriber.timezone:
        changed["timezone"] = timezone
    if not changed:
        return []
    values = dict(changed)
    if "categories" in values:
        values["categories"] = categories_json(categories)
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber.id).values(values))
    record_event(
        conn,
        subscriber.id,
        SubscriberEventKind.UPDATED,
        now=now,
        actor=ACTOR,
        detail={"ip": ip, **changed},
    )
    return sorted(changed)
