"""A Jekyll site (and an Astro one) through a real build, read back with feedparser: dates
Jekyll accepts, its links and jekyll-feed's ids, ids that stay once chosen, skipped
underscore folders, and the feed order of posts of one day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest
from sqlalchemy import text as sql

from feedsvc.models import Severity
from tests.build.test_builder import NOW, Site

SITE_URL = "https://jekyllrb.example/"
JEKYLL = {
    "site": {"url": SITE_URL, "timezone": "America/Los_Angeles", "language": "en"},
    "content": {"permalink": "date"},  # Jekyll's default, copied from _config.yml
}

SASS = """---
title: "Sass converter 3.0 released"
date: 2022-12-21 10:30:00 -0800
categories: [release]
---

jekyll-sass-converter 3.0 is out.
"""
STRAY_YEAR = """---
title: "Jekyll 3.9.3 Released"
date: 2023-01-29 18:30:22 2023 -0800
categories: [release]
---

Jekyll 3.9.3 is out.
"""
TEAM = """---
title: "커뮤니티 소식: 팀을 소개합니다"
date: 2021-09-14 09:00:00 -0700
categories: [Team, community]
---

팀을 소개합니다. `Promise<T>` 이야기도 합니다.
"""
BAD_DATE = """---
title: "날짜를 잘못 쓴 글"

date: 지난주 화요일
---

본문입니다.
"""
TEMPLATE = """---
title: {{ title }}
date: {{ date }}
---
"""


def jekyll_site(root: Path, **sections: dict[str, Any]) -> Site:
    merged = {key: {**JEKYLL.get(key, {}), **sections.get(key, {})} for key in {*JEKYLL, *sections}}
    site = Site(root, **merged)
    (root / "_config.yml").write_text("permalink: date\n", encoding="utf-8")
    return site


def write_jekyll_posts(site: Site) -> None:
    site.write("_posts/2022-12-21-sass-converter-3.0-released.markdown", SASS)
    site.write("_posts/2023-01-29-jekyll-3-9-3-released.markdown", STRAY_YEAR)
    site.write("_posts/2021-09-14-팀-소개.md", TEAM)
    site.write("_posts/2020-05-06-잘못된-날짜.md", BAD_DATE)
    site.write("_templates/post.md", TEMPLATE)  # not a post; would not parse either
    site.write("_drafts/초안.md", "---\ntitle: 초안\n---\n")


def entries(site: Site, name: str) -> list[Any]:
    parsed = feedparser.parse((site.root / "public" / name).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return list(parsed.entries)


def json_items(site: Site) -> list[dict[str, Any]]:
    data = json.loads((site.root / "public" / "feed.json").read_text(encoding="utf-8"))
    return list(data["items"])


EXPECTED_LINKS = [  # newest first, as Jekyll links them
    SITE_URL + "release/2023/01/29/jekyll-3-9-3-released.html",
    SITE_URL + "release/2022/12/21/sass-converter-3.0-released.html",
    SITE_URL + "team/community/2021/09/14/%ED%8C%80-%EC%86%8C%EA%B0%9C.html",
    SITE_URL + "2020/05/06/%EC%9E%98%EB%AA%BB%EB%90%9C-%EB%82%A0%EC%A7%9C.html",
]


def test_a_jekyll_site_publishes_every_post_with_jekylls_links(tmp_path: Path) -> None:
    site = jekyll_site(tmp_path)
    write_jekyll_posts(site)
    report = site.build()
    assert report.errors == 0, report.problems
    assert report.published == 4
    warnings = {(p.path, p.line): p.reason for p in report.problems}
    assert all(p.severity is Severity.WARNING for p in report.problems)
    assert set(warnings) == {
        ("_posts/2023-01-29-jekyll-3-9-3-released.markdown", 3),
        ("_posts/2020-05-06-잘못된-날짜.md", 4),
    }
    assert "date in its file name (2020-05-06)" in warnings[("_posts/2020-05-06-잘못된-날짜.md", 4)]
    for name in ("feed.xml", "atom.xml"):
        got = entries(site, name)
        assert [e.link for e in got] == EXPECTED_LINKS
        assert [e.id for e in got] == EXPECTED_LINKS  # the default id style: the URL
    # The stray year: 18:30:22 in the site's zone (-08:00 in January), as Jekyll reads it.
    stray = entries(site, "atom.xml")[0]
    assert stray.published_parsed[:6] == (2023, 1, 30, 2, 30, 22)
    assert [i["url"] for i in json_items(site)] == EXPECTED_LINKS


def test_check_reports_the_same_warnings_and_writes_nothing(tmp_path: Path) -> None:
    site = jekyll_site(tmp_path)
    write_jekyll_posts(site)
    checked = site.build(dry_run=True, render_all=True)
    built = site.build()
    assert [str(p) for p in checked.problems] == [str(p) for p in built.problems]
    assert checked.warnings == 2 and checked.errors == 0


def test_jekyll_feed_ids_through_every_format(tmp_path: Path) -> None:
    site = jekyll_site(tmp_path, feeds={"id_style": "jekyll-feed"})
    write_jekyll_posts(site)
    site.build()
    expected = [link.removesuffix(".html") for link in EXPECTED_LINKS]
    atom = entries(site, "atom.xml")
    assert [e.id for e in atom] == expected and [e.link for e in atom] == EXPECTED_LINKS
    rss = entries(site, "feed.xml")
    assert [e.id for e in rss] == expected and not any(e.guidislink for e in rss)
    raw = (site.root / "public" / "feed.xml").read_text(encoding="utf-8")
    assert '<guid isPermaLink="false">' + expected[0] + "</guid>" in raw
    assert [i["id"] for i in json_items(site)] == expected


def test_tag_ids_are_dated_by_the_first_sighting_and_stay(tmp_path: Path) -> None:
    site = jekyll_site(tmp_path, feeds={"id_style": "tag"})
    write_jekyll_posts(site)
    site.build()
    first_day = NOW.astimezone(ZoneInfo("America/Los_Angeles")).date().isoformat()
    assert first_day == "2024-05-31"  # NOW is 2024-06-01 00:00 UTC: still May 31 in LA
    tags = [
        f"tag:jekyllrb.example,{first_day}:/" + u.removeprefix(SITE_URL) for u in EXPECTED_LINKS
    ]
    assert [e.id for e in entries(site, "atom.xml")] == tags
    assert [e.id for e in entries(site, "feed.xml")] == tags
    assert [i["id"] for i in json_items(site)] == tags
    # A week later: a new post is dated by its own first sighting; the others stay.
    site.clock.advance(timedelta(days=7))
    site.write("_posts/2024-06-05-새-글.md", "---\ntitle: 새 글\n---\n본문\n")
    site.write("_posts/2022-12-21-sass-converter-3.0-released.markdown", SASS + "\n고침.\n")
    site.build()
    ids = [e.id for e in entries(site, "atom.xml")]
    assert ids[0] == "tag:jekyllrb.example,2024-06-07:/2024/06/05/%EC%83%88-%EA%B8%80.html"
    assert ids[1:] == tags


def stored_ids(site: Site) -> dict[str, str]:
    with site.store.read() as conn:
        rows = conn.execute(sql("SELECT source_path, post_id FROM posts")).all()
    return {path: post_id for path, post_id in rows}


def test_an_existing_store_keeps_its_ids_when_the_style_changes(tmp_path: Path) -> None:
    """A reader must not see the site's posts again as new: ids stay once published."""
    site = jekyll_site(tmp_path)
    write_jekyll_posts(site)
    site.build()
    before = stored_ids(site)
    site = jekyll_site(tmp_path, feeds={"id_style": "jekyll-feed"})
    site.write("_posts/2024-05-30-새-글.md", "---\ntitle: 새 글\n---\n본문\n")
    report = site.build()
    assert report.parsed == 5  # the style is part of what a parse depends on
    [warning] = [p for p in report.problems if p.path == site.settings.source]
    assert warning.severity is Severity.WARNING
    assert "4 posts keep the id" in warning.reason and "feeds.id_style" in warning.reason
    assert "new store (storage.url)" in warning.reason
    after = stored_ids(site)
    assert {path: after[path] for path in before} == before
    new = "_posts/2024-05-30-새-글.md"
    assert after[new] == SITE_URL + "2024/05/30/%EC%83%88-%EA%B8%80"  # jekyll-feed's
    atom = entries(site, "atom.xml")
    assert atom[0].id == after[new] and [e.id for e in atom[1:]] == EXPECTED_LINKS
    # An edited post keeps its id too; an unchanged site says nothing more.
    site.write("_posts/2021-09-14-팀-소개.md", TEAM + "\n덧붙임.\n")
    edited = site.build()
    assert stored_ids(site) == after
    [again] = [p.reason for p in edited.problems if p.path == site.settings.source]
    assert again.startswith("1 post keeps the id") and "_posts/2021-09-14-팀-소개.md" in again
    # A post whose URL changes is a new entry anyway: it takes the style's id.
    (site.content / "_posts/2021-09-14-팀-소개.md").rename(
        site.content / "_posts/2021-09-14-팀-소개-2.md"
    )
    site.build()
    moved = stored_ids(site)["_posts/2021-09-14-팀-소개-2.md"]
    assert moved == SITE_URL + "team/community/2021/09/14/%ED%8C%80-%EC%86%8C%EA%B0%9C-2"


def test_a_front_matter_id_still_wins_after_a_style_change(tmp_path: Path) -> None:
    site = jekyll_site(tmp_path)
    site.write("_posts/2022-12-21-sass-converter-3.0-released.markdown", SASS)
    site.build()
    site = jekyll_site(tmp_path, feeds={"id_style": "jekyll-feed"})
    site.write(
        "_posts/2022-12-21-sass-converter-3.0-released.markdown",
        SASS.replace(
            "categories:", "id: urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66\ncategories:"
        ),
    )
    report = site.build()
    assert entries(site, "atom.xml")[0].id == "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"
    assert not [p for p in report.problems if p.path == site.settings.source]


def test_an_astro_blog_orders_a_days_posts_by_archive_order(tmp_path: Path) -> None:
    site = Site(
        tmp_path,
        site={"url": "https://paldyn.example.kr/"},
        content={"permalink": "/posts/{slug}/", "order_by": "archiveOrder"},
    )
    for slug, order in [
        ("nexacro-n-dataset", 11),
        ("nexacro-n-components", 10),
        ("nexacro-n-intro", 9),
    ]:
        site.write(
            f"posts/{slug}.md",
            f'---\ntitle: "[Nexacro N] {slug}"\npubDate: "2026-04-22"\narchiveOrder: {order}\n'
            f'category: "Nexacro"\n---\n\n이 글은 **Nexacro N 기준으로 작성되었습니다.**\n',
        )
    site.write("_templates/post.md", '---\ntitle: "{{ title }}"\npubDate: {{ date }}\n---\n')
    site.clock = type(site.clock)(datetime(2026, 5, 1, tzinfo=UTC))
    report = site.build()
    assert report.errors == 0 and report.published == 3, report.problems
    expected = ["nexacro-n-dataset", "nexacro-n-components", "nexacro-n-intro"]
    for name in ("feed.xml", "atom.xml"):
        assert [e.link.rstrip("/").rsplit("/", 1)[1] for e in entries(site, name)] == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_carry_warnings_and_order_values(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.build import parse as parse_phase

    monkeypatch.setattr(parse_phase, "PARSE_THRESHOLD", 2)
    site = jekyll_site(tmp_path / str(workers), content={"order_by": "weight"})
    write_jekyll_posts(site)
    for i in range(6):
        site.write(
            f"_posts/2024-01-02-같은-날-{i}.md", f"---\ntitle: 같은 날 {i}\nweight: {i}\n---\n"
        )
    report = site.build(workers=workers)
    assert report.errors == 0 and report.warnings == 2, report.problems
    titles = [e.title for e in entries(site, "atom.xml")[:6]]
    assert titles == [f"같은 날 {i}" for i in range(5, -1, -1)]
