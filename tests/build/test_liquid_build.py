"""Liquid through whole builds: links resolved to the live posts' URLs, the same problems
from ``build`` and ``check``, renders redone when a linked post moves, and a ``check``
that leaves the site's folder as it found it."""

from __future__ import annotations

import os
from pathlib import Path

import feedparser
from click.testing import CliRunner

from feedsvc.build.builder import Builder
from feedsvc.build.report import BuildReport
from feedsvc.cli.main import main
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.storage import open_store, open_store_to_read
from tests.build.test_builder import NOW
from tests.conftest import make_settings

CONFIG_YML = "title: 옛 블로그\nrepository: me/블로그\nauthor:\n  name: 홍길동\n"
LINKING = """---
title: 새 글
date: 2024-01-02 18:30:22 2024 -0800
---
[이전 글]({% post_url 2013-05-06-before %}), [공지]({% link _posts/notice/2019-03-01-news.md %})
[없는 글]({% post_url 2000-01-01-없음 %})

{% for p in site.posts %}
- {{ p.title }}
{% endfor %}
저장소 https://github.com/{{ site.repository }} ({{ site.author.name }})

```liquid
{{ site.repository }} {% include 그대로.html %}
```
"""


def _jekyll_site(root: Path) -> Settings:
    """A Jekyll site: _config.yml at the root, posts in _posts/ (content.dir), two feed
    entries at most, so that build renders only some posts."""
    posts = root / "_posts"
    (posts / "notice").mkdir(parents=True)
    (root / "_config.yml").write_text(CONFIG_YML, encoding="utf-8")
    (posts / "2013-05-06-before.md").write_text("---\ntitle: 이전\n---\n옛 글\n", "utf-8")
    (posts / "notice" / "2019-03-01-news.md").write_text("---\ntitle: 공지\n---\n공지\n", "utf-8")
    (posts / "2024-01-02-linking.md").write_text(LINKING, "utf-8")
    for day in range(1, 4):  # newer posts: the linking one drops out of the feeds
        (posts / f"2024-02-0{day}-later-{day}.md").write_text(
            f"---\ntitle: 나중 {day}\n---\n{{{{ site.없음 }}}} 본문 {day}\n", "utf-8"
        )
    return make_settings(root, content={"dir": "_posts"}, feeds={"limit": 2})


def _build(settings: Settings, *, check: bool = False) -> BuildReport:
    """``feedsvc build``, or ``feedsvc check`` (on the store as check opens it)."""
    store = open_store_to_read(settings.storage_url) if check else open_store(settings.storage_url)
    try:
        builder = Builder(settings, store, FixedClock(NOW), workers=1)
        return builder.build(dry_run=check, render_all=check)
    finally:
        store.close()


def test_build_and_check_report_the_same_problems(tmp_path: Path) -> None:
    settings = _jekyll_site(tmp_path)
    assert settings.liquid_options.enabled  # auto: a _config.yml beside _posts/
    checked = _build(settings, check=True)
    built = _build(settings)
    assert built.rendered < checked.rendered  # the build renders what the feeds show
    assert [str(p) for p in built.problems] == [str(p) for p in checked.problems]
    lines = {(p.path, p.line) for p in built.problems}
    assert ("2024-01-02-linking.md", 3) in lines  # the date Jekyll reads with a warning
    assert ("2024-01-02-linking.md", 6) in lines  # the post_url to no post
    assert ("2024-01-02-linking.md", 8) in lines  # the for block
    assert ("2024-02-01-later-1.md", 4) in lines  # site.없음, in a post no feed shows
    assert built.warnings == 6 and built.errors == 0


def test_links_resolve_to_the_posts_urls_and_follow_a_move(tmp_path: Path) -> None:
    _jekyll_site(tmp_path)
    settings = make_settings(tmp_path, content={"dir": "_posts"})  # every post in the feed
    builder = Builder(settings, open_store(settings.storage_url), FixedClock(NOW), workers=1)
    builder.build()
    html = _entry(tmp_path, "새 글")
    assert '<a href="https://news.example.kr/2013/05/06/before/">이전 글</a>' in html
    assert '<a href="https://news.example.kr/2019/03/01/news/">공지</a>' in html
    assert "없는 글" in html and "2000-01-01" not in html and "{%" not in html.split("<pre>")[0]
    assert "https://github.com/me/블로그</a> (홍길동)" in html
    assert "{{ site.repository }} {% include 그대로.html %}" in html  # code as written
    # The linked post gets a new name: the linking post's render, unchanged file and all,
    # is made again, by this builder and by a fresh one.
    posts = tmp_path / "_posts"
    (posts / "2013-05-06-before.md").rename(posts / "2013-05-06-renamed.md")
    (posts / "2024-01-02-linking.md").write_text(
        LINKING.replace("2013-05-06-before", "2013-05-06-renamed"), "utf-8"
    )
    builder.build()
    assert '<a href="https://news.example.kr/2013/05/06/renamed/">이전 글</a>' in _entry(
        tmp_path, "새 글"
    )
    (posts / "notice" / "2019-03-01-news.md").rename(posts / "notice" / "2019-03-01-moved.md")
    report = Builder(settings, open_store(settings.storage_url), FixedClock(NOW)).build()
    assert "news/" not in _entry(tmp_path, "새 글") and "공지" in _entry(tmp_path, "새 글")
    assert report.rendered >= 1


def _entry(root: Path, title: str) -> str:
    feed = feedparser.parse((root / "public" / "feed.xml").read_bytes())
    assert feed.bozo == 0
    return str(next(e for e in feed.entries if e.title == title).content[0].value)


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _config(root: Path) -> Path:
    config = root / "config.yaml"
    config.write_text(
        "site:\n  url: https://x.kr/\ncontent:\n  dir: _posts\n"
        "storage:\n  url: sqlite:///state/feedsvc.db\n",
        "utf-8",
    )
    return config


def test_check_writes_nothing_neither_store_nor_feeds(tmp_path: Path) -> None:
    _jekyll_site(tmp_path)
    config = _config(tmp_path)
    runner = CliRunner()
    before = _snapshot(tmp_path)
    checked = runner.invoke(main, ["--config", str(config), "check"])
    assert checked.exit_code == 0, checked.output
    assert "6 warnings" in checked.output
    assert _snapshot(tmp_path) == before  # no store, no public/, nothing touched
    built = runner.invoke(main, ["--config", str(config), "build"])
    assert built.exit_code == 0 and (tmp_path / "state" / "feedsvc.db").exists()
    after_build = _snapshot(tmp_path)
    again = runner.invoke(main, ["--config", str(config), "check"])
    assert again.exit_code == 0
    assert _snapshot(tmp_path) == after_build  # the store read, not written
    problems = [line for line in built.output.splitlines() if ": warning: " in line]
    assert problems == [line for line in again.output.splitlines() if ": warning: " in line]
    assert len(problems) == 6


def test_a_broken_config_yml_stops_the_build_naming_its_line(tmp_path: Path) -> None:
    _jekyll_site(tmp_path)
    (tmp_path / "_config.yml").write_text("title: 좋음\nrepository: [닫히지\nx: 1\n", "utf-8")
    config = _config(tmp_path)
    for command in ("build", "check"):
        result = CliRunner().invoke(main, ["--config", str(config), command])
        assert result.exit_code == 2
        assert f"{tmp_path / '_config.yml'}:" in result.output and "not valid YAML" in result.output
    assert not (tmp_path / "state").exists()
    assert not os.path.exists(tmp_path / "public")


def test_liquid_off_leaves_a_jekyll_site_as_written(tmp_path: Path) -> None:
    _jekyll_site(tmp_path)
    settings = make_settings(tmp_path, content={"dir": "_posts", "liquid": "off"})
    report = _build(settings)
    assert report.warnings == 1  # only the date
    assert "{% post_url 2013-05-06-before %}" in _entry(tmp_path, "새 글")
