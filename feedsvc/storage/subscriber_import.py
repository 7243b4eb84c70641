"""Writing subscribers in batches: a transaction each, retried, on a thread of its own.

:func:`write_batch` is :func:`~feedsvc.storage.subscriber_upserts.save_subscribers` in a
transaction of its own, retried when PostgreSQL breaks a deadlock between two imports.
:class:`BatchWriter` runs those writes one after another on a thread while the caller
reads the next rows of the file.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from feedsvc.errors import StoreError
from feedsvc.models import SubscriberEventKind, SubscriberInput
from feedsvc.storage.engine import Store
from feedsvc.storage.subscriber_upserts import UpsertResult, save_subscribers

BATCH = 1000  # rows per transaction in imports: short locks, few round trips
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_RETRIES = 5


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
) -> list[UpsertResult]:
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


Finished = tuple[Sequence[SubscriberInput], list[UpsertResult]]


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
        self._pending: deque[tuple[Sequence[SubscriberInput], Future[list[UpsertResult]]]] = deque()

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

    def _write(self, rows: Sequence[SubscriberInput]) -> list[UpsertResult]:
        return write_batch(self._store, rows, **self._options)
