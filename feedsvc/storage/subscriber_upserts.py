"""Saving a batch of subscribers: one upsert per batch, fast on SQLite and PostgreSQL.

Every subscriber added or updated goes through :func:`save_subscribers`, with the rules
of :mod:`feedsvc.storage.subscriber_merge`. It reads first (which rows exist, which
addresses were forgotten) to report what happened; on SQLite the write transaction is
``BEGIN IMMEDIATE`` so that read is exact. On PostgreSQL a concurrent writer can make an
"added" really an "updated" in the report, never in the data.

Rows are written in the order given, so that new subscribers' ids (the order of ``list``
and ``export``) follow the file they came from, and export → import → export gives the
same file. On PostgreSQL two imports touching the same addresses in different orders can
deadlock; PostgreSQL detects it, and :func:`feedsvc.storage.subscriber_import.write_batch`
retries the batch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    column,
    exists,
    insert,
    literal_column,
    select,
    table,
)

from feedsvc.models import SubscriberEventKind, SubscriberInput, SubscriberStatus
from feedsvc.storage.schema import subscriber_events, subscribers, suppressions
from feedsvc.storage.subscriber_merge import (
    COLUMNS,
    UPDATABLE,
    conflict_set,
    upsert_statement,
    upsert_values,
)
from feedsvc.storage.subscribers import suppressed_addresses, suppression_hash

_PG_COPY_STAGING = f"COPY feedsvc_import ({', '.join(COLUMNS)}, email_hash, ordinal) FROM STDIN"


class UpsertResult(StrEnum):
    """What saving one input did."""

    ADDED = "added"
    UPDATED = "updated"
    # Updated, but the address had unsubscribed, bounced or complained, and stays so.
    KEPT_STOPPED = "kept_stopped"
    # Not written: the address was erased with `forget`.
    SUPPRESSED = "suppressed"


def save_subscribers(
    conn: Connection,
    rows: Sequence[SubscriberInput],
    *,
    updates: Collection[str],
    now: datetime,
    actor: str,
    event: SubscriberEventKind,
    source: str | None = None,
    dry_run: bool = False,
) -> list[UpsertResult]:
    """Insert ``rows`` or update the existing subscribers; the outcome of each, in order.

    ``rows`` hold distinct addresses. ``updates`` names the fields existing rows take from
    the input (a subset of :data:`UPDATABLE`). Each written row gets an event of kind
    ``event`` (for SUBSCRIBED, an existing row gets UPDATED instead), whose detail names
    ``source`` (an imported file) and the row's line. With ``dry_run`` nothing is written
    and the outcomes say what would have happened.
    """
    if not rows:
        return []
    fields = frozenset(updates)
    if not fields <= UPDATABLE:
        raise ValueError(f"cannot update {sorted(fields - UPDATABLE)}; only {sorted(UPDATABLE)}")
    if len({row.email for row in rows}) != len(rows):
        raise ValueError("one batch holds the same address twice; pass distinct addresses")
    if dry_run:
        return _predict(conn, rows)
    origin = "" if source is None else f', "file": {json.dumps(source, ensure_ascii=False)}'
    if conn.dialect.name == "postgresql":
        return _save_postgresql(conn, rows, fields, now, actor, event, origin)
    return _save_sqlite(conn, rows, fields, now, actor, event, origin)


def _predict(conn: Connection, rows: Sequence[SubscriberInput]) -> list[UpsertResult]:
    """What saving ``rows`` does, from what the store holds now."""
    emails = [row.email for row in rows]
    suppressed = suppressed_addresses(conn, emails)
    existing = {
        email: SubscriberStatus(status)
        for email, status in conn.execute(_STATUS_OF, {"emails": emails})
    }
    outcomes: list[UpsertResult] = []
    for row in rows:
        before = existing.get(row.email)
        if row.email in suppressed:
            outcomes.append(UpsertResult.SUPPRESSED)
        elif before is None:
            outcomes.append(UpsertResult.ADDED)
        elif before.stopped and not row.status.stopped:
            outcomes.append(UpsertResult.KEPT_STOPPED)
        else:
            outcomes.append(UpsertResult.UPDATED)
    return outcomes


def _save_sqlite(
    conn: Connection,
    rows: Sequence[SubscriberInput],
    updates: frozenset[str],
    now: datetime,
    actor: str,
    event: SubscriberEventKind,
    origin: str,
) -> list[UpsertResult]:
    """Read, upsert, then the events; exact, as the transaction is ``BEGIN IMMEDIATE``.

    The upsert and the events go to the driver's ``executemany`` as tuples, the SQL
    compiled once by SQLAlchemy: its per-row parameter processing cost more than SQLite's
    own work. Times are converted with the column type's own bind processor, so they are
    stored exactly as SQLAlchemy stores them everywhere else.
    """
    outcomes = _predict(conn, rows)
    written = [
        (row, outcome)
        for row, outcome in zip(rows, outcomes, strict=True)
        if outcome != UpsertResult.SUPPRESSED
    ]
    if not written:
        return outcomes
    to_db = _time_processor(conn)
    now_db = to_db(now)
    conn.exec_driver_sql(
        _sqlite_upsert_sql(updates),
        [upsert_values(row, now, now_db, to_db) for row, _ in written],
    )
    emails = [row.email for row, _ in written]
    ids = {email: id_ for email, id_ in conn.execute(_ID_OF, {"emails": emails})}
    conn.exec_driver_sql(
        _sqlite_events_sql(),
        [
            (
                ids[row.email],
                _event_kind(event, outcome),
                now_db,
                actor,
                _detail(row, outcome, origin),
            )
            for row, outcome in written
        ],
    )
    return outcomes


def _time_processor(conn: Connection) -> Any:
    column_type = subscribers.c.created.type
    processor = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    assert processor is not None  # UTCDateTime always converts
    return processor


@functools.lru_cache(maxsize=64)
def _sqlite_upsert_sql(updates: frozenset[str]) -> str:
    """The upsert's SQL for SQLite, with positional parameters in :data:`COLUMNS` order."""
    from sqlalchemy.dialects import sqlite

    compiled = upsert_statement("sqlite", updates).compile(
        dialect=sqlite.dialect(), column_keys=list(COLUMNS)
    )
    if tuple(compiled.positiontup or ()) != COLUMNS:
        raise AssertionError(f"unexpected parameters {compiled.positiontup} in {compiled}")
    return str(compiled)


@functools.lru_cache(maxsize=1)
def _sqlite_events_sql() -> str:
    from sqlalchemy.dialects import sqlite

    keys = ["subscriber_id", "kind", "at", "actor", "detail"]
    compiled = insert(subscriber_events).compile(dialect=sqlite.dialect(), column_keys=keys)
    if list(compiled.positiontup or ()) != keys:
        raise AssertionError(f"unexpected parameters {compiled.positiontup} in {compiled}")
    return str(compiled)


def _save_postgresql(
    conn: Connection,
    rows: Sequence[SubscriberInput],
    updates: frozenset[str],
    now: datetime,
    actor: str,
    event: SubscriberEventKind,
    origin: str,
) -> list[UpsertResult]:
    """COPY the batch into a temporary table, upsert from it, COPY the events.

    No read first: the upsert skips forgotten addresses itself, and RETURNING says which
    rows it inserted (``xmax = 0``: the usual PostgreSQL idiom for "not an update") and
    the status each row has now. COPY through the driver (psycopg, in this transaction)
    because a thousand-row VALUES list, or arrays as parameters, cost the client several
    times what PostgreSQL spends on the rows.
    """
    driver = conn.connection.driver_connection
    assert driver is not None  # an open connection, in a transaction
    with driver.cursor() as cursor:
        cursor.execute(_PG_STAGING)
        cursor.execute("DELETE FROM feedsvc_import")  # in case of an earlier batch in this txn
        with cursor.copy(_PG_COPY_STAGING) as copy:
            for ordinal, row in enumerate(rows):
                copy.write_row(
                    (*upsert_values(row, now, now, _same), suppression_hash(row.email), ordinal)
                )
        cursor.execute(_pg_upsert_sql(updates))
        returned = {
            email: (id_, inserted, SubscriberStatus(status))
            for id_, email, inserted, status in cursor.fetchall()
        }
        outcomes: list[UpsertResult] = []
        for row in rows:
            found = returned.get(row.email)
            if found is None:
                outcomes.append(UpsertResult.SUPPRESSED)
            elif found[1]:
                outcomes.append(UpsertResult.ADDED)
            elif found[2].stopped and not row.status.stopped:
                outcomes.append(UpsertResult.KEPT_STOPPED)
            else:
                outcomes.append(UpsertResult.UPDATED)
        with cursor.copy(_PG_COPY_EVENTS) as copy:
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome != UpsertResult.SUPPRESSED:
                    copy.write_row(
                        (
                            returned[row.email][0],
                            _event_kind(event, outcome),
                            now,
                            actor,
                            _detail(row, outcome, origin),
                        )
                    )
    return outcomes


def _same(moment: datetime) -> datetime:
    return moment


_PG_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS feedsvc_import (
    email text NOT NULL, name text, status text NOT NULL, frequency text NOT NULL,
    categories text NOT NULL, timezone text, created timestamptz NOT NULL,
    confirmed timestamptz, unsubscribed timestamptz, consent_source text, consent_ip text,
    email_hash text NOT NULL, ordinal integer NOT NULL
) ON COMMIT DELETE ROWS
"""
_PG_COPY_EVENTS = "COPY subscriber_events (subscriber_id, kind, at, actor, detail) FROM STDIN"


@functools.lru_cache(maxsize=64)
def _pg_upsert_sql(updates: frozenset[str]) -> str:
    """INSERT … SELECT FROM feedsvc_import … ON CONFLICT … RETURNING, as SQL text."""
    from sqlalchemy.dialects import postgresql

    names = (*COLUMNS, "email_hash", "ordinal")
    staging = table("feedsvc_import", *(column(name) for name in names))
    suppressed = exists().where(suppressions.c.email_hash == staging.c.email_hash)
    query = (
        select(*(staging.c[name] for name in COLUMNS))
        .where(~suppressed)
        .order_by(staging.c.ordinal)  # ids in the order of the file
    )
    stmt = postgresql.insert(subscribers).from_select(list(COLUMNS), query)
    upsert = stmt.on_conflict_do_update(
        index_elements=[subscribers.c.email], set_=conflict_set(stmt.excluded, updates)
    ).returning(
        subscribers.c.id,
        subscribers.c.email,
        literal_column("xmax = 0").label("inserted"),
        subscribers.c.status,
    )
    compiled = upsert.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    if compiled.params:
        raise AssertionError(f"unexpected parameters {compiled.params} in {compiled}")
    return str(compiled)


def _event_kind(event: SubscriberEventKind, outcome: UpsertResult) -> str:
    if event == SubscriberEventKind.SUBSCRIBED and outcome != UpsertResult.ADDED:
        return SubscriberEventKind.UPDATED.value
    return event.value


def _detail(row: SubscriberInput, outcome: UpsertResult, origin: str) -> str:
    # Enum values, an int and ``origin`` (JSON already): formatting by hand is valid JSON,
    # and faster than json.dumps on a hot path (a detail per imported row).
    line = "" if row.line is None else f', "line": {row.line}'
    return f'{{"outcome": "{outcome.value}", "status": "{row.status.value}"{origin}{line}}}'


# Built once: a statement object reused keeps SQLAlchemy from coercing a thousand values
# into a new IN list on every batch.
_EMAILS: Any = bindparam("emails", expanding=True)
_STATUS_OF = select(subscribers.c.email, subscribers.c.status).where(
    subscribers.c.email.in_(_EMAILS)
)
_ID_OF = select(subscribers.c.email, subscribers.c.id).where(subscribers.c.email.in_(_EMAILS))
