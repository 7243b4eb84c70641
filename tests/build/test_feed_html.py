"""A post's feed HTML is made when the post is rendered and kept with the render: renders
stored before that (or under other iframe hosts) are never carried into a feed as they
are. Real files, a real SQLite store, feedparser reading the feeds."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text as sql

from feedsvc.build.memo import settings_fingerprint
from tests.build.test_builder import Site, post


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


UNSAFE = '<p onclick="steal()">옛 렌더 본문<script>alert(1)</script></p>'


def store_an_old_render(site: Site, path: str) -> None:
    """What a version before feed sanitising at render time stored for ``path``: the
    HTML unsanitised, under the key it computed (file hash and settings, nothing else)."""
    with site.store.write() as conn:
        content_hash = conn.execute(
            sql("SELECT content_hash FROM posts WHERE source_path = :p"), {"p": path}
        ).scalar_one()
        blob = f"{content_hash}:{settings_fingerprint(site.settings)}".encode()
        old_key = hashlib.sha256(blob).hexdigest()[:32]
        conn.execute(
            sql("UPDATE posts SET html = :h, render_key = :k WHERE source_path = :p"),
            {"h": UNSAFE, "k": old_key, "p": path},
        )


def contents(site: Site) -> list[str]:
    return [entry.content[0].value for entry in site.feed().entries]


def test_a_render_stored_before_feed_sanitising_is_made_again(site: Site) -> None:
    site.write("부산.md", post("부산 소식", body='<p onclick="x()">새 본문</p>'))
    site.build()
    store_an_old_render(site, "부산.md")
    shutil.rmtree(site.root / "public")  # the feeds must be written again, from the store
    site.build()
    [content] = contents(site)
    assert "새 본문" in content and "옛 렌더" not in content
    assert "onclick" not in content and "<script" not in content


def test_a_broken_post_keeps_its_last_render_but_sanitised(site: Site) -> None:
    site.write("부산.md", post("부산 소식", body="좋은 본문"))
    site.build()
    store_an_old_render(site, "부산.md")
    site.write("부산.md", "---\ntitle: [깨짐\n---\n")
    shutil.rmtree(site.root / "public")
    report = site.build()
    assert report.errors == 1
    [content] = contents(site)
    assert "옛 렌더 본문" in content  # its last good render stays while the file is broken
    assert "onclick" not in content and "<script" not in content and "alert" not in content


def test_changing_the_iframe_hosts_renders_the_posts_again(tmp_path: Path) -> None:
    embed = '<iframe src="https://media.example.kr/v/1"></iframe>'
    first = Site(tmp_path)
    first.write("영상.md", post("영상", body=f"<p>해운대</p>\n{embed}"))
    first.build()
    [content] = contents(first)
    assert "<iframe" not in content and 'href="https://media.example.kr/v/1"' in content
    again = Site(tmp_path, feeds={"iframe_hosts": ["media.example.kr"]})
    report = again.build()
    assert report.rendered == 1
    # feedparser drops iframes of its own accord: the JSON feed shows what was written
    data = json.loads((tmp_path / "public" / "feed.json").read_text(encoding="utf-8"))
    [item] = data["items"]
    assert '<iframe src="https://media.example.kr/v/1"></iframe>' in item["content_html"]


def test_relative_links_in_feeds_are_absolute_and_active_content_gone(site: Site) -> None:
    body = (
        '[지난 글](../2023/b/) <a href="/about/" onmouseover="x()">소개</a>\n\n'
        '<img src="사진.png" srcset="작은.png 1x, /큰.png 2x">\n\n'
        '<video poster="javascript:alert(1)" src="v.mp4"></video>'
    )
    site.write("2024-01-02-a.md", post("링크", body=body))
    site.build()
    data = json.loads((site.root / "public" / "feed.json").read_text(encoding="utf-8"))
    [item] = data["items"]
    assert item["url"] == "https://news.example.kr/2024/01/02/a/"
    content = item["content_html"]
    assert '<a href="https://news.example.kr/2024/01/02/2023/b/">지난 글</a>' in content
    assert '<a href="https://news.example.kr/about/">소개</a>' in content
    assert (
        '<img src="https://news.example.kr/2024/01/02/a/사진.png" '
        'srcset="https://news.example.kr/2024/01/02/a/작은.png 1x, '
        'https://news.example.kr/큰.png 2x">'
    ) in content
    assert '<video src="https://news.example.kr/2024/01/02/a/v.mp4"></video>' in content
    assert "onmouseover" not in content and "javascript:" not in content
