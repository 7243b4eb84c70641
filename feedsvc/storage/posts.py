"""Queries for the build: the per-file cache, first-seen dates, and the build history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from feedsvc.models import Message, Problem, Severity
from feedsvc.storage.bulk import execute_tuples, rows_among, upsert
from feedsvc.storage.schema import builds, first_seen, posts

_CHUNK = 500  # keeps IN (...) lists and multi-row inserts well inside SQLite's limits
T = TypeVar("T")


@dataclass(slots=True)  # not frozen (cheaper to make): rows are replaced, never changed
class SourceRow:
    """One cached source file (everything but the rendered HTML)."""

    source_path: str
    post_id: str | None
    slug: str | None
    size: int
    mtime_ns: int
    content_hash: str
    fingerprint: str
    first_seen: datetime
    published: datetime | None
    meta: str | None
    render_key: str | None
    problem: str | None
    problem_line: int | None
    problem_message: str | None = None  # JSON of the problem's Message (Message.to_data)


@dataclass(frozen=True, slots=True)
class Render:
    source_path: str
    html: str
    summary: str
    render_key: str


@dataclass(frozen=True, slots=True)
class BuildRecord:
    started_at: datetime
    finished_at: datetime
    files: int
    parsed: int
    published: int
    rendered: int
    feeds_written: int
    errors: int
    warnings: int
    problems: tuple[Problem, ...]
    next_publish: datetime | None
    outputs: str | None = None  # JSON: outputs key and feed files' size/mtime


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


_ROW_NAMES: tuple[str, ...] = SourceRow.__slots__
_ROW_COLUMNS = [posts.c[name] for name in _ROW_NAMES]


def load_sources(conn: Connection) -> dict[str, SourceRow]:
    """Every cached source file, by path."""
    rows = conn.execute(select(*_ROW_COLUMNS))
    return {row.source_path: SourceRow(*row) for row in rows}


def has_sources(conn: Connection) -> bool:
    """Whether any source file was ever cached (false on a new store)."""
    return conn.execute(select(posts.c.source_path).limit(1)).first() is not None


def load_stats(conn: Connection) -> dict[str, tuple[int, int, str]]:
    """Every cached source file's (size, mtime_ns, fingerprint), by path: the cheap check."""
    query = select(posts.c.source_path, posts.c.size, posts.c.mtime_ns, posts.c.fingerprint)
    return {row[0]: (row[1], row[2], row[3]) for row in conn.execute(query)}


def load_renders(conn: Connection, paths: Iterable[str]) -> dict[str, Render]:
    """The last good renders of ``paths`` (those that have one)."""
    wanted = sorted(set(paths))
    found: dict[str, Render] = {}
    for chunk in _chunks(wanted):
        query = select(
            posts.c.source_path, posts.c.html, posts.c.summary, posts.c.render_key
        ).where(posts.c.source_path.in_(chunk), posts.c.html.is_not(None))
        for row in conn.execute(query):
            found[row.source_path] = Render(
                row.source_path, row.html, row.summary or "", row.render_key
            )
    return found


def save_sources(conn: Connection, rows: Sequence[SourceRow]) -> None:
    """Insert or update cached rows; an updated row keeps its last good render."""
    values = list(map(attrgetter(*_ROW_NAMES), rows))
    statement = upsert(conn, posts)
    statement = statement.on_conflict_do_update(
        index_elements=[posts.c.source_path],
        set_={name: statement.excluded[name] for name in _ROW_NAMES if name != "source_path"},
    )
    execute_tuples(conn, statement, posts, _ROW_NAMES, values)


_SAVE_RENDER = (
    posts.update()
    .where(posts.c.source_path == bindparam("r_path"))
    .values(html=bindparam("r_html"), summary=bindparam("r_summary"), render_key=bindparam("r_key"))
)


def save_renders(conn: Connection, renders: Iterable[Render]) -> None:
    """Keep each render with its source's row (one statement for them all)."""
    values = [
        {"r_path": r.source_path, "r_html": r.html, "r_summary": r.summary, "r_key": r.render_key}
        for r in renders
    ]
    if values:
        conn.execute(_SAVE_RENDER, values)


def refused_paths(conn: Connection) -> set[str]:
    """The files the last build left out as duplicates (another file keeps the slug/id)."""
    query = select(posts.c.source_path).where(posts.c.refused.is_not(None))
    return set(conn.execute(query).scalars())


def mark_refused(conn: Connection, refused: Mapping[str, str]) -> None:
    """Record which files are left out as duplicates now (path → why); clear the rest."""
    cleared = refused_paths(conn) - set(refused)
    for chunk in _chunks(sorted(cleared)):
        conn.execute(update(posts).where(posts.c.source_path.in_(chunk)).values(refused=None))
    if refused:
        conn.execute(
            update(posts)
            .where(posts.c.source_path == bindparam("r_path"))
            .values(refused=bindparam("r_why")),
            [{"r_path": path, "r_why": why} for path, why in sorted(refused.items())],
        )


def delete_sources(conn: Connection, paths: Sequence[str]) -> None:
    for chunk in _chunks(list(paths)):
        conn.execute(delete(posts).where(posts.c.source_path.in_(chunk)))


def first_seen_dates(conn: Connection, slugs: Iterable[str], now: datetime) -> dict[str, datetime]:
    """When each slug was first seen; slugs never seen before are recorded as seen ``now``."""
    wanted = sorted(set(slugs))
    known = peek_first_seen(conn, wanted)
    new = [slug for slug in wanted if slug not in known]
    record_first_seen(conn, new, now)
    if conn.dialect.name == "sqlite":
        # BEGIN IMMEDIATE held the write lock since the read: nobody else inserted.
        known.update(dict.fromkeys(new, now))
    elif new:
        known.update(peek_first_seen(conn, new))
    return known


def record_first_seen(conn: Connection, slugs: Iterable[str], now: datetime) -> None:
    """Record ``slugs`` as first seen ``now``, except those seen before (a new store's
    first build knows there are none, and need not ask)."""
    # Another process may record the same slug at the same moment: the first one stays.
    statement = upsert(conn, first_seen).on_conflict_do_nothing()
    execute_tuples(conn, statement, first_seen, ("slug", "seen_at"), [(s, now) for s in slugs])


def peek_first_seen(conn: Connection, slugs: Iterable[str]) -> dict[str, datetime]:
    """Like :func:`first_seen_dates` but records nothing (for ``feedsvc check``)."""
    query = select(first_seen.c.slug, first_seen.c.seen_at)
    return {row.slug: row.seen_at for row in rows_among(conn, query, first_seen.c.slug, set(slugs))}


def forget_outputs(conn: Connection) -> None:
    """Drop the newest build's record of the feed files it left, so the next build does
    not take the files on disk for up to date (a build that could not write its feeds)."""
    newest = select(func.max(builds.c.id)).scalar_subquery()
    conn.execute(update(builds).where(builds.c.id == newest).values(outputs=None))


def problem_message_json(problem: Problem) -> str | None:
    """A problem's message as the store keeps it (JSON), or None."""
    if problem.message is None:
        return None
    return json.dumps(problem.message.to_data(), ensure_ascii=False)


def problem_message_from_json(text: str | None) -> Message | None:
    """The message :func:`problem_message_json` kept."""
    return None if text is None else Message.from_data(json.loads(text))


def record_build(conn: Connection, record: BuildRecord) -> None:
    problems = [
        [p.path, p.line, str(p.severity), p.reason]
        + ([p.message.to_data()] if p.message is not None else [])
        for p in record.problems
    ]
    conn.execute(
        insert(builds).values(
            started_at=record.started_at,
            finished_at=record.finished_at,
            files=record.files,
            parsed=record.parsed,
            published=record.published,
            rendered=record.rendered,
            feeds_written=record.feeds_written,
            errors=record.errors,
            warnings=record.warnings,
            problems=json.dumps(problems, ensure_ascii=False),
            next_publish=record.next_publish,
            outputs=record.outputs,
        )
    )


def last_build(conn: Connection) -> BuildRecord | None:
    row = conn.execute(select(builds).order_by(builds.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    problems = tuple(
        Problem(
            path=path,
            line=line,
            severity=Severity(severity),
            reason=reason,
            message=Message.from_data(message[0]) if message else None,
        )
        for path, line, severity, reason, *message in json.loads(row.problems)
    )
    return BuildRecord(
        started_at=row.started_at,
        finished_at=row.finished_at,
        files=row.files,
        parsed=row.parsed,
        published=row.published,
        rendered=row.rendered,
        feeds_written=row.feeds_written,
        errors=row.errors,
        warnings=row.warnings,
        problems=problems,
        next_publish=row.next_publish,
        outputs=row.outputs,
    )
