"""Whether the store takes writes now: for `/healthz`.

A read says the store is reachable, not that a sender could record what it sent (a full
or read-only disk, an immutable file, a read-only PostgreSQL transaction mode). So the
check commits a real write that changes nothing: the one row every store has, its Alembic
revision, set to itself (SQLite writes the page to its WAL; PostgreSQL writes a new row
version and WAL). A rolled-back write would not do: SQLite only touches its files at
commit.
"""

from __future__ import annotations

from sqlalchemy import text

from feedsvc.storage.engine import Store

_TOUCH = text("UPDATE alembic_version SET version_num = version_num")


def check_writable(store: Store) -> None:
    """Commit a write that changes nothing; raises the store's error if it fails."""
    with store.write() as conn:
        conn.execute(_TOUCH)
