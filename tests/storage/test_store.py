"""The store on SQLite and PostgreSQL: migrations, the source cache, first-seen dates, builds."""

from __future__ import annotations

import ast
import json
import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from feedsvc.errors import StoreError
from feedsvc.models import Message, Problem, Severity
from feedsvc.storage import Store, open_store
from feedsvc.storage.engine import (
    alembic_config,
    current_revision,
    make_engine,
    run_alembic_upgrade,
)
from feedsvc.storage.posts import (
    BuildRecord,
    Render,
    SourceRow,
    delete_sources,
    first_seen_dates,
    last_build,
    load_renders,
    load_sources,
    peek_first_seen,
    problem_message_from_json,
    problem_message_json,
    record_build,
    save_renders,
    save_sources,
)
from feedsvc.storage.schema import HEAD_REVISION, UTCDateTime, metadata, posts
from tests.conftest import TESTS_DIR

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def vars_of(row: SourceRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in SourceRow.__dataclass_fields__}


def _row(path: str, **changes: object) -> SourceRow:
    values: dict[str, object] = dict(
        source_path=path,
        post_id=f"https://x.kr/{path}",
        slug=path.rsplit("/", 1)[-1],
        size=10,
        mtime_ns=1,
        content_hash="h1",
        fingerprint="f1",
        first_seen=T0,
        published=T0,
        meta='{"title": "부산"}',
        render_key=None,
        problem=None,
        problem_line=None,
    )
    values.update(changes)
    return SourceRow(**values)  # type: ignore[arg-type]


def test_new_store_is_at_head_revision(store: Store) -> None:
    with store.read() as conn:
        assert current_revision(conn) == HEAD_REVISION


def test_head_revision_matches_alembic_scripts() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_migrations_build_exactly_the_declared_schema(store_url: str) -> None:
    """Running every Alembic migration from empty gives the same tables as the metadata."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(store_url)
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_opening_twice_migrates_once(store_url: str) -> None:
    first = open_store(store_url)
    second = open_store(store_url)
    with second.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    first.close()
    second.close()


def test_store_created_by_alembic_opens_without_changes(store_url: str) -> None:
    engine = make_engine(store_url)
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn)
    engine.dispose()
    opened = open_store(store_url)
    with opened.read() as conn:
        assert current_revision(conn) == HEAD_REVISION
    opened.close()


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    opened = open_store(f"sqlite:///{tmp_path / 'wal.db'}")
    with opened.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    opened.close()


def test_unreachable_postgres_is_a_clear_store_error() -> None:
    with pytest.raises(StoreError, match=r"cannot open the store .*check storage.url"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")


def test_store_error_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(caught.value)


def test_source_rows_round_trip_with_korean_paths(store: Store) -> None:
    rows = [_row("2024/부산-소식.md"), _row("a.md", problem="broken YAML", problem_line=3)]
    with store.write() as conn:
        save_sources(conn, rows)
    with store.read() as conn:
        loaded = load_sources(conn)
    assert loaded == {row.source_path: row for row in rows}
    assert loaded["2024/부산-소식.md"].first_seen == T0


def test_bulk_writes_store_dates_as_core_does(store: Store) -> None:
    """Dates written in bulk (save_sources) are the same text (or value) as a Core insert
    writes, so SQL comparisons of equal instants hold on SQLite."""
    with store.write() as conn:
        save_sources(conn, [_row("bulk.md")])
        conn.execute(posts.insert().values(**vars_of(_row("core.md"))))
    with store.read() as conn:
        query = text("SELECT source_path, published FROM posts")
        stored: dict[str, object] = {row[0]: row[1] for row in conn.execute(query)}
    assert stored["bulk.md"] == stored["core.md"]


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 1),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-3, minutes=-30))]
        ),
    )
)
def test_fast_sqlite_dates_are_cores_text(moment: datetime) -> None:
    """Bulk writes format UTCDateTime values themselves on SQLite; the text must be what
    Core's own processor writes, to the microsecond, whatever the zone."""
    dialect = sqlite.dialect()
    core = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert core is not None
    assert UTCDateTime.sqlite_bind(moment) == core(moment)


def test_bulk_writes_in_any_zone_read_back_as_the_same_instants(store: Store) -> None:
    seoul = timezone(timedelta(hours=9))
    rows = [
        _row(f"{i}.md", published=T0.astimezone(seoul) + timedelta(microseconds=i))
        for i in range(50)
    ] + [_row("draft.md", published=None)]
    with store.write() as conn:
        save_sources(conn, rows)
    with store.read() as conn:
        loaded = load_sources(conn)
    assert {p: r.published for p, r in loaded.items()} == {r.source_path: r.published for r in rows}
    assert all(r.first_seen == T0 for r in loaded.values())


def test_saving_a_row_again_keeps_its_last_good_render(store: Store) -> None:
    with store.write() as conn:
        save_sources(conn, [_row("a.md")])
        save_renders(conn, [Render("a.md", "<p>좋은 글</p>", "요약", "h1:f1")])
        save_sources(conn, [_row("a.md", problem="now broken", content_hash="h2")])
    with store.read() as conn:
        renders = load_renders(conn, ["a.md"])
        rows = load_sources(conn)
    assert renders["a.md"].html == "<p>좋은 글</p>"
    assert rows["a.md"].problem == "now broken"


def test_deleted_sources_are_gone(store: Store) -> None:
    with store.write() as conn:
        save_sources(conn, [_row(f"p{i}.md") for i in range(1200)])
        delete_sources(conn, [f"p{i}.md" for i in range(0, 1200, 2)])
    with store.read() as conn:
        assert len(load_sources(conn)) == 600


def test_first_seen_is_recorded_once_and_never_moves(store: Store) -> None:
    with store.write() as conn:
        first = first_seen_dates(conn, ["안녕", "hello"], T0)
    with store.write() as conn:
        later = first_seen_dates(conn, ["안녕", "new"], T0 + timedelta(days=3))
    assert first == {"안녕": T0, "hello": T0}
    assert later == {"안녕": T0, "new": T0 + timedelta(days=3)}


def test_peek_first_seen_records_nothing(store: Store) -> None:
    with store.read() as conn:
        assert peek_first_seen(conn, ["x"]) == {}
    with store.write() as conn:
        assert first_seen_dates(conn, ["y"], T0) == {"y": T0}
    with store.read() as conn:
        assert peek_first_seen(conn, ["x", "y"]) == {"y": T0}


def test_build_history_returns_the_latest_with_problems(store: Store) -> None:
    problem = Problem("글.md", "broken YAML: fix line 3", 3, Severity.ERROR)
    for minute in (1, 2):
        record = BuildRecord(
            started_at=T0 + timedelta(minutes=minute),
            finished_at=T0 + timedelta(minutes=minute, seconds=1),
            files=minute,
            parsed=1,
            published=1,
            rendered=1,
            feeds_written=3,
            errors=1,
            warnings=0,
            problems=(problem,),
            next_publish=None,
        )
        with store.write() as conn:
            record_build(conn, record)
    with store.read() as conn:
        latest = last_build(conn)
    assert latest is not None
    assert latest.files == 2
    assert latest.problems == (problem,)


def _record_slugs(url: str, slugs: list[str], moment: datetime) -> None:
    opened = open_store(url)
    for slug in slugs:
        with opened.write() as conn:
            first_seen_dates(conn, [slug, "common-slug"], moment)
    opened.close()


def test_two_processes_write_the_same_store_safely(store_url: str) -> None:
    """Concurrent writers (SQLite WAL + BEGIN IMMEDIATE, or PostgreSQL) lose nothing."""
    open_store(store_url).close()
    ctx = multiprocessing.get_context("fork")
    workers = [
        ctx.Process(target=_record_slugs, args=(store_url, [f"{n}-{i}" for i in range(40)], T0))
        for n in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    opened = open_store(store_url)
    with opened.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM first_seen")).scalar() == 81
    opened.close()


BASE_MODULES = {"feedsvc.models", "feedsvc.errors", "feedsvc.clock", "feedsvc.config"}


def test_the_store_imports_only_base_modules_and_itself() -> None:
    """storage sits below delivery, newsletter and the rest: the values it keeps
    (DeliveryStatus, SubscriberInput, digest periods and cursors) live in models."""
    folder = TESTS_DIR.parent / "feedsvc" / "storage"
    wrong = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                ours = name == "feedsvc" or name.startswith("feedsvc.")
                if ours and name not in BASE_MODULES and not name.startswith("feedsvc.storage"):
                    wrong.append(f"{path.relative_to(folder)}: {name}")
    assert wrong == []


# --- problems as messages (issue 17): the command line shows them in the site's language --


NOT_A_DATE = Message.of(
    "content.field",
    "'%(key)s' %(reason)s",
    key="date",
    reason=Message.of(
        "content.not_a_date",
        "value %(value)s is not a date; %(help)s",
        value="'soon'",
        help=Message.of("content.date_help", "write it as 2024-01-02"),
    ),
)


def test_a_problems_message_is_kept_with_its_row_and_its_build(store: Store) -> None:
    problem = Problem.of("글.md", NOT_A_DATE, 3)
    row = _row("글.md", problem=problem.reason, problem_line=3)
    row.problem_message = problem_message_json(problem)
    with store.write() as conn:
        save_sources(conn, [row])
        record_build(
            conn,
            BuildRecord(T0, T0, 1, 1, 0, 0, 0, 1, 0, (problem, Problem("x.md", "plain")), None),
        )
    with store.read() as conn:
        [loaded] = load_sources(conn).values()
        latest = last_build(conn)
    assert problem_message_from_json(loaded.problem_message) == NOT_A_DATE
    assert latest is not None
    assert [p.message for p in latest.problems] == [NOT_A_DATE, None]
    assert latest.problems[0].reason == "'date' value 'soon' is not a date; write it as 2024-01-02"


@given(
    st.recursive(
        st.builds(Message.of, st.just("a.b"), st.just("%(x)s"), x=st.text() | st.integers()),
        lambda inner: st.builds(Message.of, st.just("c.d"), st.just("[%(x)s]"), x=inner),
        max_leaves=4,
    ),
    st.none() | st.integers(min_value=0, max_value=10**6),
)
def test_a_message_survives_the_store_as_it_was(message: Message, count: int | None) -> None:
    if count is not None:
        message = Message.counted(
            "e.f", ("%(count)s one %(x)s", "%(count)s many %(x)s"), count, x=message
        )
    assert Message.from_data(json.loads(json.dumps(message.to_data()))) == message


def test_migrating_to_0011_reads_files_broken_before_again(store_url: str) -> None:
    """Their problem has no message yet: the next build reads them again to make one."""
    engine = make_engine(store_url)
    columns = [name for name in SourceRow.__slots__ if name != "problem_message"]
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn, "0010")
        for row in (_row("good.md"), _row("bad.md", problem="broken", problem_line=1)):
            conn.execute(posts.insert().values({k: getattr(row, k) for k in columns}))
    engine.dispose()
    opened = open_store(store_url)
    try:
        with opened.read() as conn:
            rows = load_sources(conn)
    finally:
        opened.close()
    assert rows["good.md"].fingerprint == "f1" and rows["bad.md"].fingerprint == ""
    assert rows["bad.md"].problem == "broken" and rows["bad.md"].problem_message is None
