"""Opening the store: engine set-up per backend, and bringing the schema to the newest version.

SQLite runs in WAL mode with a busy timeout; write transactions start with ``BEGIN
IMMEDIATE`` so that a read-then-write never fails half-way with "database is locked".
PostgreSQL URLs without a driver use psycopg (3).

Schema changes go through Alembic. An empty store is created from the table metadata and
stamped with the head revision (Alembic's documented "create_all then stamp" recipe) —
importing and running Alembic costs about 0.2 s, a fifth of a cold build. A store at an
older revision is upgraded by Alembic itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from feedsvc.errors import StoreError
from feedsvc.models import Message
from feedsvc.storage.schema import HEAD_REVISION, metadata

log = logging.getLogger("feedsvc.storage")

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE = "feedsvc_write"
# A fixed advisory-lock key so that two processes never migrate one PostgreSQL at once.
_MIGRATION_LOCK = 0x6665_6564_7376_63


def normalise_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg://`` (psycopg 3 is what we install)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with feedsvc's per-backend settings."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (0600, whatever the umask): it
    holds addresses, consent IPs and never-expiring link tokens. SQLite gives the -wal,
    -shm and -journal files the database file's mode. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's legacy mode skips it for SELECT/DDL).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Store:
    """The state store: one engine, transactions for reading and writing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # What opening did to the schema ("created a new store at revision 0002",
        # "migrated the store from revision 0001 to 0002"), or None: for the CLI to say.
        self.migration: Message | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (deferred on SQLite, so readers never block each other)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, so a read-then-write is safe."""
        with self.engine.connect() as raw:
            conn = raw.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Connect to the store at ``url`` and bring its schema to the newest revision."""
    try:
        store = Store(make_engine(url))
        if migrate:
            store.migration = migrate_store(store)
    except (OperationalError, ProgrammingError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(
            f"cannot open the store {_safe(url)}: {reason} "
            "(check storage.url, that the database exists and is reachable)"
        ) from None
    return store


def open_store_to_read(url: str) -> Store:
    """The store at ``url`` for a run that writes nothing (``feedsvc check``): not created
    when missing, nor migrated when older — an empty one in memory stands in then (as on
    a first build: no post seen before)."""
    normal = normalise_url(url)
    if normal.startswith("sqlite"):
        path = normal.split("///", 1)[1] if "///" in normal else ""
        if not path or path.startswith(":memory:") or not Path(path).is_file():
            empty = open_store("sqlite://")
            empty.migration = None  # nothing to tell: nothing was made on disk
            return empty
    try:
        store = Store(make_engine(url))
        with store.read() as conn:
            revision = current_revision(conn)
    except (OperationalError, ProgrammingError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(
            f"cannot open the store {_safe(url)}: {reason} "
            "(check storage.url, that the database exists and is reachable)"
        ) from None
    if revision == HEAD_REVISION:
        return store
    store.close()
    stand_in = open_store("sqlite://")
    stand_in.migration = Message.of(
        "store.checked_as_new",
        "the store is at revision %(revision)s, not %(head)s: checked as a new store "
        "(`feedsvc build` migrates it)",
        revision=revision or "none",
        head=HEAD_REVISION,
    )
    return stand_in


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def current_revision(conn: Connection) -> str | None:
    """The store's Alembic revision, or None for a store with no version table."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate_store(store: Store) -> Message | None:
    """Bring the schema to ``HEAD_REVISION``; what was done (for a message), or None."""
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        revision = current_revision(conn)
        if revision == HEAD_REVISION:
            return None
        if revision is None and not inspect(conn).get_table_names():
            metadata.create_all(conn)
            conn.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION}
            )
            note = Message.of(
                "store.created",
                "created a new store at revision %(head)s",
                head=HEAD_REVISION,
            )
            log.info("%s", note)
            return note
        run_alembic_upgrade(conn)
        note = Message.of(
            "store.migrated",
            "migrated the store from revision %(revision)s to %(head)s",
            revision=revision or "none",
            head=HEAD_REVISION,
        )
        log.info("%s", note)
        return note


def alembic_config(conn: Connection | None = None) -> Any:
    """An Alembic Config pointing at our migrations, bound to ``conn`` when given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def run_alembic_upgrade(conn: Connection, target: str = "head") -> None:
    """Run the Alembic migrations up to ``target`` on ``conn`` (inside its transaction)."""
    from alembic import command

    command.upgrade(alembic_config(conn), target)
