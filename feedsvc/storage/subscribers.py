"""Queries for subscribers: batched upserts, unsubscribe, forget, suppressions, events.

Every write goes through :func:`save_subscribers`: one ``INSERT … ON CONFLICT (email) DO
UPDATE`` per batch (SQLite and PostgreSQL spell it the same; SQLAlchemy's dialect inserts
build it), so two processes adding the same address at once end with one row, never an
error. The update clause holds the rules that must not depend on what a process read
earlier:

- an unsubscribed, bounced or complained address keeps its status: nothing re-activates it;
- a confirmed (active) address never goes back to pending;
- ``created`` and the consent fields are never overwritten; ``confirmed`` only filled in.

The same function reads first (which rows exist, which addresses were forgotten) to report
what happened; on SQLite the write transaction is ``BEGIN IMMEDIATE`` so that read is
exact. On PostgreSQL a concurrent writer can make an "added" really an "updated" in the
report, never in the data.

Rows are written in the order given, so that new subscribers' ids (the order of ``list``
and ``export``) follow the file they came from, and export → import → export gives the
same file. On PostgreSQL two imports touching the same addresses in different orders can
deadlock; PostgreSQL detects it, and :func:`write_batch` retries the batch.
"""

from __future__ import annotations

import functools
import json
import time
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.exc import DBAPIError

from feedsvc.errors import StoreError
from feedsvc.models import Frequency, Subscriber, SubscriberEventKind, SubscriberStatus
from feedsvc.storage.engine import Store
from feedsvc.storage.schema import subscriber_events, subscribers, suppressions
from feedsvc.subscribers import SubscriberInput, suppression_hash

BATCH = 1000  # rows per transaction in imports: short locks, few round trips
_STOPPED = tuple(s.value for s in SubscriberStatus if s.stopped)
# Fields an existing subscriber may take from an input (see SubscriberCsv.updates).
UPDATABLE = frozenset(
    {"name", "frequency", "categories", "timezone", "status", "confirmed", "unsubscribed"}
)
# The subscribers columns an upsert writes, in the order of _row_tuple.
_COLUMNS = (
    "email",
    "name",
    "status",
    "frequency",
    "categories",
    "timezone",
    "created",
    "confirmed",
    "unsubscribed",
    "consent_source",
    "consent_ip",
)
_PG_COPY_STAGING = f"COPY feedsvc_import ({', '.join(_COLUMNS)}, email_hash, ordinal) FROM STDIN"
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_RETRIES = 5


class Outcome(StrEnum):
    """What saving one input did."""

    ADDED = "added"
    UPDATED = "updated"
    # Updated, but the address had unsubscribed, bounced or complained, and stays so.
    KEPT_STOPPED = "kept_stopped"
    # Not written: the address was erased with `forget`.
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class SubscriberEvent:
    subscriber_id: int | None
    kind: SubscriberEventKind
    at: datetime
    actor: str
    detail: dict[str, Any]


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
) -> list[Outcome]:
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


def _predict(conn: Connection, rows: Sequence[SubscriberInput]) -> list[Outcome]:
    """What saving ``rows`` does, from what the store holds now."""
    emails = [row.email for row in rows]
    suppressed = _suppressed(conn, emails)
    existing = {
        email: SubscriberStatus(status)
        for email, status in conn.execute(_STATUS_OF, {"emails": emails})
    }
    outcomes: list[Outcome] = []
    for row in rows:
        before = existing.get(row.email)
        if row.email in suppressed:
            outcomes.append(Outcome.SUPPRESSED)
        elif before is None:
            outcomes.append(Outcome.ADDED)
        elif before.stopped and not row.status.stopped:
            outcomes.append(Outcome.KEPT_STOPPED)
        else:
            outcomes.append(Outcome.UPDATED)
    return outcomes


def _save_sqlite(
    conn: Connection,
    rows: Sequence[SubscriberInput],
    updates: frozenset[str],
    now: datetime,
    actor: str,
    event: SubscriberEventKind,
    origin: str,
) -> list[Outcome]:
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
        if outcome != Outcome.SUPPRESSED
    ]
    if not written:
        return outcomes
    to_db = _time_processor(conn)
    now_db = to_db(now)
    conn.exec_driver_sql(
        _sqlite_upsert_sql(updates),
        [_row_tuple(row, now, now_db, to_db) for row, _ in written],
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


def _row_tuple(row: SubscriberInput, now: datetime, now_db: Any, to_db: Any) -> tuple[Any, ...]:
    """``row`` as the upsert's parameters, in :data:`_COLUMNS` order, ready for the driver."""
    unsubscribed = row.unsubscribed
    if unsubscribed is None and row.status == SubscriberStatus.UNSUBSCRIBED:
        unsubscribed = now
    return (
        row.email,
        row.name,
        row.status.value,
        row.frequency.value,
        _categories_json(row.categories),
        row.timezone,
        now_db if row.created is None else to_db(row.created),
        None if row.confirmed is None else to_db(row.confirmed),
        None if unsubscribed is None else to_db(unsubscribed),
        row.consent_source,
        row.consent_ip,
    )


@functools.lru_cache(maxsize=64)
def _sqlite_upsert_sql(updates: frozenset[str]) -> str:
    """The upsert's SQL for SQLite, with positional parameters in :data:`_COLUMNS` order."""
    from sqlalchemy.dialects import sqlite

    compiled = _upsert_statement("sqlite", updates).compile(
        dialect=sqlite.dialect(), column_keys=list(_COLUMNS)
    )
    if tuple(compiled.positiontup or ()) != _COLUMNS:
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
) -> list[Outcome]:
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
                    (*_row_tuple(row, now, now, _same), suppression_hash(row.email), ordinal)
                )
        cursor.execute(_pg_upsert_sql(updates))
        returned = {
            email: (id_, inserted, SubscriberStatus(status))
            for id_, email, inserted, status in cursor.fetchall()
        }
        outcomes: list[Outcome] = []
        for row in rows:
            found = returned.get(row.email)
            if found is None:
                outcomes.append(Outcome.SUPPRESSED)
            elif found[1]:
                outcomes.append(Outcome.ADDED)
            elif found[2].stopped and not row.status.stopped:
                outcomes.append(Outcome.KEPT_STOPPED)
            else:
                outcomes.append(Outcome.UPDATED)
        with cursor.copy(_PG_COPY_EVENTS) as copy:
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome != Outcome.SUPPRESSED:
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

    names = (*_COLUMNS, "email_hash", "ordinal")
    staging = table("feedsvc_import", *(column(name) for name in names))
    suppressed = exists().where(suppressions.c.email_hash == staging.c.email_hash)
    query = (
        select(*(staging.c[name] for name in _COLUMNS))
        .where(~suppressed)
        .order_by(staging.c.ordinal)  # ids in the order of the file
    )
    stmt = postgresql.insert(subscribers).from_select(list(_COLUMNS), query)
    upsert = stmt.on_conflict_do_update(
        index_elements=[subscribers.c.email], set_=_set_clause(stmt.excluded, updates)
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


def _event_kind(event: SubscriberEventKind, outcome: Outcome) -> str:
    if event == SubscriberEventKind.SUBSCRIBED and outcome != Outcome.ADDED:
        return SubscriberEventKind.UPDATED.value
    return event.value


def _detail(row: SubscriberInput, outcome: Outcome, origin: str) -> str:
    # Enum values, an int and ``origin`` (JSON already): formatting by hand is valid JSON,
    # and faster than json.dumps on a hot path (a detail per imported row).
    line = "" if row.line is None else f', "line": {row.line}'
    return f'{{"outcome": "{outcome.value}", "status": "{row.status.value}"{origin}{line}}}'


@functools.lru_cache(maxsize=4096)
def _categories_json(categories: tuple[str, ...]) -> str:
    return json.dumps(list(categories), ensure_ascii=False)


def _set_clause(new: Any, updates: frozenset[str]) -> dict[str, Any]:
    """The ON CONFLICT update: the rules of the module docstring, in SQL."""
    old = subscribers.c
    # Constants as SQL literals, not parameters: the compiled SQL then takes the row's
    # values only (see _sqlite_upsert_sql).
    stopped = [old.status == literal_column(f"'{status}'") for status in _STOPPED]
    pending: Any = literal_column(f"'{SubscriberStatus.PENDING.value}'")
    keeps_status = or_(*stopped, new.status == pending)
    set_: dict[str, Any] = {}
    for field in ("name", "frequency", "categories", "timezone"):
        if field in updates:
            set_[field] = new[field]
    if "status" in updates:
        # The unsubscribe date goes with the status: a file with dates but no status
        # column leaves both as they are (an active row must not get a date).
        set_["status"] = case((keeps_status, old.status), else_=new.status)
        set_["unsubscribed"] = case((keeps_status, old.unsubscribed), else_=new.unsubscribed)
    if "confirmed" in updates:
        set_["confirmed"] = func.coalesce(old.confirmed, new.confirmed)
    if not set_:
        set_["email"] = new.email  # changes nothing, but RETURNING still gives the row
    return set_


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, updates: frozenset[str]) -> Any:
    """The executemany upsert for ``dialect`` (a memo: the same statement object each time
    lets SQLAlchemy reuse its compiled form)."""
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(subscribers)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(subscribers)
    return stmt.on_conflict_do_update(
        index_elements=[subscribers.c.email], set_=_set_clause(stmt.excluded, updates)
    )


# Built once: a statement object reused keeps SQLAlchemy from coercing a thousand values
# into a new IN list on every batch.
_EMAILS: Any = bindparam("emails", expanding=True)
_STATUS_OF = select(subscribers.c.email, subscribers.c.status).where(
    subscribers.c.email.in_(_EMAILS)
)
_ID_OF = select(subscribers.c.email, subscribers.c.id).where(subscribers.c.email.in_(_EMAILS))
_SUPPRESSED = select(suppressions.c.email_hash).where(
    suppressions.c.email_hash.in_(bindparam("hashes", expanding=True))
)


def _suppressed(conn: Connection, emails: Sequence[str]) -> set[str]:
    """Those of ``emails`` that were forgotten."""
    by_hash = {suppression_hash(email): email for email in emails}
    found = conn.execute(_SUPPRESSED, {"hashes": list(by_hash)}).scalars()
    return {by_hash[digest] for digest in found}


def write_batch(
    store: Store,
    rows: Sequence[SubscriberInput],
    *,
    updates: Collection[str],
    now: datetime,
    actor: str,
    event: SubscriberEventKind,
    source: str | None = None,
    dry_run: bool = False,
) -> list[Outcome]:
    """:func:`save_subscribers` in a transaction of its own, retried on a deadlock.

    A database failure is a StoreError naming the lines of the batch; the batches before
    it stay written, and importing the same file again is safe.
    """
    errors = _database_errors(store)
    for attempt in range(_RETRIES):
        try:
            with store.read() if dry_run else store.write() as conn:
                return save_subscribers(
                    conn,
                    rows,
                    updates=updates,
                    now=now,
                    actor=actor,
                    event=event,
                    source=source,
                    dry_run=dry_run,
                )
        except errors as exc:
            # SQLAlchemy wraps the driver's error in .orig; psycopg's own (from COPY) is bare.
            state = getattr(getattr(exc, "orig", exc), "sqlstate", None)
            if state in _RETRY_SQLSTATES and attempt < _RETRIES - 1:
                time.sleep(0.05 * (attempt + 1))
                continue
            raise StoreError(_failure(store, rows, exc)) from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def _database_errors(store: Store) -> tuple[type[Exception], ...]:
    if store.dialect != "postgresql":
        return (DBAPIError,)
    import psycopg  # only loaded for PostgreSQL stores

    return (DBAPIError, psycopg.Error)


def _failure(store: Store, rows: Sequence[SubscriberInput], exc: Exception) -> str:
    lines = [row.line for row in rows if row.line is not None]
    where = f" (rows from lines {min(lines)}–{max(lines)})" if lines else ""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return (
        f"the {store.dialect} store failed while writing subscribers{where}: {reason}; "
        "what was written before stays, and running the same import again is safe"
    )


Finished = tuple[Sequence[SubscriberInput], list[Outcome]]


class BatchWriter:
    """:func:`write_batch` on a thread of its own, one batch after another, in order.

    Reading and checking the next rows of a file (CPU in this process) then overlaps the
    database's work on the batch before (SQLite releases the GIL while it writes;
    PostgreSQL works in its own process): on two cores an import runs about a third
    faster. At most ``depth`` batches wait, so memory stays bounded. An error in a batch
    is raised by the next :meth:`submit` or by :meth:`finish`; later batches are dropped.
    """

    def __init__(
        self,
        store: Store,
        *,
        updates: Collection[str],
        now: datetime,
        actor: str,
        event: SubscriberEventKind,
        source: str | None = None,
        dry_run: bool = False,
        depth: int = 2,
    ) -> None:
        self._store = store
        self._options: dict[str, Any] = {
            "updates": frozenset(updates),
            "now": now,
            "actor": actor,
            "event": event,
            "source": source,
            "dry_run": dry_run,
        }
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedsvc-writer")
        self._pending: deque[tuple[Sequence[SubscriberInput], Future[list[Outcome]]]] = deque()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        for _rows, future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)

    def submit(self, rows: Sequence[SubscriberInput]) -> list[Finished]:
        """Queue ``rows`` (the writer keeps its own copy); the batches finished so far."""
        batch = list(rows)
        self._pending.append((batch, self._pool.submit(self._write, batch)))
        done: list[Finished] = []
        while self._pending and (len(self._pending) > self._depth or self._pending[0][1].done()):
            done.append(self._take())
        return done

    def finish(self) -> list[Finished]:
        """Wait for every queued batch; their outcomes, in order."""
        done: list[Finished] = []
        while self._pending:
            done.append(self._take())
        return done

    def _take(self) -> Finished:
        batch, future = self._pending.popleft()
        return batch, future.result()

    def _write(self, rows: Sequence[SubscriberInput]) -> list[Outcome]:
        return write_batch(self._store, rows, **self._options)


def unsubscribe(conn: Connection, email: str, *, now: datetime, actor: str) -> Subscriber | None:
    """Mark ``email`` unsubscribed (keeping the row); its state before, or None if unknown.

    A bounced or complained address stays as it is: it is stopped already.
    """
    row = conn.execute(
        select(subscribers).where(subscribers.c.email == email).with_for_update()
    ).first()
    before = None if row is None else _subscriber(row)
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
    return bool(_suppressed(conn, [email]))


def record_event(
    conn: Connection,
    subscriber_id: int | None,
    kind: SubscriberEventKind,
    *,
    now: datetime,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(subscriber_events).values(
            subscriber_id=subscriber_id,
            kind=kind.value,
            at=now,
            actor=actor,
            detail=None if detail is None else json.dumps(detail, ensure_ascii=False),
        )
    )


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
    return None if row is None else _subscriber(row)


def iter_subscribers(
    conn: Connection, statuses: Collection[SubscriberStatus] = ()
) -> Iterator[Subscriber]:
    """Every subscriber (or those with one of ``statuses``) in the order they were added.

    Streams: rows are fetched in chunks, never all at once.
    """
    query = select(subscribers).order_by(subscribers.c.id)
    if statuses:
        query = query.where(subscribers.c.status.in_([s.value for s in statuses]))
    result = conn.execution_options(yield_per=BATCH).execute(query)
    for row in result:
        yield _subscriber(row)


def count_by_status(conn: Connection) -> dict[SubscriberStatus, int]:
    """How many subscribers have each status (every status present, zero or not)."""
    counts = dict.fromkeys(SubscriberStatus, 0)
    query = select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
    for status, count in conn.execute(query):
        counts[SubscriberStatus(status)] = count
    return counts


def _subscriber(row: Any) -> Subscriber:
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
