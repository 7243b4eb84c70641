"""Queries for subscribers: look up, stream, count, unsubscribe, forget, suppressions, events.

Adding and updating subscribers (one at a time or a file's worth) is
:mod:`feedsvc.storage.subscriber_upserts`; this module holds the rest.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from feedsvc.models import Frequency, Subscriber, SubscriberEventKind, SubscriberStatus
from feedsvc.storage.schema import subscriber_events, subscribers, suppressions

_FETCH = 1000  # rows per round trip when streaming subscribers
# A versioned prefix, so the hash is feedsvc's own and can change scheme one day.
_SUPPRESSION_PREFIX = b"feedsvc-suppression-v1\x00"


@dataclass(frozen=True, slots=True)
class SubscriberEvent:
    subscriber_id: int | None
    kind: SubscriberEventKind
    at: datetime
    actor: str
    detail: dict[str, Any]


def suppression_hash(email: str) -> str:
    """The hash kept for a forgotten address (``email`` normalised): SHA-256, hex.

    Unsalted, so that any store recognises it and an import can be checked against it; the
    price is that someone holding the store can test a guessed address. A keyed hash would
    tie suppressions to the secret key and lose them when it changes.
    """
    return hashlib.sha256(_SUPPRESSION_PREFIX + email.encode("utf-8")).hexdigest()


def unsubscribe(conn: Connection, email: str, *, now: datetime, actor: str) -> Subscriber | None:
    """Mark ``email`` unsubscribed (keeping the row); its state before, or None if unknown.

    A bounced or complained address stays as it is: it is stopped already.
    """
    row = conn.execute(
        select(subscribers).where(subscribers.c.email == email).with_for_update()
    ).first()
    before = None if row is None else subscriber_from_row(row)
    if before is None or before.status.stopped:
        return before
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == before.id)
        .values(status=SubscriberStatus.UNSUBSCRIBED.value, unsubscribed=now)
    )
    record_event(conn, before.id, SubscriberEventKind.UNSUBSCRIBED, now=now, actor=actor)
    return before


def forget(conn: Connection, email: str, *, now: datetime, actor: str) -> bool:
    """Erase every row about ``email``; keep only its suppression hash. True if any existed.

    The erasure itself is logged as a ``forgotten`` event with no subscriber, whose detail
    is the suppression hash (nothing that names the address).
    """
    digest = suppression_hash(email)
    found = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).scalar()
    if found is not None:
        conn.execute(delete(subscriber_events).where(subscriber_events.c.subscriber_id == found))
        conn.execute(delete(subscribers).where(subscribers.c.id == found))
    conn.execute(
        _insert_or_ignore(conn, suppressions).values(
            email_hash=digest, reason="forgotten", created=now
        )
    )
    record_event(
        conn, None, SubscriberEventKind.FORGOTTEN, now=now, actor=actor, detail={"hash": digest}
    )
    return found is not None


def _insert_or_ignore(conn: Connection, target: Any) -> Any:
    """INSERT that leaves an existing row (same key) as it is: two processes may race."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(target).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(target).on_conflict_do_nothing()


def is_suppressed(conn: Connection, email: str) -> bool:
    """True when ``email`` (normalised) was erased with ``forget``."""
    return bool(suppressed_addresses(conn, [email]))


_SUPPRESSED = select(suppressions.c.email_hash).where(
    suppressions.c.email_hash.in_(bindparam("hashes", expanding=True))
)


def suppressed_addresses(conn: Connection, emails: Sequence[str]) -> set[str]:
    """Those of ``emails`` that were forgotten."""
    by_hash = {suppression_hash(email): email for email in emails}
    found = conn.execute(_SUPPRESSED, {"hashes": list(by_hash)}).scalars()
    return {by_hash[digest] for digest in found}


def record_event(
    conn: Connection,
    subscriber_id: int | None,
    kind: SubscriberEventKind,
    *,
    now: datetime,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> None:
    values = {
        "subscriber_id": subscriber_id,
        "kind": kind.value,
        "at": now,
        "actor": actor,
        "detail": None if detail is None else json.dumps(detail, ensure_ascii=False),
    }
    conn.execute(_INSERT_EVENT, values)


# Built once: bounce processing records thousands of events a run.
_INSERT_EVENT = insert(subscriber_events)


def events_of(conn: Connection, subscriber_id: int | None) -> list[SubscriberEvent]:
    """The events of one subscriber (None: those with no subscriber), oldest first."""
    column = subscriber_events.c.subscriber_id
    query = (
        select(subscriber_events)
        .where(column.is_(None) if subscriber_id is None else column == subscriber_id)
        .order_by(subscriber_events.c.id)
    )
    return [
        SubscriberEvent(
            subscriber_id=row.subscriber_id,
            kind=SubscriberEventKind(row.kind),
            at=row.at,
            actor=row.actor,
            detail=json.loads(row.detail) if row.detail else {},
        )
        for row in conn.execute(query)
    ]


def get_subscriber(conn: Connection, email: str) -> Subscriber | None:
    """The subscriber with the normalised address ``email``, if any."""
    row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
    return None if row is None else subscriber_from_row(row)


def iter_subscribers(
    conn: Connection, statuses: Collection[SubscriberStatus] = ()
) -> Iterator[Subscriber]:
    """Every subscriber (or those with one of ``statuses``) in the order they were added.

    Streams: rows are fetched in chunks, never all at once.
    """
    query = select(subscribers).order_by(subscribers.c.id)
    if statuses:
        query = query.where(subscribers.c.status.in_([s.value for s in statuses]))
    # yield_per on the statement: set on the connection it would turn every later statement
    # in the transaction into a server-side cursor on PostgreSQL.
    for row in conn.execute(query.execution_options(yield_per=_FETCH)):
        yield subscriber_from_row(row)


def count_by_status(conn: Connection) -> dict[SubscriberStatus, int]:
    """How many subscribers have each status (every status present, zero or not)."""
    counts = dict.fromkeys(SubscriberStatus, 0)
    query = select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
    for status, count in conn.execute(query):
        counts[SubscriberStatus(status)] = count
    return counts


@functools.lru_cache(maxsize=4096)
def categories_json(categories: tuple[str, ...]) -> str:
    """The ``categories`` column: a JSON list, read back by :func:`subscriber_from_row`.

    orjson (an import writes one per row; a memo, as a few combinations repeat), so the
    text has no spaces where older rows, written by json.dumps, have them: only its
    values are ever read.
    """
    return orjson.dumps(categories).decode("utf-8")


def subscriber_from_row(row: Any) -> Subscriber:
    """A ``subscribers`` row (or a row with its columns) as a Subscriber."""
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        status=SubscriberStatus(row.status),
        frequency=Frequency(row.frequency),
        categories=tuple(json.loads(row.categories)),
        timezone=row.timezone,
        created=row.created,
        confirmed=row.confirmed,
        unsubscribed=row.unsubscribed,
        consent_source=row.consent_source,
        consent_ip=row.consent_ip,
    )
