"""Random posts all the way to feed bytes: every feed stays valid whatever the authors wrote.

Hypothesis writes small corpora (Korean, markup, entities, control characters, lone
surrogates, broken front matter); each file is parsed, rendered and put in the site,
category and tag feeds. Every RSS and Atom file must parse with feedparser with
``bozo == 0`` and as well-formed XML; every JSON Feed must validate against the 1.1
schema. Pure: no files, no store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import feedparser
import jsonschema
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.config import settings_from_mapping
from feedsvc.content.markup import render_post
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.errors import ContentError
from feedsvc.feeds.plan import plan_feeds
from feedsvc.feeds.render import render_feeds
from feedsvc.models import Post
from tests.conftest import TESTS_DIR
from tests.content.test_markup import _TEXT

SCHEMA = json.loads((TESTS_DIR / "jsonfeed-1.1.schema.json").read_text("utf-8"))
SITE = {
    "site": {"title": "부산 <소식> & 뉴스", "url": "https://news.example.kr/", "language": "ko",
             "timezone": "Asia/Seoul", "author": {"name": "편집팀 \x01", "email": "e@example.kr"}},
    "feeds": {"per_tag": True, "limit": 5},
}  # fmt: skip
FIRST_SEEN = datetime(2024, 3, 1, tzinfo=UTC)

Entry = tuple[str, str, list[str], list[str], bool, str]
POSTS = st.lists(
    st.tuples(
        _TEXT,  # title
        _TEXT,  # body
        st.lists(_TEXT, max_size=2),  # categories
        st.lists(_TEXT, max_size=2),  # tags
        st.booleans(),  # raw (possibly broken) front matter, or dumped YAML
        st.sampled_from(["md", "html", "txt"]),
    ),
    min_size=1,
    max_size=6,
)


def _source(index: int, post: Entry) -> bytes:
    title, body, categories, tags, raw, _ = post
    if raw:
        front = f"title: {title}\ncategories: [{', '.join(categories)}]\ntags: {tags}"
    else:
        front = yaml.safe_dump(
            {"title": title, "categories": categories, "tags": tags, "image": f"img/{index}.png"},
            allow_unicode=True,
        )
    return f"---\n{front}\n---\n{body}\n".encode("utf-8", "surrogatepass")


@settings(max_examples=60, deadline=None)
@given(POSTS)
def test_feeds_from_random_posts_are_valid(corpus: list[Entry]) -> None:
    site = settings_from_mapping(SITE)
    posts: dict[str, Post] = {}
    for index, entry in enumerate(corpus):
        path = f"2024-02-{index + 1:02d}-글-{index}.{entry[5]}"
        try:
            parsed = parse_source(path, _source(index, entry), site.parse_options)
            meta = to_meta(parsed, site.parse_options, first_seen=FIRST_SEEN)
        except ContentError:
            continue
        if meta.id in posts or meta.draft:
            continue
        post = render_post(parsed, meta, site.markup_options)
        posts[meta.id] = post
    plan = plan_feeds([p.meta for p in posts.values()], site.feed_options)
    files = render_feeds(plan, posts, site.feed_options)
    assert "feed.xml" in files and "atom.xml" in files and "feed.json" in files
    for name, data in files.items():
        folder = name.rpartition("/")[0]
        spec = next(s for s in plan if s.path.rstrip("/") == folder)
        if name.endswith(".json"):
            document = json.loads(data)
            jsonschema.validate(document, SCHEMA)
            assert len(document["items"]) == len(spec.post_ids)
            continue
        etree.fromstring(data)  # well-formed
        parsed_feed = feedparser.parse(data)
        assert parsed_feed.bozo == 0, (name, parsed_feed.get("bozo_exception"))
        assert len(parsed_feed.entries) == len(spec.post_ids)
