"""A new SQLite store's first parse begun before the store is opened (`feedsvc build`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.build import parse as parse_phase
from feedsvc.build.builder import Builder
from feedsvc.clock import FixedClock
from feedsvc.storage import open_store
from tests.build.test_builder import NOW, post
from tests.conftest import make_settings


def _site(root: Path, posts: int) -> Path:
    content = root / "content"
    content.mkdir(parents=True)
    for i in range(posts):
        name = f"2024-03-{i % 28 + 1:02d}-부산-소식-{i}.md"
        (content / name).write_text(post(f"부산 소식 {i}", date=None), encoding="utf-8")
    (content / "깨진.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _two_workers_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_phase, "default_workers", lambda: 2)
    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 4)
    monkeypatch.setattr(parse_phase, "FIRST_CHUNK", 3)


def test_a_head_start_builds_what_an_ordinary_first_build_builds(tmp_path: Path) -> None:
    outputs = []
    for head_start in (False, True):
        root = _site(tmp_path / f"head-{head_start}", 25)
        settings = make_settings(root)
        assert settings.sqlite_path is not None and not settings.sqlite_path.exists()
        head = parse_phase.head_start(settings) if head_start else None
        assert (head is not None) is head_start
        store = open_store(settings.storage_url)
        report = Builder(settings, store, FixedClock(NOW), workers=2, head=head).build()
        with store.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT source_path, post_id, slug, published, problem FROM posts "
                "ORDER BY source_path"
            ).all()
        store.close()
        problems = [(p.path, p.reason) for p in report.problems]
        feed = (root / "public" / "feed.xml").read_text(encoding="utf-8")
        outputs.append((report.parsed, report.published, problems, rows, feed))
    assert outputs[0] == outputs[1]
    assert outputs[1][1] == 25
    assert [path for path, _ in outputs[1][2]] == ["깨진.md"]


def test_no_head_start_where_the_store_file_exists_or_is_not_sqlite(tmp_path: Path) -> None:
    root = _site(tmp_path / "있는-저장소", 5)
    settings = make_settings(root)
    open_store(settings.storage_url).close()
    assert parse_phase.head_start(settings) is None
    postgres = make_settings(root, storage={"url": "postgresql://postgres@127.0.0.1/test"})
    assert postgres.sqlite_path is None and parse_phase.head_start(postgres) is None


def test_a_head_start_the_store_does_not_need_is_stopped(tmp_path: Path) -> None:
    """The store was filled between the head start and the build (another process):
    the builder stops the parse begun and uses the store's rows as every build does."""
    root = _site(tmp_path / "채워진-저장소", 8)
    settings = make_settings(root)
    head = parse_phase.head_start(settings)
    assert head is not None and head.parsing is not None
    store = open_store(settings.storage_url)
    Builder(settings, store, FixedClock(NOW), workers=1).build()
    report = Builder(settings, store, FixedClock(NOW), workers=2, head=head).build()
    assert report.parsed == 0 and report.published == 8
    assert all(future.done() for future in head.parsing.futures)  # stopped, not left running
    store.close()
