"""Summaries, titles, authors and dates as readers get them: every summary and title
round-trips through feedparser (RSS, Atom) and JSON; a front-matter description is plain
text unless clearly HTML; entries without an author fall back to site.author or carry
none; dates are written in site.timezone's offset, the instants unchanged."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.config import FeedOptions, settings_from_mapping
from feedsvc.content.html_tags import is_clearly_html
from feedsvc.content.markup import render_post
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.feeds.plan import plan_feeds
from feedsvc.feeds.render import render_feeds
from feedsvc.models import Author, Post, PostMeta

SITE = "https://dev.example.kr/"
KST = ZoneInfo("Asia/Seoul")
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
# What the issue saw lose text on real sites, and what it must keep.
REAL_SUMMARIES = [
    "Promise<T>의 의미",
    "Connection<open/closed> 상태를 다룹니다",
    "Bash의 <<< Here String, <<EOF Here Document와 파이프",
    "List<Map<String, Object>>와 \"따옴표\", 'apostrophe' & 앰퍼샌드",
    "a < b && c > d; x <= y",
]


def settings_for(**site: Any) -> Any:
    return settings_from_mapping(
        {"site": {"title": "개발 블로그", "url": SITE, "timezone": "Asia/Seoul", **site}}
    )


def options(**site: Any) -> FeedOptions:
    result: FeedOptions = settings_for(**site).feed_options
    return result


def post(title: str = "제목", summary: str = "요약", **meta: Any) -> Post:
    when = meta.pop("published", datetime(2024, 5, 1, 9, 0, tzinfo=KST))
    url = f"{SITE}{meta.pop('slug', 'post')}/"
    return Post(
        PostMeta(
            id=url, slug="post", url=url, source="post.md", title=title, published=when,
            updated=when, date_source="front_matter", **meta,
        ),
        html="<p>본문</p>",
        summary=summary,
    )  # fmt: skip


def render(posts: list[Post], feed_options: FeedOptions) -> dict[str, bytes]:
    plan = plan_feeds([p.meta for p in posts], feed_options)
    return render_feeds(plan, {p.meta.id: p for p in posts}, feed_options)


def read_back(files: dict[str, bytes]) -> dict[str, tuple[str, str]]:
    """(title, summary) of the first entry as each format's reader gives it back."""
    rss, atom = feedparser.parse(files["feed.xml"]), feedparser.parse(files["atom.xml"])
    assert rss.bozo == 0 and atom.bozo == 0
    rss_entry, atom_entry = rss.entries[0], atom.entries[0]
    # RSS <description> is HTML: a reader shows its text, the escaped summary unescaped.
    assert rss_entry.summary_detail.type == "text/html"
    assert atom_entry.summary_detail.type == "text/plain"
    item = json.loads(files["feed.json"])["items"][0]
    return {
        "rss": (rss_entry.title, html.unescape(rss_entry.summary)),
        "atom": (atom_entry.title, atom_entry.summary),
        "json": (item["title"], item["summary"]),
    }


# Korean, '<', '&', quotes and the runs authors write (<<<, <<EOF, <T>), one line, no
# space at either end (readers trim those).
WORDS = st.lists(
    st.sampled_from(
        ["가나다", "한글", "T", "<", ">", "&", "&amp;", '"', "'", "<<<", "<<EOF", "<T>",
         "</p>", "<b>", "Promise<T>의", "a", "=", ";", "#"]
    ),
    min_size=1,
    max_size=10,
).map(" ".join)  # fmt: skip


@hypothesis_settings(max_examples=60, deadline=None)
@given(WORDS, WORDS)
def test_every_summary_and_title_round_trips_through_the_readers(title: str, summary: str) -> None:
    read = read_back(render([post(title, summary)], options()))
    for fmt, (title_read, summary_read) in read.items():
        assert (title_read, summary_read) == (title, summary), fmt


@pytest.mark.parametrize("summary", REAL_SUMMARIES)
def test_real_summaries_keep_every_character_from_front_matter_to_reader(summary: str) -> None:
    settings = settings_for()
    source = (
        '---\ntitle: "Promise<T>의 T는"\ndate: 2024-05-01\n'
        f"description: {json.dumps(summary)}\n---\n본문\n"
    )
    parsed = parse_source("2024-05-01-promise.md", source.encode(), settings.parse_options)
    meta = to_meta(parsed, settings.parse_options, first_seen=datetime(2024, 5, 1, tzinfo=UTC))
    rendered, _ = render_post(parsed, meta, settings.markup_options)
    assert rendered.summary == summary
    for fmt, read in read_back(render([rendered], settings.feed_options)).items():
        assert read == ("Promise<T>의 T는", summary), fmt


def test_a_title_from_the_first_heading_keeps_its_type_parameter() -> None:
    settings = settings_for()
    for body in ("# Promise<T>의 T는\n\n본문\n", "<h1>Promise<T>의 T는</h1><p>본문</p>\n"):
        parsed = parse_source("2024-05-01-p.md", body.encode(), settings.parse_options)
        assert parsed.title == "Promise<T>의 T는"


@pytest.mark.parametrize(
    ("value", "is_html"),
    [
        ("Promise<T>의 의미", False),
        ("Connection<open/closed>", False),
        ("Bash의 <<< Here String, <<EOF Here Document", False),
        ("List<String>과 Map<K, V>", False),
        ("<Object>와 <Data>", False),  # known names Capitalised: type names
        ("a < b > c", False),
        ("<p>문단</p>", True),
        ('자세한 건 <a href="https://x.kr/">여기</a>', True),
        ("<em>강조</em>한 요약", True),
        ("첫 줄<br>둘째 줄", True),
        ("첫 줄<br/>둘째 줄", True),
        ("<STRONG>굵게</STRONG>", True),
    ],
)
def test_a_description_is_text_unless_clearly_html(value: str, is_html: bool) -> None:
    assert is_clearly_html(value) is is_html
    settings = settings_for()
    source = f"---\ntitle: t\ndescription: {json.dumps(value)}\n---\n본문\n"
    parsed = parse_source("2024-05-01-p.md", source.encode(), settings.parse_options)
    if is_html:
        assert parsed.excerpt is not None and "<" not in parsed.excerpt.replace("< b", "")
    else:
        assert parsed.excerpt == value


# -------------------------------------------------------------------- authors


def test_without_site_author_entries_without_one_carry_no_author() -> None:
    files = render([post()], options())
    rss = etree.fromstring(files["feed.xml"])
    assert rss.find("channel/item/author") is None
    assert rss.find(f"channel/item/{DC}creator") is None
    assert rss.find("channel/managingEditor") is None
    atom = etree.fromstring(files["atom.xml"])
    # Atom requires an author for an entry without one: the feed's, the site's title.
    assert [a.findtext(f"{ATOM}name") for a in atom.findall(f"{ATOM}author")] == ["개발 블로그"]
    assert atom.find(f"{ATOM}entry/{ATOM}author") is None
    feed = json.loads(files["feed.json"])
    assert "authors" not in feed and "authors" not in feed["items"][0]
    assert b"feedsvc</name>" not in files["atom.xml"]


def test_entries_fall_back_to_site_author_and_keep_their_own() -> None:
    feed_options = options(author={"name": "편집팀", "email": "desk@example.kr"})
    own = post(author=Author("김기자", None), slug="own")
    files = render([own, post(published=datetime(2024, 4, 1, tzinfo=KST))], feed_options)
    atom = feedparser.parse(files["atom.xml"])
    assert atom.feed.author_detail == {"name": "편집팀", "email": "desk@example.kr"}
    assert [e.get("author") for e in atom.entries] == ["김기자", "편집팀 (desk@example.kr)"]
    rss = feedparser.parse(files["feed.xml"])
    assert [e.get("author") for e in rss.entries] == ["김기자", "desk@example.kr (편집팀)"]
    items = json.loads(files["feed.json"])["items"]
    assert [i["authors"][0]["name"] for i in items] == ["김기자", "편집팀"]


def test_site_author_needs_a_name() -> None:
    with pytest.raises(Exception, match=r"site\.author\.name"):
        settings_from_mapping({"site": {"author": {"name": " ", "email": "a@b.kr"}}})
    with pytest.raises(Exception, match=r"site\.author\.name"):
        settings_from_mapping({"site": {"author": {"email": "a@b.kr"}}})


def test_iframe_hosts_must_be_host_names() -> None:
    with pytest.raises(Exception, match=r"feeds\.iframe_hosts"):
        settings_from_mapping({"feeds": {"iframe_hosts": ["https://www.youtube.com/"]}})
    parsed = settings_from_mapping({"feeds": {"iframe_hosts": ["Maps.Example.KR"]}})
    assert parsed.feed_options.iframe_hosts == ("maps.example.kr",)


# -------------------------------------------------------------------- dates


MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


@hypothesis_settings(max_examples=30, deadline=None)
@given(MOMENTS, st.sampled_from(["UTC", "Asia/Seoul", "America/Los_Angeles", "Asia/Kolkata"]))
def test_dates_are_written_in_the_site_offset_at_the_same_instant(
    moment: datetime, zone: str
) -> None:
    files = render([post(published=moment)], options(timezone=zone))
    offset = moment.astimezone(ZoneInfo(zone)).utcoffset()
    rss_date = parsedate_to_datetime(
        etree.fromstring(files["feed.xml"]).findtext("channel/item/pubDate") or ""
    )
    atom_date = datetime.fromisoformat(
        etree.fromstring(files["atom.xml"]).findtext(f"{ATOM}entry/{ATOM}published") or ""
    )
    json_date = datetime.fromisoformat(json.loads(files["feed.json"])["items"][0]["date_published"])
    for written in (rss_date, atom_date, json_date):
        assert written == moment and written.utcoffset() == offset
