"""Bulk writes without SQLAlchemy's per-row overhead, where it matters (cold builds).

SQLAlchemy Core processes each row's parameters in Python; for 10,000 rows that costs
several times what SQLite itself needs. On SQLite the statement is compiled once, each
value passes through its column type's own bind processor (so what is stored is exactly
what Core would store), and the driver's ``executemany`` does the rest. PostgreSQL keeps
Core's path, which batches well through psycopg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def execute_many(
    conn: Connection, statement: Any, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run an INSERT-like ``statement`` on ``table`` for each mapping in ``rows``."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, list(rows))
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    names = tuple(compiled.positiontup or ())
    processors = [table.c[name].type.bind_processor(conn.dialect) for name in names]
    pairs = list(zip(names, processors, strict=True))
    values = [
        tuple(row[name] if process is None else process(row[name]) for name, process in pairs)
        for row in rows
    ]
    conn.exec_driver_sql(str(compiled), values)
