"""Feed order: newest first by the front matter's date and time; posts of one moment (dated
by day alone) by ``content.order_by``'s value, then by slug. Read back with feedparser in
every format, and from real front matter."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.config import Settings, settings_from_mapping
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.feeds.plan import newest_first, plan_feeds
from feedsvc.feeds.render import render_feeds
from feedsvc.models import Post, PostMeta, Severity, meta_from_dict, meta_to_dict

KST = ZoneInfo("Asia/Seoul")
SITE = "https://paldyn.example.kr/"


def settings(order_by: str | None = None) -> Settings:
    content: dict[str, Any] = {"permalink": "/posts/{slug}/"}
    if order_by is not None:
        content["order_by"] = order_by
    return settings_from_mapping(
        {
            "site": {"title": "팔딘 기술 블로그", "url": SITE, "timezone": "Asia/Seoul"},
            "content": content,
        }
    )


def post(slug: str, front: str, s: Settings) -> Post:
    """A post as an Astro blog writes it: pubDate by day, archiveOrder within the day."""
    parsed = parse_source(
        f"src/content/posts/{slug}.md",
        f'---\ntitle: "{slug} 글"\n{front}\n---\n본문\n'.encode(),
        s.parse_options,
    )
    meta = to_meta(parsed, s.parse_options, first_seen=None)
    return Post(meta, f"<p>{slug}</p>", f"{slug} 요약")


def read_back(posts: list[Post], s: Settings) -> dict[str, list[str]]:
    """The entries' links in each format, as a reader gets them."""
    plan = plan_feeds([p.meta for p in posts], s.feed_options)
    files = render_feeds(plan, {p.meta.id: p for p in posts}, s.feed_options)
    links = {}
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse(files[name])
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        links[name] = [_slug(e.link) for e in parsed.entries]
    links["feed.json"] = [_slug(i["url"]) for i in json.loads(files["feed.json"])["items"]]
    return links


def _slug(url: str) -> str:
    return unquote(url.removeprefix(SITE + "posts/").strip("/"))


def same_in_every_format(links: dict[str, list[str]]) -> list[str]:
    assert links["feed.xml"] == links["atom.xml"] == links["feed.json"]
    return links["feed.xml"]


def test_same_day_posts_follow_archive_order_greater_first() -> None:
    s = settings("archiveOrder")
    posts = [
        post("dataset", 'pubDate: "2026-04-22"\narchiveOrder: 11', s),
        post("components", 'pubDate: "2026-04-22"\narchiveOrder: 2', s),
        post("intro", 'pubDate: "2026-04-22"\narchiveOrder: 1', s),
        post("no-order", 'pubDate: "2026-04-22"', s),
        post("text-number", 'pubDate: "2026-04-22"\narchiveOrder: "3"', s),  # a number
        post("evening", "pubDate: 2026-04-22 18:30", s),  # a time of day: after midnight
        post("next-day", 'pubDate: "2026-04-23"\narchiveOrder: 1', s),
    ]
    assert same_in_every_format(read_back(posts, s)) == [
        "next-day",
        "evening",
        "dataset",  # 11 > 3 > 2 > 1: numbers numerically, not as text
        "text-number",
        "components",
        "intro",
        "no-order",  # without a value: after those with one
    ]


def test_a_minus_puts_the_smaller_first_like_hugos_weight() -> None:
    s = settings("-weight")
    posts = [post(n, f'date: "2024-05-01"\nweight: {w}', s) for n, w in [("b", 10), ("c", 2)]]
    posts.append(post("a", 'date: "2024-05-01"', s))
    posts.append(post("d", 'date: "2024-05-01"\nweight: 2', s))
    assert same_in_every_format(read_back(posts, s)) == ["c", "d", "b", "a"]


def test_ties_fall_to_the_slug_korean_included() -> None:
    s = settings()
    names = ["해운대", "가야", "부산", "zeta", "alpha"]
    posts = [post(n, 'date: "2024-05-01"', s) for n in names]
    assert same_in_every_format(read_back(posts, s)) == sorted(names)


def test_without_order_by_the_key_is_not_read() -> None:
    s = settings()
    assert post("a", "date: 2024-05-01\narchiveOrder: 3", s).meta.order is None


def test_text_values_order_after_numbers_and_among_themselves() -> None:
    s = settings("archiveOrder")
    posts = [post(n, f'date: "2024-05-01"\narchiveOrder: {v}', s) for n, v in
             [("n1", "1"), ("ta", "가"), ("tb", "나"), ("n9", "9")]]  # fmt: skip
    assert same_in_every_format(read_back(posts, s)) == ["tb", "ta", "n9", "n1"]


@pytest.mark.parametrize("value", ["[1, 2]", "true", "{a: 1}", ".nan"])
def test_an_order_value_that_cannot_order_is_left_out_with_a_warning(value: str) -> None:
    s = settings("archiveOrder")
    parsed = parse_source(
        "p.md", f"---\ndate: 2024-05-01\narchiveOrder: {value}\n---\nx\n".encode(), s.parse_options
    )
    assert parsed.order is None
    [warning] = parsed.warnings
    assert warning.severity is Severity.WARNING and warning.line == 3
    assert "'archiveOrder'" in warning.reason and "content.order_by" in warning.reason


def test_the_order_value_is_kept_in_the_stored_metadata() -> None:
    s = settings("archiveOrder")
    for front, order in [("archiveOrder: 7", 7), ('archiveOrder: "가"', "가"), ("", None)]:
        meta = post("x", f"date: 2024-05-01\n{front}", s).meta
        assert meta.order == order
        assert meta_from_dict(meta_to_dict(meta)) == meta
    assert "order" not in meta_to_dict(meta)  # other posts' stored JSON is as before


def test_newest_first_is_stable_whatever_the_input_order() -> None:
    s = settings("archiveOrder")
    metas: list[PostMeta] = [
        post(n, f'date: "2024-05-01"\narchiveOrder: {i % 3}', s).meta
        for i, n in enumerate(["가", "나", "다", "라", "마", "바"])
    ]
    first = newest_first(metas, order_by="archiveOrder")
    assert newest_first(list(reversed(metas)), order_by="archiveOrder") == first
    assert [m.slug for m in first] == ["다", "바", "나", "마", "가", "라"]
    assert newest_first(metas)[0].published == datetime(2024, 5, 1, tzinfo=KST)


_SAMPLE = settings("archiveOrder")
_DAYS = ["2024-05-01", "2024-05-02", "2024-05-01 09:30", "2024-05-03"]


@st.composite
def _metas(draw: st.DrawFn) -> list[PostMeta]:
    """Posts sharing days, times, order values, slugs and even ids, in any input order."""
    count = draw(st.integers(0, 14))
    metas = []
    for i in range(count):
        day = draw(st.sampled_from(_DAYS))
        front = f'date: "{day}"'
        order = draw(st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["가", "나"])))
        if order is not None:
            front += f"\narchiveOrder: {json.dumps(order, ensure_ascii=False)}"
        slug = draw(st.sampled_from(["가", "나", "다"]))
        front += f"\nslug: {slug}\nid: {draw(st.sampled_from(['a', 'b', str(i)]))}"
        metas.append(post(f"{slug}-{i}", front, _SAMPLE).meta)
    return metas


@given(_metas(), st.sampled_from([None, "archiveOrder", "-archiveOrder"]))
def test_newest_first_is_the_one_order_the_keys_give(
    metas: list[PostMeta], order_by: str | None
) -> None:
    """Whatever ties the posts share: newest first, then the order key (each kind, numbers
    or text, in its own order; posts without one last), then slug, then id, the first of a
    repeated id kept."""
    greater_first = order_by is not None and not order_by.startswith("-")

    def key(meta: PostMeta) -> tuple[Any, ...]:
        order: tuple[Any, ...] = (9,)
        if order_by is not None and meta.order is not None:
            kind = 2 if isinstance(meta.order, str) else 1
            order = (kind, meta.order)
            if greater_first:  # reversed by hand: numbers and text each in their own kind
                order = (-kind, _Reversed(meta.order))
        return (-meta.published.timestamp(), order, meta.slug, meta.id)

    expected: dict[str, PostMeta] = {}
    for meta in sorted(metas, key=key):
        expected.setdefault(meta.id, meta)
    assert newest_first(metas, order_by=order_by) == list(expected.values())


class _Reversed:
    """A value that sorts the other way round."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]
