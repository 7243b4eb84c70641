"""feeds: posts → RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes, read back by real readers.

The W3C feed validator is not installable here (not on PyPI), so its rules that matter
for us are checked one by one: absolute references, self links, one alternate link per
entry, authors, permalink guids, RFC 822 / RFC 3339 dates.

Golden files: ``pytest tests/feeds/test_render.py --regen-golden`` rewrites tests/golden/feeds/.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import feedparser
import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc import __version__
from feedsvc.config import IFRAME_HOSTS, FeedOptions, settings_from_mapping
from feedsvc.content.sanitise import sanitise_feed_html
from feedsvc.errors import OutputError
from feedsvc.feeds.output import write_feed_files
from feedsvc.feeds.plan import FeedSpec, feed_base_url, plan_feeds
from feedsvc.feeds.render import JSON_OPTIONS, render_feeds
from feedsvc.models import Author, Image, Post, PostMeta
from tests.conftest import TESTS_DIR

GOLDEN = TESTS_DIR / "golden" / "feeds"
SCHEMA = json.loads((TESTS_DIR / "jsonfeed-1.1.schema.json").read_text(encoding="utf-8"))
KST = ZoneInfo("Asia/Seoul")
SITE = "https://example.com/blog/"
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SMART_CITY = "%EC%8A%A4%EB%A7%88%ED%8A%B8%EC%8B%9C%ED%8B%B0"  # "스마트시티", percent-encoded


def make_options(*, site: dict[str, Any] | None = None, **feeds: Any) -> FeedOptions:
    """The feeds' slice of settings, made from config keys (validated as config.yaml is)."""
    return settings_from_mapping(
        {
            "site": {
                "title": "스마트시티 뉴스",
                "url": SITE,
                "description": "부산과 서울의 스마트시티 소식",
                "language": "ko",
                "timezone": "Asia/Seoul",
                "author": {"name": "편집부", "email": "desk@example.com"},
                **(site or {}),
            },
            "feeds": feeds,
        }
    ).feed_options


def make_post(
    slug: str,
    published: datetime,
    *,
    id: str | None = None,
    url: str | None = None,
    title: str = "제목",
    html: str = "<p>본문</p>",
    summary: str = "요약",
    updated: datetime | None = None,
    **meta: Any,
) -> Post:
    url = url or f"{SITE}{published:%Y/%m/%d}/{slug}/"
    return Post(
        meta=PostMeta(
            id=id or url,
            slug=slug,
            url=url,
            source=f"{slug}.md",
            title=title,
            published=published,
            updated=updated or published,
            date_source="front_matter",
            **meta,
        ),
        # As a render leaves it (content.markup.render_post): sanitised for feeds.
        html=sanitise_feed_html(html, IFRAME_HOSTS, base_url=url, site_url=SITE),
        summary=summary,
    )


BUSAN_URL = f"{SITE}2024/03/01/부산-디지털-트윈/"
BUSAN = make_post(
    "부산-디지털-트윈",
    datetime(2024, 3, 1, 9, 0, tzinfo=KST),
    url=BUSAN_URL,
    title="부산시 디지털 트윈 시범구역 조성 최종 선정",
    html='<p>부산시는 <a href="https://example.com/blog/about/">디지털 트윈</a> 사업에'
    " 선정됐다.</p>",
    summary="부산시가 디지털 트윈 시범구역 조성사업에 선정됐다.",
    updated=datetime(2024, 3, 2, 18, 30, tzinfo=KST),
    categories=("스마트시티", "News"),
    tags=("디지털 트윈",),
    author=Author("김기자", "reporter@example.com"),
    image=Image(f"{SITE}assets/img/newspaper.png", "image/png", 20480),
)
HELLO = make_post(
    "hello-world",
    datetime(2024, 2, 20, 8, 0, tzinfo=UTC),
    id="hello-world",
    title="Hello, world",
    html="<p>An English post.</p>",
    summary="An English post.",
    categories=("news",),
    lang="en",
    image=Image(f"{SITE}assets/img/hello.jpg"),
)
ESCAPES = make_post(
    "escapes",
    datetime(2024, 2, 25, 12, 0, tzinfo=KST),
    title='Escaping <b> & "quotes"\x07',
    html='<p>1 &lt; 2 &amp;&amp; 3</p>\n<pre>x = "]]>"; // ]]&gt;</pre>\x00\x0b<p>끝\ufffe</p>',
    summary="Summary with a lone surrogate \ud800 and <angle> & ampersand.",
    categories=("개발",),
    tags=("xml", "스마트시티"),
    author=Author("메일 없는 필자"),
)
# Published at the same instant as ESCAPES: the slug decides ("escapes" < "seoul-ai").
SEOUL = make_post(
    "seoul-ai",
    datetime(2024, 2, 25, 3, 0, tzinfo=UTC),
    id="tag:example.com,2024:seoul-ai",
    title="서울시 AI 교통 신호",
    categories=("스마트시티",),
    tags=("AI",),
    lang="ko",
)
POSTS = (HELLO, SEOUL, BUSAN, ESCAPES)  # deliberately not in feed order
NEWEST_FIRST = (BUSAN, ESCAPES, SEOUL, HELLO)


def render(posts: tuple[Post, ...] = POSTS, options: FeedOptions | None = None) -> dict[str, bytes]:
    options = options or make_options()
    plan = plan_feeds([p.meta for p in posts], options)
    return render_feeds(plan, {p.meta.id: p for p in posts}, options)


def xml(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def parse(data: bytes) -> Any:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def items(rss: etree._Element) -> list[etree._Element]:
    return rss.findall("channel/item")


def entries(atom: etree._Element) -> list[etree._Element]:
    return atom.findall(f"{ATOM}entry")


# ---------------------------------------------------------------- plan_feeds


def test_plan_lists_site_posts_newest_first_ties_broken_by_slug() -> None:
    site = plan_feeds([p.meta for p in POSTS], make_options())[0]
    assert (site.path, site.kind, site.term) == ("", "site", None)
    assert site.post_ids == tuple(p.meta.id for p in NEWEST_FIRST)
    assert site.title == "스마트시티 뉴스"
    assert site.description == "부산과 서울의 스마트시티 소식"


def test_plan_has_one_feed_per_category_slug_then_tags_sorted_by_slug() -> None:
    plan = plan_feeds([p.meta for p in POSTS], make_options(per_tag=True))
    assert [(s.kind, s.path, s.term) for s in plan] == [
        ("site", "", None),
        ("category", "categories/news/", "News"),  # "News" and "news": one feed
        ("category", "categories/개발/", "개발"),
        ("category", "categories/스마트시티/", "스마트시티"),
        ("tag", "tags/ai/", "AI"),
        ("tag", "tags/xml/", "xml"),
        ("tag", "tags/디지털-트윈/", "디지털 트윈"),
        ("tag", "tags/스마트시티/", "스마트시티"),
    ]
    by_path = {s.path: s for s in plan}
    assert by_path["categories/news/"].post_ids == (BUSAN.meta.id, HELLO.meta.id)
    assert by_path["categories/스마트시티/"].post_ids == (BUSAN.meta.id, SEOUL.meta.id)
    assert by_path["categories/스마트시티/"].title == "스마트시티 뉴스 – 스마트시티"
    assert by_path["tags/ai/"].title == "스마트시티 뉴스 – #AI"


def test_plan_names_a_shared_feed_after_the_most_used_spelling() -> None:
    metas = [
        make_post(f"p{i}", datetime(2024, 1, i + 1, tzinfo=UTC), categories=(term,)).meta
        for i, term in enumerate(["News", "news", "news"])
    ]
    (category,) = plan_feeds(metas, make_options())[1:]
    assert (category.term, category.path, len(category.post_ids)) == ("news", "categories/news/", 3)


def test_plan_makes_category_and_tag_feeds_only_when_configured() -> None:
    metas = [p.meta for p in POSTS]
    assert [s.kind for s in plan_feeds(metas, make_options())].count("tag") == 0
    assert [s.kind for s in plan_feeds(metas, make_options(per_category=False))] == ["site"]


def test_plan_limits_every_feed_to_feeds_limit() -> None:
    metas = [
        make_post(f"p{i}", datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i)).meta
        for i in range(30)
    ]
    metas = [replace(m, categories=("스마트시티",)) for m in metas]
    plan = plan_feeds(metas, make_options(limit=5))
    assert [len(s.post_ids) for s in plan] == [5, 5]
    assert plan[0].post_ids == tuple(m.id for m in reversed(metas[-5:]))


def test_plan_is_the_same_for_any_input_order_and_drops_duplicate_ids() -> None:
    metas = [p.meta for p in POSTS]
    options = make_options(per_tag=True)
    assert plan_feeds(reversed(metas), options) == plan_feeds(metas, options)
    assert plan_feeds(metas + metas[:1], options) == plan_feeds(metas, options)


def test_plan_skips_terms_that_leave_no_slug() -> None:
    meta = replace(HELLO.meta, categories=("!!!",))
    assert [s.kind for s in plan_feeds([meta], make_options())] == ["site"]


def test_feed_base_url_is_the_site_url() -> None:
    assert feed_base_url(make_options()) == SITE


PLAIN_OPTIONS = FeedOptions(
    site_url=SITE,
    title="스마트시티 뉴스",
    description="부산과 서울의 스마트시티 소식",
    language="ko",
    author_name="편집부",
    author_email="desk@example.com",
    limit=20,
    formats=("rss", "atom", "json"),
    per_category=True,
    per_tag=False,
    websub_hub=None,
    timezone="Asia/Seoul",
)


def test_feed_options_are_the_settings_slice() -> None:
    assert make_options() == PLAIN_OPTIONS


def test_plans_and_renders_from_options_made_of_plain_values() -> None:
    # No Settings: the slice is plain values, and gives what the settings give.
    options = replace(PLAIN_OPTIONS, title="다른 이름", limit=2, formats=("json",), per_tag=True)
    plan = plan_feeds([p.meta for p in POSTS], options)
    assert plan[0].title == "다른 이름" and plan[0].post_ids == (BUSAN.meta.id, ESCAPES.meta.id)
    assert [s.kind for s in plan].count("tag") == 4
    files = render_feeds(plan, {p.meta.id: p for p in POSTS}, options)
    assert set(files) == {spec.path + "feed.json" for spec in plan}
    assert render(options=PLAIN_OPTIONS) == render(options=make_options())


# ---------------------------------------------------------------- every feed


def test_render_writes_only_the_configured_formats() -> None:
    assert sorted(render(options=make_options(formats=["json"]))) == [
        "categories/news/feed.json",
        "categories/개발/feed.json",
        "categories/스마트시티/feed.json",
        "feed.json",
    ]
    assert sorted(render(options=make_options(formats=["rss", "atom"], per_category=False))) == [
        "atom.xml",
        "feed.xml",
    ]


ALL_FILES = render(options=make_options(per_tag=True, websub_hub="https://hub.example.net/"))


@pytest.mark.parametrize("name", sorted(n for n in ALL_FILES if n.endswith(".xml")))
def test_every_xml_feed_is_well_formed_and_read_by_feedparser(name: str) -> None:
    xml(ALL_FILES[name])
    parsed = parse(ALL_FILES[name])
    assert parsed.version == ("rss20" if name.endswith("feed.xml") else "atom10")
    assert parsed.entries


@pytest.mark.parametrize("name", sorted(n for n in ALL_FILES if n.endswith(".json")))
def test_every_json_feed_validates_against_the_1_1_schema(name: str) -> None:
    data = ALL_FILES[name]
    assert data.endswith(b"}\n")
    feed = json.loads(data)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(feed)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == SITE + quote(name)
    for item in feed["items"]:
        assert {"id", "url", "title", "content_html", "date_published", "authors"} <= set(item)


def test_all_references_are_absolute() -> None:
    """The validator warns on relative references; every URL we write must be absolute."""
    for name, data in ALL_FILES.items():
        urls: list[str] = []
        if name.endswith(".json"):
            feed = json.loads(data)
            urls += [feed["home_page_url"], feed["feed_url"], feed["hubs"][0]["url"]]
            urls += [i["url"] for i in feed["items"]] + [
                i["image"] for i in feed["items"] if "image" in i
            ]
        else:
            for element in xml(data).iter():
                urls += [
                    element.get(a) or ""
                    for a in ("href", "url", "domain", "scheme")
                    if element.get(a)
                ]
                if element.tag in ("link", "docs", f"{ATOM}id") or (
                    element.tag == "guid" and element.get("isPermaLink") == "true"
                ):
                    urls.append(element.text or "")
        assert urls
        for url in urls:
            parts = urlsplit(url)
            assert (
                parts.netloc
                if parts.scheme in ("http", "https")
                else parts.scheme in ("urn", "tag")
            ), (
                name,
                url,
            )
            assert url.isascii() and " " not in url, (name, url)


def test_render_is_byte_identical_across_runs_and_input_order() -> None:
    """Same input, same bytes; feedgen's defaults ("now", to the microsecond) never leak."""
    options = make_options(per_tag=True)
    first = render(POSTS, options)
    again = render(tuple(reversed(POSTS)), options)
    assert first == again
    assert list(first) == list(again)


def test_feed_updated_is_the_newest_item_update_never_now() -> None:
    files = render()
    newest = "2024-03-02T18:30:00+09:00"  # BUSAN.updated, in site.timezone's offset
    assert xml(files["atom.xml"]).findtext(f"{ATOM}updated") == newest
    assert (
        xml(files["feed.xml"]).findtext("channel/lastBuildDate")
        == "Sat, 02 Mar 2024 18:30:00 +0900"
    )
    # A feed whose newest post is not its most recently updated one.
    news = xml(files["categories/개발/atom.xml"])
    assert news.findtext(f"{ATOM}updated") == "2024-02-25T12:00:00+09:00"


def test_an_empty_feed_is_dated_at_the_epoch() -> None:
    files = render(posts=())
    assert sorted(files) == ["atom.xml", "feed.json", "feed.xml"]
    assert xml(files["atom.xml"]).findtext(f"{ATOM}updated") == "1970-01-01T09:00:00+09:00"
    assert (
        xml(files["feed.xml"]).findtext("channel/lastBuildDate")
        == "Thu, 01 Jan 1970 09:00:00 +0900"
    )
    assert json.loads(files["feed.json"])["items"] == []
    assert parse(files["atom.xml"]).bozo == 0
    assert files == render(posts=())


def test_items_are_newest_first_in_every_format() -> None:
    files = render()
    titles = [feedparser.parse(files[n]).entries for n in ("feed.xml", "atom.xml")]
    links = [p.meta.url for p in NEWEST_FIRST]
    for parsed in titles:
        assert [e.link for e in parsed] == [_uri_of(link) for link in links]
    assert [i["url"] for i in json.loads(files["feed.json"])["items"]] == [
        _uri_of(u) for u in links
    ]


def _uri_of(url: str) -> str:
    return quote(url, safe=":/")


def test_render_refuses_a_plan_naming_a_post_it_was_not_given() -> None:
    options = make_options()
    plan = [FeedSpec("", "t", "d", "site", None, ("missing",))]
    with pytest.raises(ValueError, match="'missing'"):
        render_feeds(plan, {}, options)


def test_render_refuses_dates_without_zone_naming_the_post() -> None:
    naive = make_post("naive", datetime(2024, 1, 1, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        render((naive,))


# ---------------------------------------------------------------- feed level


def test_feed_level_fields() -> None:
    files = render(options=make_options(websub_hub="https://hub.example.net/"))
    rss = parse(files["feed.xml"]).feed
    assert (rss.title, rss.link, rss.subtitle, rss.language) == (
        "스마트시티 뉴스",
        SITE,
        "부산과 서울의 스마트시티 소식",
        "ko",
    )
    assert rss.generator == f"feedsvc {__version__}"
    atom = xml(files["atom.xml"])
    assert atom.get(XML_LANG) == "ko"
    assert atom.findtext(f"{ATOM}id") == SITE + "atom.xml"
    assert atom.findtext(f"{ATOM}author/{ATOM}name") == "편집부"
    assert atom.findtext(f"{ATOM}author/{ATOM}email") == "desk@example.com"
    generator = atom.find(f"{ATOM}generator")
    assert generator is not None
    assert (generator.text, generator.get("version")) == ("feedsvc", __version__)
    alternates = [link for link in atom.findall(f"{ATOM}link") if link.get("rel") == "alternate"]
    assert [a.get("href") for a in alternates] == [SITE]
    feed = json.loads(files["feed.json"])
    assert feed["home_page_url"] == SITE
    assert feed["authors"] == [{"name": "편집부", "url": "mailto:desk@example.com"}]
    assert (feed["title"], feed["description"], feed["language"]) == (
        "스마트시티 뉴스",
        "부산과 서울의 스마트시티 소식",
        "ko",
    )


def test_rss_description_falls_back_to_the_title() -> None:
    files = render(options=make_options(site={"description": ""}))
    assert xml(files["feed.xml"]).findtext("channel/description") == "스마트시티 뉴스"
    assert json.loads(files["feed.json"])["description"] == "스마트시티 뉴스"


def test_self_links_are_the_feed_urls_percent_encoded_for_a_korean_category() -> None:
    files = render()
    base = f"{SITE}categories/{SMART_CITY}/"
    rss_self = xml(files["categories/스마트시티/feed.xml"]).find(f"channel/{ATOM}link[@rel='self']")
    assert rss_self is not None
    assert (rss_self.get("href"), rss_self.get("type")) == (
        base + "feed.xml",
        "application/rss+xml",
    )
    atom = xml(files["categories/스마트시티/atom.xml"])
    (atom_self,) = [link for link in atom.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert atom_self.get("href") == base + "atom.xml" == atom.findtext(f"{ATOM}id")
    assert json.loads(files["categories/스마트시티/feed.json"])["feed_url"] == base + "feed.json"
    assert (
        parse(files["categories/스마트시티/atom.xml"]).feed.title == "스마트시티 뉴스 – 스마트시티"
    )


def test_hub_links_appear_only_when_websub_is_configured() -> None:
    hub = "https://hub.example.net/"
    with_hub = render(options=make_options(websub_hub=hub))
    rss_hub = xml(with_hub["feed.xml"]).find(f"channel/{ATOM}link[@rel='hub']")
    assert rss_hub is not None and rss_hub.get("href") == hub
    assert xml(with_hub["atom.xml"]).find(f"{ATOM}link[@rel='hub']") is not None
    assert json.loads(with_hub["feed.json"])["hubs"] == [{"type": "WebSub", "url": hub}]
    without = render()
    assert b'rel="hub"' not in without["feed.xml"] + without["atom.xml"]
    assert "hubs" not in json.loads(without["feed.json"])


# ---------------------------------------------------------------- items


def test_rss_items_read_back_through_feedparser() -> None:
    entries = parse(render()["feed.xml"]).entries
    busan, escapes, seoul, hello = entries
    assert busan.title == BUSAN.meta.title
    assert busan.link == _uri_of(BUSAN_URL)
    assert busan.id == _uri_of(BUSAN_URL)
    assert busan.summary == BUSAN.summary
    assert busan.content[0].value == BUSAN.html
    assert busan.published == "Fri, 01 Mar 2024 09:00:00 +0900"
    assert busan.author == "reporter@example.com (김기자)"
    assert [(t.term, t.scheme) for t in busan.tags] == [
        ("스마트시티", SITE + "categories/"),
        ("News", SITE + "categories/"),
        ("디지털 트윈", SITE + "tags/"),
    ]
    assert hello.id == "hello-world"
    assert seoul.id == "tag:example.com,2024:seoul-ai"
    assert escapes.author == "메일 없는 필자"  # from dc:creator
    assert hello.author == "desk@example.com (편집부)"  # the site's author


def test_atom_entries_read_back_through_feedparser() -> None:
    busan, escapes, seoul, hello = parse(render()["atom.xml"]).entries
    assert busan.title == BUSAN.meta.title
    assert busan.id == _uri_of(BUSAN_URL)
    assert busan.link == _uri_of(BUSAN_URL)
    assert busan.summary == BUSAN.summary
    assert busan.content[0].type == "text/html" and busan.content[0].value == BUSAN.html
    assert busan.published == "2024-03-01T09:00:00+09:00"
    assert busan.updated == "2024-03-02T18:30:00+09:00"
    assert busan.author_detail == {"name": "김기자", "email": "reporter@example.com"}
    assert seoul.id == "tag:example.com,2024:seoul-ai"
    assert escapes.author == "메일 없는 필자"
    assert hello.author_detail == {"name": "편집부", "email": "desk@example.com"}


def test_json_items_carry_every_field() -> None:
    busan, escapes, seoul, hello = json.loads(render()["feed.json"])["items"]
    assert busan == {
        "id": _uri_of(BUSAN_URL),
        "url": _uri_of(BUSAN_URL),
        "title": BUSAN.meta.title,
        "content_html": BUSAN.html,
        "summary": BUSAN.summary,
        "image": f"{SITE}assets/img/newspaper.png",
        "date_published": "2024-03-01T09:00:00+09:00",
        "date_modified": "2024-03-02T18:30:00+09:00",
        "tags": ["스마트시티", "News", "디지털 트윈"],
        "authors": [{"name": "김기자", "url": "mailto:reporter@example.com"}],
    }
    assert escapes["tags"] == ["개발", "xml", "스마트시티"]  # a term in both lists, once
    assert hello["id"] == "hello-world" and hello["language"] == "en"
    assert "image" not in seoul


def test_rss_guid_is_a_permalink_only_when_the_id_is_the_url() -> None:
    guids = {g.text: g.get("isPermaLink") for g in xml(render()["feed.xml"]).iter("guid")}
    assert guids == {
        _uri_of(BUSAN_URL): "true",
        ESCAPES.meta.url: "true",
        "tag:example.com,2024:seoul-ai": "false",
        "hello-world": "false",
    }


def test_atom_ids_are_absolute_iris_and_stable() -> None:
    ids = [e.findtext(f"{ATOM}id") for e in entries(xml(render()["atom.xml"]))]
    hello_id = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, SITE + "#hello-world"))
    assert ids == [_uri_of(BUSAN_URL), ESCAPES.meta.url, "tag:example.com,2024:seoul-ai", hello_id]


def test_rss_author_is_an_email_address_else_dc_creator() -> None:
    for item in items(xml(render()["feed.xml"])):
        author = item.findtext("author")
        creator = item.findtext(f"{DC}creator")
        assert (author is None) != (creator is None)
        if author is not None:
            assert re.fullmatch(r"[^@\s]+@[^@\s]+ \(.+\)", author)


def test_every_atom_entry_has_an_author_and_one_alternate_link() -> None:
    atom = xml(render()["atom.xml"])
    assert atom.find(f"{ATOM}author/{ATOM}name") is not None
    for entry in entries(atom):
        assert entry.findtext(f"{ATOM}author/{ATOM}name")
        rels = [link.get("rel") for link in entry.findall(f"{ATOM}link")]
        assert rels.count("alternate") == 1 and None not in rels


def test_images_become_enclosures_thumbnails_and_json_images() -> None:
    files = render()
    busan, _, seoul, hello = items(xml(files["feed.xml"]))
    enclosure = busan.find("enclosure")
    assert enclosure is not None
    assert dict(enclosure.items()) == {
        "url": f"{SITE}assets/img/newspaper.png",
        "length": "20480",
        "type": "image/png",
    }
    unknown = hello.find("enclosure")
    assert unknown is not None
    assert (unknown.get("length"), unknown.get("type")) == ("0", "image/jpeg")
    thumbnail = busan.find(f"{MEDIA}thumbnail")
    assert thumbnail is not None and thumbnail.get("url") == f"{SITE}assets/img/newspaper.png"
    assert seoul.find("enclosure") is None and seoul.find(f"{MEDIA}thumbnail") is None

    atom_busan, _, _, atom_hello = entries(xml(files["atom.xml"]))
    (link,) = atom_busan.findall(f"{ATOM}link[@rel='enclosure']")
    assert dict(link.items()) == {
        "href": f"{SITE}assets/img/newspaper.png",
        "rel": "enclosure",
        "type": "image/png",
        "length": "20480",
    }
    (link,) = atom_hello.findall(f"{ATOM}link[@rel='enclosure']")
    assert link.get("length") is None  # unknown: Atom's length is optional
    parsed = parse(files["atom.xml"]).entries[0].enclosures
    assert [(e.href, e.type, e.length) for e in parsed] == [
        (f"{SITE}assets/img/newspaper.png", "image/png", "20480")
    ]
    assert parse(files["feed.xml"]).entries[3].enclosures[0].href == f"{SITE}assets/img/hello.jpg"


def test_item_language_where_the_post_sets_one() -> None:
    files = render()
    langs = [e.get(XML_LANG) for e in entries(xml(files["atom.xml"]))]
    assert langs == [None, None, "ko", "en"]
    assert [i.findtext(f"{DC}language") for i in items(xml(files["feed.xml"]))] == langs
    assert [i.get("language") for i in json.loads(files["feed.json"])["items"]] == langs
    assert parse(files["atom.xml"]).entries[3].title_detail.language == "en"


def test_an_invalid_language_tag_is_left_out() -> None:
    post = make_post("odd", datetime(2024, 1, 1, tzinfo=UTC), lang="Korean language")
    files = render((post,))
    (entry,) = entries(xml(files["atom.xml"]))
    assert entry.get(XML_LANG) is None
    assert "language" not in json.loads(files["feed.json"])["items"][0]


def test_dates_are_rfc822_with_numeric_zone_and_rfc3339() -> None:
    files = render()
    rfc822 = re.compile(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}"
    )
    rfc3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
    for item, post in zip(items(xml(files["feed.xml"])), NEWEST_FIRST, strict=True):
        text = item.findtext("pubDate") or ""
        assert rfc822.fullmatch(text)
        moment = parsedate_to_datetime(text)
        assert moment == post.meta.published
        assert text.startswith(moment.strftime("%a"))  # the validator checks the weekday
    for entry, post in zip(entries(xml(files["atom.xml"])), NEWEST_FIRST, strict=True):
        published = entry.findtext(f"{ATOM}published") or ""
        updated = entry.findtext(f"{ATOM}updated") or ""
        assert rfc3339.fullmatch(published) and rfc3339.fullmatch(updated)
        assert datetime.fromisoformat(published) == post.meta.published
        assert datetime.fromisoformat(updated) == post.meta.updated


def test_xml_illegal_characters_are_stripped_everywhere() -> None:
    files = render()
    for name in ("feed.xml", "atom.xml", "feed.json"):
        text = files[name].decode("utf-8")
        for bad in ("\x00", "\x07", "\x0b", "\ufffe"):
            assert bad not in text and json.dumps(bad)[1:-1] not in text, (name, repr(bad))
    escapes = parse(files["atom.xml"]).entries[1]
    assert escapes.title == 'Escaping <b> & "quotes"'
    assert escapes.summary == "Summary with a lone surrogate  and <angle> & ampersand."


def test_content_is_escaped_text_never_cdata() -> None:
    """A body holding "]]>" would end a CDATA section early."""
    files = render()
    for name in ("feed.xml", "atom.xml"):
        assert b"<![CDATA[" not in files[name]
    # (">" in text comes back escaped: the sanitiser writes it so.)
    expected = '<p>1 &lt; 2 &amp;&amp; 3</p>\n<pre>x = "]]&gt;"; // ]]&gt;</pre><p>끝</p>'
    assert parse(files["feed.xml"]).entries[1].content[0].value == expected
    assert parse(files["atom.xml"]).entries[1].content[0].value == expected
    assert json.loads(files["feed.json"])["items"][1]["content_html"] == expected


# ---------------------------------------------------------------- speed paths


def test_each_feed_is_the_same_rendered_alone_as_beside_feeds_sharing_its_posts() -> None:
    """Posts' entries and JSON items are built once per call and shared between feeds."""
    options = make_options(per_tag=True, websub_hub="https://hub.example.net/")
    posts = {p.meta.id: p for p in POSTS}
    plan = plan_feeds([p.meta for p in POSTS], options)
    together = render_feeds(plan, posts, options)
    assert len(plan) > 4
    for spec in plan:
        alone = render_feeds([spec], posts, options)
        assert alone == {name: together[name] for name in alone}


JSON_VALUES: list[Any] = [
    "",
    "스마트시티 뉴스",
    'quotes " and \\ backslash / slash',
    "controls \x00\x01\x07\x08\t\n\x0b\x0c\r\x1f\x7f, U+2028 \u2028, U+FFFE \ufffe",
    "an emoji \U0001f600 and a noncharacter \uffff",
    [],
    {},
    [[]],
    {"": {}},
    [1, -2, 0, True, False, None, "x"],
    {"items": [], "authors": [{"name": "편집부", "url": "mailto:desk@example.com"}]},
    {"a": [{"b": [{"c": []}], "d": {"e": [1, [2, [3]]]}}], "f": (4, "튜플")},
    {"title": "t", "content_html": '<p class="x">본문</p>\n', "tags": ["스마트시티", "AI"]},
]


def pretty(value: Any) -> bytes:
    """What feed.json always was: json.dumps's pretty layout, a newline, UTF-8."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


@pytest.mark.parametrize("value", JSON_VALUES)
def test_feed_json_encoding_is_json_dumps_pretty(value: Any) -> None:
    assert orjson.dumps(value, option=JSON_OPTIONS) == pretty(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(_JSON)
def test_feed_json_encoding_is_json_dumps_pretty_for_any_value(value: Any) -> None:
    assert orjson.dumps(value, option=JSON_OPTIONS) == pretty(value)


# Floats are left out: no feed holds one (and orjson writes 1e-7 where json writes 1e-07).
@pytest.mark.parametrize("value", [{1: "int key"}, {None: 1}, b"bytes", {"a": {1, 2}}, "\ud800"])
def test_feed_json_encoding_refuses_what_no_feed_holds(value: Any) -> None:
    """Non-str keys, bytes, sets and lone surrogates (stripped from every field first)."""
    with pytest.raises(TypeError):
        orjson.dumps(value, option=JSON_OPTIONS)


# ---------------------------------------------------------------- writing files

FEED_FILES = {
    "feed.xml": b"<rss/>",
    "atom.xml": b"<feed/>",
    "feed.json": b"{}",
    "categories/b/feed.xml": b"<rss>b</rss>",
    "categories/a/feed.xml": b"<rss>a</rss>",
    "tags/c/feed.json": b"[]",
}


def test_write_feed_files_publishes_site_feeds_first_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[str] = []
    real_replace = os.replace

    def recording_replace(src: str, dst: Path) -> None:
        renamed.append(dst.relative_to(tmp_path).as_posix())
        real_replace(src, dst)

    monkeypatch.setattr("feedsvc.feeds.output.os.replace", recording_replace)
    assert write_feed_files(tmp_path, FEED_FILES) == sorted(FEED_FILES)
    assert renamed == [
        "atom.xml",
        "feed.json",
        "feed.xml",
        "categories/a/feed.xml",
        "categories/b/feed.xml",
        "tags/c/feed.json",
    ]
    for rel, data in FEED_FILES.items():
        assert (tmp_path / rel).read_bytes() == data
        assert (tmp_path / rel).stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.rglob("*.tmp"))
    renamed.clear()
    assert write_feed_files(tmp_path, FEED_FILES) == []  # unchanged: nothing rewritten
    changed = {**FEED_FILES, "feed.json": b"{ }", "categories/b/feed.xml": b"<rss>B</rss>"}
    assert write_feed_files(tmp_path, changed, only={"feed.json"}) == ["feed.json"]
    assert renamed == ["feed.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("failing", ["feed.json", "categories/b/feed.xml"])
@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_write_leaves_the_previous_set_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, step: str
) -> None:
    """A file that cannot be written (a full disk fails the write or its fsync) publishes
    nothing: every feed keeps the previous build's bytes. A rename that fails (rare: the
    data is already on disk) publishes nothing after it. No temp file is left either way."""
    order = ["atom.xml", "feed.json", "feed.xml", "categories/a/feed.xml"]
    order += ["categories/b/feed.xml", "tags/c/feed.json"]
    write_feed_files(tmp_path, FEED_FILES)
    newer = {rel: data + "\n<!-- 새 빌드 -->".encode() for rel, data in FEED_FILES.items()}
    real_fsync, real_replace = os.fsync, os.replace
    target = (tmp_path / failing).resolve()

    def fsync(fd: int) -> None:
        temp = Path(os.readlink(f"/proc/self/fd/{fd}"))  # Linux: the file behind fd
        temp_of_target = temp.parent == target.parent and temp.name.startswith(f".{target.name}.")
        if step == "fsync" and temp_of_target:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        if step == "replace" and dst == tmp_path / failing:
            raise OSError(5, "disk on fire")
        real_replace(src, dst)

    monkeypatch.setattr("feedsvc.feeds.output.os.fsync", fsync)
    monkeypatch.setattr("feedsvc.feeds.output.os.replace", replace)
    with pytest.raises((OSError, OutputError), match=r"No space left|disk on fire"):
        write_feed_files(tmp_path, newer)
    published = order[: order.index(failing)] if step == "replace" else []
    for rel in order:
        expected = newer[rel] if rel in published else FEED_FILES[rel]
        assert (tmp_path / rel).read_bytes() == expected, rel
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- golden files


def golden_render() -> Iterator[tuple[str, bytes]]:
    options = make_options(websub_hub="https://hub.example.net/", per_category=False)
    for name, data in render(POSTS, options).items():
        # The generator version would otherwise make every release rewrite these files.
        yield name, data.replace(__version__.encode(), b"VERSION")


def test_golden_files(request: pytest.FixtureRequest) -> None:
    """Byte-for-byte; after a deliberate change: pytest tests/feeds/test_render.py
    --regen-golden."""
    rendered = dict(golden_render())
    assert sorted(rendered) == ["atom.xml", "feed.json", "feed.xml"]
    if request.config.getoption("--regen-golden"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, data in rendered.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in rendered.items():
        assert (GOLDEN / name).read_bytes() == data, (
            f"{name} differs from tests/golden/feeds/{name}; if the change is intended, "
            "run: pytest tests/feeds/test_render.py --regen-golden"
        )
