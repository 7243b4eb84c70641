"""The build pipeline end to end on real files in tmp_path and a real SQLite store."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import text as sql

from feedsvc.build import parse as parse_phase
from feedsvc.build import render as render_posts
from feedsvc.build.builder import Builder
from feedsvc.build.report import BuildReport
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.storage import Store, open_store
from feedsvc.storage.posts import record_first_seen
from tests.conftest import REPO, TESTS_DIR, make_settings
from tests.digest_helpers import add_subscriber

NOW = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


def post(
    title: str,
    *,
    date: str | None = "2024-01-02",
    cats: str = "[News]",
    extra: str = "",
    body: str = "본문입니다.",
) -> str:
    lines = ["---", f'title: "{title}"', f"categories: {cats}"]
    if date:
        lines.append(f"date: {date}")
    if extra:
        lines.append(extra)
    return "\n".join([*lines, "---", "", body, ""])


class Site:
    """A site in a temporary folder with a fixed clock."""

    def __init__(self, root: Path, **sections: object) -> None:
        self.root = root
        self.content = root / "content"
        self.content.mkdir(parents=True, exist_ok=True)
        self.settings: Settings = make_settings(root, **sections)
        self.clock = FixedClock(NOW)
        self.store: Store = open_store(self.settings.storage_url)

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def build(self, workers: int = 1, **kwargs: Any) -> BuildReport:
        return Builder(self.settings, self.store, self.clock, workers=workers).build(**kwargs)

    def feed(self, name: str = "feed.xml") -> feedparser.FeedParserDict:
        parsed = feedparser.parse((self.root / "public" / name).read_bytes())
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        return parsed

    def titles(self, name: str = "feed.xml") -> list[str]:
        return [entry.title for entry in self.feed(name).entries]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_sample_content_builds_valid_feeds(tmp_path: Path) -> None:
    shutil.copytree(REPO / "content", tmp_path / "content")
    site = Site(tmp_path)
    report = site.build()
    assert report.errors == 0, report.problems
    titles = site.titles()
    assert "부산시 디지털 트윈 시범구역 조성  최종 선정 밝혀" in titles
    assert "아직 쓰는 중인 글" not in titles  # draft
    assert site.feed("atom.xml").entries
    assert (tmp_path / "public" / "feed.json").exists()
    assert (tmp_path / "public" / "categories" / "news" / "feed.xml").exists()


def test_seed_post_in_feed_has_absolute_images_and_excerpt_summary(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    shutil.copy(REPO / "content" / "000_efb257d3228fd9cc.txt", tmp_path / "content")
    site = Site(tmp_path)
    site.build()
    entry = site.feed().entries[0]
    assert entry.title == "부산시 디지털 트윈 시범구역 조성  최종 선정 밝혀"
    assert [t.term for t in entry.tags] == ["News"]
    assert entry.summary.startswith("부산시가 디지털 트윈 시범구역 조성사업에 선정됐다.")
    content = entry.content[0].value
    assert 'src="https://news.example.kr/assets/img/news.png"' in content
    assert entry.enclosures[0].href == "https://news.example.kr/assets/img/newspaper.png"
    raw = (tmp_path / "public" / "feed.xml").read_text(encoding="utf-8")
    assert 'src="/assets' not in raw and "src=&quot;/assets" not in raw


def test_first_seen_date_is_stable_across_builds_touches_and_moves(site: Site) -> None:
    path = site.write("undated.md", "---\ntitle: 날짜 없는 글\n---\n본문\n")
    site.build()
    first = site.feed().entries[0].published_parsed
    site.clock.advance(timedelta(days=3))
    os.utime(path, (1, 1))
    site.build()
    (site.content / "moved").mkdir()
    path.rename(site.content / "moved" / "undated.md")
    site.clock.advance(timedelta(days=3))
    site.build()
    assert site.feed().entries[0].published_parsed == first


def test_second_build_parses_and_writes_nothing(site: Site) -> None:
    for i in range(5):
        site.write(f"2024-01-0{i + 1}-글-{i}.md", post(f"글 {i}", date=None))
    first = site.build()
    before = (site.root / "public" / "feed.xml").read_bytes()
    second = site.build()
    assert first.parsed == 5 and first.feeds_written
    assert second.parsed == 0
    assert second.rendered == 0
    assert second.feeds_written == []
    assert (site.root / "public" / "feed.xml").read_bytes() == before


def test_touched_file_with_same_bytes_is_not_reparsed(site: Site) -> None:
    path = site.write("a.md", post("가"))
    site.build()
    os.utime(path, (2_000_000_000, 2_000_000_000))
    assert site.build().parsed == 0


def test_editing_one_file_reparses_and_renders_only_it(site: Site) -> None:
    for i in range(4):
        site.write(f"p{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    site.build()
    site.write("p2.md", post("고친 제목", date="2024-01-03"))
    report = site.build()
    assert (report.parsed, report.rendered) == (1, 1)
    assert "고친 제목" in site.titles()


def test_broken_yaml_is_reported_and_others_published(site: Site) -> None:
    site.write("good.md", post("좋은 글"))
    site.write("bad.md", "---\ntitle: [깨진\n---\n본문\n")
    report = site.build()
    assert site.titles() == ["좋은 글"]
    [problem] = [p for p in report.problems if p.path == "bad.md"]
    assert problem.line is not None


def test_published_post_that_breaks_keeps_its_last_good_version(site: Site) -> None:
    site.write("a.md", post("처음 제목", body="좋은 본문"))
    site.build()
    site.write("a.md", "---\ntitle: [깨짐\n---\n")
    report = site.build()
    assert report.errors == 1
    assert site.titles() == ["처음 제목"]
    assert "좋은 본문" in site.feed().entries[0].content[0].value
    # and it stays while it is broken, also on a warm build
    assert site.build().errors == 1
    assert site.titles() == ["처음 제목"]


def test_future_post_appears_when_its_time_comes(site: Site) -> None:
    site.write("now.md", post("지금", date="2024-05-01"))
    site.write("later.md", post("나중", date="2024-06-10 09:00"))
    report = site.build()
    assert site.titles() == ["지금"]
    assert report.next_publish == datetime(2024, 6, 10, 0, 0, tzinfo=UTC)  # 09:00 KST
    site.clock.advance(timedelta(days=10))
    site.build()
    assert site.titles() == ["나중", "지금"]


def test_duplicate_slug_keeps_the_first_post(site: Site) -> None:
    site.write("a/같은.md", post("첫째", date="2024-01-01"))
    site.build()
    site.write("b/같은.md", post("둘째", date="2024-02-01"))
    report = site.build()
    assert site.titles() == ["첫째"]
    assert any(p.path == "b/같은.md" and "duplicate slug" in p.reason for p in report.problems)


def test_duplicate_id_is_reported(site: Site) -> None:
    site.write("a.md", post("하나", extra="id: same"))
    site.write("b.md", post("둘", extra="id: same"))
    report = site.build()
    assert len(site.titles()) == 1
    assert any("duplicate id" in p.reason for p in report.problems)


def test_symlink_leaving_the_folder_is_refused(site: Site, tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text(post("비밀"), encoding="utf-8")
    (site.content / "link.md").symlink_to(outside)
    site.write("ok.md", post("보임"))
    report = site.build()
    assert site.titles() == ["보임"]
    assert any(p.path == "link.md" and "outside" in p.reason for p in report.problems)


def test_symlink_inside_the_folder_is_followed(site: Site) -> None:
    target = site.write("real/글.md", post("진짜"))
    (site.content / "alias").symlink_to(target.parent)
    report = site.build()
    assert report.errors == 0  # the folder is walked once, whichever name reaches it first
    assert site.titles() == ["진짜"]


def test_oversized_binary_undecodable_and_empty_files_are_reported(tmp_path: Path) -> None:
    site = Site(tmp_path, content={"max_bytes": 1000})
    site.write("big.md", post("큰 글", body="가" * 2000))
    site.write("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    site.write("latin1.md", "---\ntitle: caf\xe9\n---\n".encode("latin-1"))
    site.write("empty.md", "")
    site.write("fine.md", post("괜찮은 글"))
    report = site.build()
    assert site.titles() == ["괜찮은 글"]
    assert {p.path for p in report.problems} == {"big.md", "binary.md", "latin1.md", "empty.md"}
    assert report.errors == 4


def test_hidden_files_and_drafts_folder_are_skipped(site: Site) -> None:
    site.write(".hidden.md", post("숨김"))
    site.write(".git/x.md", post("깃"))
    site.write("_drafts/초안.md", post("초안"))
    site.write("notes.txt.bak", post("백업"))
    site.write("visible.md", post("보임"))
    report = site.build()
    assert report.files == 1
    assert site.titles() == ["보임"]


def test_deleted_post_leaves_the_feeds_and_its_category_feed_goes(site: Site) -> None:
    site.write("a.md", post("가", cats="[News]"))
    doomed = site.write("b.md", post("나", cats="[Sports]"))
    site.build()
    assert (site.root / "public" / "categories" / "sports" / "feed.xml").exists()
    doomed.unlink()
    site.build()
    assert site.titles() == ["가"]
    assert not (site.root / "public" / "categories" / "sports").exists()


def test_dry_run_writes_nothing(site: Site) -> None:
    site.write("a.md", post("가"))
    report = site.build(dry_run=True, render_all=True)
    assert report.published == 1
    assert not (site.root / "public").exists()
    assert site.build().parsed == 1  # nothing was cached by the dry run


def test_unsupported_liquid_is_a_warning_not_an_error(tmp_path: Path) -> None:
    site = Site(tmp_path, content={"liquid": "on"})
    site.write("a.md", post("리퀴드", body="앞\n\n{% include note.html %}\n"))
    report = site.build()
    assert report.errors == 0
    assert report.warnings == 1
    assert report.problems[0].line is not None


def test_worker_processes_give_the_same_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Posts and feeds rendered by a worker process and the main process together.
    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 2)
    monkeypatch.setattr(render_posts, "RENDER_THRESHOLD", 2)
    monkeypatch.setattr(render_posts, "FEEDS_THRESHOLD", 2)
    outputs = []
    for workers in (1, 2):
        site = Site(tmp_path / f"w{workers}")
        for i in range(30):
            cats = f"[분류{i % 5}, News]"
            site.write(f"2024-02-{i % 28 + 1:02d}-글-{i}.md", post(f"글 {i}", date=None, cats=cats))
        report = site.build(workers=workers)
        assert report.parsed == 30 and report.rendered == 30
        public = site.root / "public"
        first = {p.relative_to(public): p.read_bytes() for p in public.rglob("*.*")}
        # A category's posts go: a fresh builder (a one-off build) removes its feeds.
        for i in range(4, 30, 5):
            (site.content / f"2024-02-{i % 28 + 1:02d}-글-{i}.md").unlink()
        again = site.build(workers=workers)
        assert "categories/분류4/feed.xml" in again.feeds_written
        after = {p.relative_to(public): p.read_bytes() for p in public.rglob("*.*")}
        outputs.append((first, after))
    assert len(outputs[0][0]) == 3 * 7  # the site's feeds and six categories', three formats
    assert len(outputs[0][1]) == 3 * 6 and not (site.root / "public/categories/분류4").exists()
    assert outputs[0] == outputs[1]


def test_changing_settings_reparses_everything(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write("a.md", post("가"))
    site.build()
    site.settings = make_settings(tmp_path, site={"url": "https://other.example.kr/"})
    report = site.build()
    assert report.parsed == 1
    assert site.feed().entries[0].link.startswith("https://other.example.kr/")


def test_unchanged_site_is_recognised_without_reading_posts(site: Site) -> None:
    site.write("a.md", post("가"))
    site.write("bad.md", "---\ntitle: [x\n---\n")
    first = site.build()
    second = site.build()
    assert "unchanged check" in second.timings and "parse" not in second.timings
    assert (second.published, second.errors, second.feeds_written) == (1, 1, [])
    assert second.problems == first.problems


def test_deleted_feed_file_is_written_again(site: Site) -> None:
    site.write("a.md", post("가"))
    site.build()
    (site.root / "public" / "atom.xml").unlink()
    report = site.build()
    assert report.feeds_written == ["atom.xml"]
    assert (site.root / "public" / "atom.xml").exists()


def test_hand_edited_feed_file_is_restored(site: Site) -> None:
    site.write("a.md", post("가"))
    site.build()
    target = site.root / "public" / "feed.json"
    original = target.read_bytes()
    target.write_bytes(b"{}")
    site.build()
    assert target.read_bytes() == original


def test_changed_feed_settings_rebuild_the_feeds(tmp_path: Path) -> None:
    site = Site(tmp_path)
    for i in range(3):
        site.write(f"p{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    site.build()
    site.settings = make_settings(tmp_path, feeds={"limit": 2})
    report = site.build()
    assert "unchanged check" not in report.timings
    assert len(site.titles()) == 2


def test_new_file_is_not_missed_by_the_unchanged_check(site: Site) -> None:
    site.write("a.md", post("가", date="2024-01-01"))
    site.build()
    site.write("b.md", post("나", date="2024-01-02"))
    report = site.build()
    assert report.parsed == 1
    assert site.titles() == ["나", "가"]


SAMPLE_GOLDEN = TESTS_DIR / "golden" / "sample"


def test_sample_site_feeds_match_the_golden_files(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The repository's sample content/ and config.yaml, built at a fixed moment, byte for
    byte. After a deliberate change: ``pytest tests/build/test_builder.py --regen-golden``."""
    from feedsvc import __version__
    from feedsvc.config import load_settings

    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copytree(REPO / "assets", tmp_path / "assets")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    settings = load_settings(tmp_path / "config.yaml")
    store = open_store(settings.storage_url)
    Builder(settings, store, FixedClock(NOW), workers=1).build()
    names = ["feed.xml", "atom.xml", "feed.json"]
    built = {
        name: (tmp_path / "public" / name).read_bytes().replace(__version__.encode(), b"VERSION")
        for name in names
    }
    if request.config.getoption("--regen-golden"):
        SAMPLE_GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, data in built.items():
            (SAMPLE_GOLDEN / name).write_bytes(data)
    for name, data in built.items():
        assert (SAMPLE_GOLDEN / name).read_bytes() == data, (
            f"{name} differs from tests/golden/sample/{name}; if intended, run "
            "pytest tests/build/test_builder.py --regen-golden"
        )


def test_build_announces_new_posts_once_and_edits_never_again(site: Site) -> None:
    site.write("a.md", post("가", date="2024-05-30"))
    assert len(site.build().announced) == 1
    site.write("a.md", post("가 (고침)", date="2024-05-30"))
    assert site.build().announced == []
    site.write("b.md", post("나", date="2024-05-31"))
    assert len(site.build().announced) == 1


def test_first_build_announces_the_back_catalogue_without_the_flood_guard(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path, digest={"flood_limit": 2})
    for i in range(5):
        site.write(f"p{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    assert len(site.build().announced) == 5


def test_a_permalink_change_is_held_by_the_flood_guard(tmp_path: Path) -> None:
    site = Site(tmp_path, digest={"flood_limit": 2})
    for i in range(3):
        site.write(f"p{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    site.build()
    site.settings = make_settings(
        tmp_path, digest={"flood_limit": 2}, content={"permalink": "/posts/{slug}/"}
    )
    assert site.build().announced == []  # three new ids at once: held, not emailed


def test_builds_on_sqlite_and_postgresql(tmp_path: Path, store_url: str) -> None:
    """The same site builds, rebuilds and keeps its last good version on either store."""
    site = Site(tmp_path)
    site.store.close()
    site.store = open_store(store_url)
    try:
        site.write("a.md", post("처음 제목", date="2024-01-01"))
        site.write("b.md", post("둘째", date="2024-01-02"))
        assert site.build().errors == 0
        site.write("a.md", "---\ntitle: [깨짐\n---\n")
        report = site.build()
        assert report.errors == 1
        assert site.titles() == ["둘째", "처음 제목"]
        assert site.build().errors == 1
    finally:
        site.store.close()


def test_a_builder_building_again_renders_only_the_feeds_that_changed(site: Site) -> None:
    """The daemon's case: one Builder, many builds; unchanged feeds keep their bytes."""
    builder = Builder(site.settings, site.store, site.clock, workers=1)
    site.write("a.md", post("가", date="2024-01-01", cats="[News]"))
    site.write("b.md", post("나", date="2024-01-02", cats="[Sports]"))
    first = builder.build()
    sports = (site.root / "public" / "categories" / "sports" / "feed.xml").read_bytes()
    site.write("a.md", post("가 (고침)", date="2024-01-01", cats="[News]"))
    second = builder.build()
    assert first.feeds_rendered == 3  # the site, News and Sports
    assert second.feeds_rendered == 2  # the site and News; Sports is reused
    assert "가 (고침)" in site.titles()
    assert (site.root / "public" / "categories" / "sports" / "feed.xml").read_bytes() == sports
    fresh = Builder(site.settings, site.store, site.clock, workers=1)
    site.write("a.md", post("가 (다시)", date="2024-01-01", cats="[News]"))
    assert fresh.build().feeds_rendered == 3  # a new builder knows nothing yet


def _feed_bytes(root: Path) -> dict[str, bytes]:
    public = root / "public"
    return {p.relative_to(public).as_posix(): p.read_bytes() for p in public.rglob("*.*")}


def test_builds_from_a_watchers_paths_match_full_builds(site: Site, tmp_path: Path) -> None:
    """Each step rebuilt from only the changed paths gives the feeds a fresh full build of
    the same folder gives (in another output folder and store)."""
    builder = Builder(site.settings, site.store, site.clock, workers=1)
    site.write("a.md", post("가", date="2024-01-01", cats="[News]"))
    site.write("b.md", post("나", date="2024-01-02", cats="[Sports]"))
    builder.build()
    steps: list[tuple[str, str | None]] = [
        ("a.md", post("가 (고침)", date="2024-01-01", cats="[News, 부산]")),
        ("c.md", post("다", date="2024-01-03", cats="[부산]")),
        ("b.md", None),  # deleted: the Sports feed goes
        (".c.md.swp", "editor junk"),
        ("d.md", "---\ntitle: [broken\n---\n"),  # a problem, reported
        ("c.md", post("다 (미래)", date="2024-07-01", cats="[부산]")),  # future again
        ("c.md", post("다", date="2024-01-03", cats="[부산]")),
    ]
    for number, (rel, text) in enumerate(steps):
        path = site.content / rel
        if text is None:
            path.unlink()
        else:
            site.write(rel, text)
        report = builder.build(changed=[str(path)])
        twin = Site(tmp_path / f"twin{number}")
        twin.settings = make_settings(twin.root, content={"dir": str(site.content)})
        expected = twin.build()
        assert _feed_bytes(site.root) == _feed_bytes(twin.root), rel
        assert [str(p) for p in report.problems] == [str(p) for p in expected.problems]
        assert report.next_publish == expected.next_publish


def test_paths_from_a_watcher_are_not_trusted_after_another_process_built(site: Site) -> None:
    daemon = Builder(site.settings, site.store, site.clock, workers=1)
    site.write("a.md", post("가"))
    daemon.build()
    site.write("b.md", post("나", date="2024-01-03"))
    site.build()  # `feedsvc build` from a terminal: the daemon's memory is stale now
    site.write("c.md", post("다", date="2024-01-04"))
    daemon.build(changed=[str(site.content / "c.md")])
    assert site.titles() == ["다", "나", "가"]


def test_a_deleted_feed_file_comes_back_on_the_next_full_build(site: Site) -> None:
    builder = Builder(site.settings, site.store, site.clock, workers=1)
    site.write("a.md", post("가"))
    builder.build()
    (site.root / "public" / "atom.xml").unlink()
    site.write("a.md", post("가 (고침)"))
    builder.build(changed=[str(site.content / "a.md")])  # writes only what it re-rendered
    builder.build()  # the periodic rescan
    assert (site.root / "public" / "atom.xml").exists()


def _first_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the builds that parsed as they scanned (a new store's first build)."""
    calls: list[int] = []
    real = parse_phase.first_parse

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(parse_phase, "first_parse", counted)  # builder imports it when used
    return calls


def test_a_new_stores_first_build_gives_the_same_feeds_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first build on an empty store parses while it scans and saves each chunk as it
    comes; the feeds, rows and announcements are those of the ordinary parse."""
    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 2)
    monkeypatch.setattr(parse_phase, "FIRST_CHUNK", 4)  # chunks sent during the scan
    first_parses = _first_parses(monkeypatch)
    outputs = []
    for as_new in (False, True):
        site = Site(tmp_path / f"new-{as_new}")
        for i in range(30):
            site.write(f"2024-02-{i % 28 + 1:02d}-글-{i}.md", post(f"글 {i}", date=None))
        site.write("깨진.md", "---\ntitle: [broken\n---\n")
        site.write("중복.md", post("글 1", extra="slug: 글-1"))
        site.write("날짜-없는-글.md", post("날짜 없는 글", date=None))
        # One id in two files (the first path keeps it), a draft, a post not yet due.
        site.write("가-같은-글.md", post("같은 글 가", extra="id: 같은-글\nslug: 같은-가"))
        site.write("하-같은-글.md", post("같은 글 하", extra="id: 같은-글\nslug: 같은-하"))
        site.write("초안.md", post("초안", extra="draft: true"))
        site.write("예약.md", post("예약", date="2099-01-01"))
        builder = Builder(site.settings, site.store, site.clock, workers=2)
        if not as_new:  # as if the store had held something: the ordinary parse
            monkeypatch.setattr(builder, "_first_build", lambda *args: False)
        report = builder.build()
        assert len(first_parses) == as_new
        assert report.parsed == 36
        problems = [(p.path, p.reason) for p in report.problems]
        with site.store.read() as conn:
            stored = (
                report.announced,
                conn.execute(
                    sql(
                        "SELECT post_id, source_path, became_new_at, held, released_at, "
                        "eligible_at FROM announcements ORDER BY post_id"
                    )
                ).all(),
                conn.execute(sql("SELECT slug, seen_at FROM first_seen ORDER BY slug")).all(),
                conn.execute(
                    sql(
                        "SELECT source_path, post_id, slug, first_seen, published, meta, problem "
                        "FROM posts ORDER BY source_path"
                    )
                ).all(),
            )
        # The rows in the store are as complete: another build parses nothing.
        again = Builder(site.settings, site.store, site.clock, workers=2).build()
        assert again.parsed == 0 and len(first_parses) == as_new
        assert [(p.path, p.reason) for p in again.problems] == problems
        outputs.append(((site.root / "public" / "feed.xml").read_bytes(), problems, stored))
    assert outputs[0] == outputs[1]
    announced, rows, seen = outputs[0][2][:3]
    # Every slug's first sighting: 36 parsed files, two of them sharing a slug.
    slugs = [slug for slug, _ in seen]
    assert len(slugs) == 35 and "날짜-없는-글" in slugs
    # Announced: the 32 live posts with their own slug and id (not the draft, not the
    # post due in 2099, not the second file with a taken slug or id).
    assert len(announced) == len(rows) == 32
    assert ("같은-글", "가-같은-글.md") in [(r[0], r[1]) for r in rows]


def test_a_small_new_site_is_parsed_after_the_scan(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the parse threshold the workers forked for the walk are stopped, and the
    build goes on with the scan it made."""
    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 5)
    first_parses = _first_parses(monkeypatch)
    for i in range(3):
        site.write(f"{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    report = site.build(workers=2)
    assert len(first_parses) == 1
    assert report.parsed == 3 and report.published == 3
    assert site.titles() == ["글 2", "글 1", "글 0"]


@pytest.mark.parametrize("held", ["a build", "a first sighting", "a subscriber"])
def test_a_store_that_holds_anything_is_not_parsed_as_new(
    site: Site, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    """Only a store with nothing a build consults settles as it parses; any other uses
    its rows, its first sightings and the flood guard's rules as every build does."""
    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 2)
    for i in range(5):
        site.write(f"{i}.md", post(f"글 {i}", date=f"2024-01-0{i + 1}"))
    if held == "a build":
        site.build()
        site.write("0.md", post("고친 글", date="2024-01-01"))
    with site.store.write() as conn:
        if held == "a first sighting":
            record_first_seen(conn, ["딴-글"], NOW)
        elif held == "a subscriber":
            add_subscriber(conn, "minji@example.kr")
    first_parses = _first_parses(monkeypatch)
    report = site.build(workers=2)
    assert first_parses == []
    assert report.parsed == (1 if held == "a build" else 5)  # the store's cache was used
    assert "고친 글" in site.titles() or held != "a build"
