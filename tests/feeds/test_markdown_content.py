"""A Korean Markdown post with <T> in a heading and in prose, CJK bold, math and a
tilde range, from source file to RSS, Atom and JSON Feed, read back by feedparser: the
reader sees the text the author wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import feedparser
import pytest
from lxml import html as lxml_html

from feedsvc.config import settings_from_mapping
from feedsvc.content.markup import render_post
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.feeds.plan import plan_feeds
from feedsvc.feeds.render import render_feeds
from feedsvc.models import Post

SETTINGS = settings_from_mapping(
    {"site": {"title": "개발 블로그", "url": "https://dev.example.kr/", "timezone": "Asia/Seoul"}}
)
SOURCE = """\
---
title: "Promise<T>와 제네릭"
date: 2024-05-01 09:00:00 +0900
---
## Promise<T>의 T는

**제네릭(Generics)**을 쓰면 `Promise<T>`처럼 씁니다. Map<String, List<Integer>>도 됩니다.
Bash의 <<< Here String, <<EOF Here Document와 1~9 범위, 수식 $\\{a_1 * b_1\\}$.

```ts
const p: Promise<T> = **x**;
```
"""


def _post(body_format: str = "md") -> Post:
    source = (
        SOURCE
        if body_format == "md"
        else SOURCE.replace("## Promise<T>의 T는\n", "<h2>Promise<T>의 T는</h2>\n")
    )
    parsed = parse_source(
        f"2024-05-01-generics.{body_format}", source.encode(), SETTINGS.parse_options
    )
    meta = to_meta(parsed, SETTINGS.parse_options, first_seen=datetime(2024, 5, 1, tzinfo=UTC))
    return render_post(parsed, meta, SETTINGS.markup_options)


def _files(post: Post) -> dict[str, bytes]:
    plan = plan_feeds([post.meta], SETTINGS.feed_options)
    return render_feeds(plan, {post.meta.id: post}, SETTINGS.feed_options)


def _text(fragment: str) -> str:
    text: str = lxml_html.fragment_fromstring(fragment, create_parent="div").text_content()
    return text


@pytest.mark.parametrize("name", ["feed.xml", "atom.xml", "feed.json"])
def test_a_reader_sees_the_heading_and_prose_as_written(name: str) -> None:
    files = _files(_post())
    if name == "feed.json":
        content = json.loads(files[name])["items"][0]["content_html"]
    else:
        parsed = feedparser.parse(files[name])
        assert parsed.bozo == 0
        content = parsed.entries[0].content[0].value
    text = _text(content)
    assert "Promise<T>의 T는" in text
    assert "제네릭(Generics)을 쓰면 Promise<T>처럼" in text  # bold, its ** gone
    assert "Map<String, List<Integer>>도" in text
    assert "Bash의 <<< Here String, <<EOF Here Document와 1~9 범위" in text
    assert "$\\{a_1 * b_1\\}$" in text  # math as written, backslashes and all
    assert "const p: Promise<T> = **x**;" in text  # code untouched
    assert "<strong>제네릭(Generics)</strong>을" in content
    assert "<del>" not in content


def test_an_html_post_keeps_the_heading_too() -> None:
    content = json.loads(_files(_post("html"))["feed.json"])["items"][0]["content_html"]
    assert "<h2>Promise&lt;T&gt;의 T는</h2>" in content
