"""Bulk reads and writes without SQLAlchemy's per-statement and per-row overhead (cold builds).

SQLAlchemy Core processes each row's parameters in Python; for 10,000 rows that costs
several times what SQLite itself needs. On SQLite the statement is compiled once, each
value passes through its column type's own bind processor (so what is stored is exactly
what Core would store), and the driver's ``executemany`` does the rest. PostgreSQL keeps
Core's path, which batches well through psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Table


def execute_many(
    conn: Connection, statement: Any, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run an INSERT-like ``statement`` on ``table`` for each mapping in ``rows``."""
    if rows:
        names = tuple(rows[0])
        execute_tuples(conn, statement, table, names, [tuple(r[n] for n in names) for r in rows])


def execute_tuples(
    conn: Connection,
    statement: Any,
    table: Table,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """``execute_many`` with each row's values in the order of ``names`` (cheaper to make
    than a mapping a row: ``operator.attrgetter(*names)`` builds them in C)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    where = {name: i for i, name in enumerate(names)}
    # Column by column: zip and map run in C, and a column that needs no conversion (most
    # of them on SQLite) is passed through as it is.
    columns = list(zip(*rows, strict=True))
    dialect = conn.dialect
    ordered = []
    for name in order:
        column = columns[where[name]]
        process = _bind_processor(table.c[name].type, dialect)
        ordered.append(column if process is None else _converted(process, column))
    conn.exec_driver_sql(str(compiled), list(zip(*ordered, strict=True)))


def _bind_processor(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """How one value of ``column_type`` is written on ``dialect``: the type's own fast
    SQLite form where it has one, else its processor."""
    fast = getattr(column_type, "sqlite_bind", None)
    if fast is not None and dialect.name == "sqlite":
        return fast  # type: ignore[no-any-return]
    # dialect_impl: a TypeDecorator's own processor would skip SQLite's (dates as text the
    # way Core writes them, "2024-06-01 00:00:00.000000"; sqlite3's adapter drops zeros).
    return column_type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


def _converted(process: Callable[[Any], Any], column: Sequence[Any]) -> list[Any]:
    """``process`` over ``column``, once per distinct value where values repeat (a build
    writes the same "now" 10,000 times)."""
    try:
        distinct = dict.fromkeys(column)
    except TypeError:  # unhashable values
        return list(map(process, column))
    if len(distinct) * 2 > len(column):
        return list(map(process, column))
    done = {value: process(value) for value in distinct}
    return list(map(done.__getitem__, column))


def upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT that supports ON CONFLICT (SQLite and PostgreSQL both do)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


# Past this many values, one scan of the table beats many ``IN (...)`` queries (SQLAlchemy
# compiles each expanding IN anew; a cold build asks about 10,000 keys at once).
SCAN_ABOVE = 2000
IN_CHUNK = 500


def rows_among(
    conn: Connection, query: Any, column: Any, values: Collection[str]
) -> Iterator[Row[Any]]:
    """The rows of ``query`` whose ``column`` (its first selected column) is in ``values``."""
    wanted = set(values)
    if len(wanted) > SCAN_ABOVE:
        yield from (row for row in conn.execute(query) if row[0] in wanted)
        return
    ordered = sorted(wanted)
    for start in range(0, len(ordered), IN_CHUNK):
        yield from conn.execute(query.where(column.in_(ordered[start : start + IN_CHUNK])))
