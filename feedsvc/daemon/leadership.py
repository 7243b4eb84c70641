"""Which `feedsvc run` leads: builds the feeds and creates the digests.

Several daemons may share one PostgreSQL store: every one of them serves HTTP and sends
(claims keep two senders off one row), but only one builds and creates digests. That one
holds a PostgreSQL advisory lock on a connection of its own, for as long as it lives; the
database drops the lock when that session ends (a crash, a kill, a lost network), and
another instance takes over at its next try. On SQLite, the store's lock file already
keeps a second daemon away, so the only daemon leads.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from feedsvc.storage import Store

log = logging.getLogger("feedsvc.leadership")


class Leadership(Protocol):
    def try_lead(self) -> bool:
        """Whether this instance leads now (taking the lead if it is free)."""
        ...

    def release(self) -> None: ...


class SoleInstance:
    """SQLite: the store's lock file made this the only daemon."""

    def try_lead(self) -> bool:
        return True

    def release(self) -> None:
        pass


def lock_key(schema: str) -> int:
    """The advisory lock's key: one per schema (sites may share a database)."""
    digest = hashlib.blake2b(f"feedsvc run:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # PostgreSQL's bigint


class AdvisoryLock:
    """A session-level ``pg_try_advisory_lock`` on a connection kept for it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Connection | None = None

    def try_lead(self) -> bool:
        try:
            if self._conn is not None:
                self._conn.execute(text("SELECT 1"))  # still ours while the session lives
                self._conn.commit()
                return True
            conn = self.store.engine.connect()
            try:
                schema = conn.execute(text("SELECT current_schema()")).scalar_one()
                key = lock_key(str(schema))
                taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
                won = bool(taken.scalar_one())
                conn.commit()  # a session lock outlives the transaction
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            if not won:
                conn.close()
                return False
            self._conn = conn
            return True
        except DBAPIError as exc:
            log.warning("cannot reach the store to settle who leads: %s", exc.orig or exc)
            self.release()
            return False

    def release(self) -> None:
        """Give the lead up: the session ends, and the lock with it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # not back to the pool still holding the lock
            conn.close()


def leadership_for(store: Store) -> Leadership:
    return AdvisoryLock(store) if store.dialect == "postgresql" else SoleInstance()
