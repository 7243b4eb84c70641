"""The signing keys kept in a PostgreSQL store (table ``secret_keys``; see
feedsvc.newsletter.tokens).

Generation 1 is written by whichever daemon or command needs a key first: ``INSERT … ON
CONFLICT DO NOTHING`` then ``SELECT``, so that processes starting together all read the
one that was written, never each their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from feedsvc.storage.schema import secret_keys


def stored_keys(conn: Connection) -> list[tuple[int, str, datetime]]:
    """Every kept key as (generation, secret, created), oldest first."""
    rows = conn.execute(
        select(secret_keys.c.generation, secret_keys.c.secret, secret_keys.c.created).order_by(
            secret_keys.c.generation
        )
    )
    return [(row.generation, row.secret, row.created) for row in rows]


def add_key(conn: Connection, generation: int, secret: str, now: datetime) -> bool:
    """Write ``secret`` as ``generation`` unless that generation exists; True if written."""
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        maker(secret_keys)
        .values(generation=generation, secret=secret, created=now)
        .on_conflict_do_nothing(index_elements=[secret_keys.c.generation])
        .returning(secret_keys.c.generation)  # rowcount is not reliable here with psycopg
    )
    return conn.execute(statement).first() is not None


def newest_generation(conn: Connection) -> int:
    """The highest generation kept, 0 when there is none."""
    newest = select(func.coalesce(func.max(secret_keys.c.generation), 0))
    return int(conn.execute(newest).scalar_one())


def drop_keys(conn: Connection, generations: Sequence[int]) -> None:
    """Forget the keys of ``generations``: links signed with them stop working."""
    if generations:
        conn.execute(delete(secret_keys).where(secret_keys.c.generation.in_(list(generations))))
