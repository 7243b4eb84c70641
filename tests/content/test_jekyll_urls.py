"""Jekyll's slugs, permalink placeholders and styles, and entry ids (content.urls, posts).

Expected values are written from Jekyll's rules (lib/jekyll/utils.rb ``slugify``,
drops/url_drop.rb, url.rb ``sanitize_url``/``escape_path``, configuration.rb's styles,
document.rb ``id``), not from running this code.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.config import PERMALINK_STYLES, settings_from_mapping
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.content.urls import jekyll_feed_id, jekyll_slugify, permalink_for, slugify, tag_uri
from feedsvc.errors import ConfigError
from feedsvc.models import PostMeta

LA = ZoneInfo("America/Los_Angeles")
SEOUL = ZoneInfo("Asia/Seoul")


# --- slugs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title", "slug"),
    [
        # text, Jekyll's :title (pretty, cased), Jekyll's :slug (default mode)
        (
            "sass-converter-3.0-released",
            "sass-converter-3.0-released",
            "sass-converter-3-0-released",
        ),
        ("Hello-World", "Hello-World", "hello-world"),
        ("부산 여행기", "부산-여행기", "부산-여행기"),
        ("C++ & Rust: a tour!", "C++-&-Rust-a-tour!", "c-rust-a-tour"),
        ("what's_new (2023)", "what's_new-(2023)", "what-s-new-2023"),  # '_' is unreserved
        ("--leading--", "leading", "leading"),
        ("日本語のタイトル", "日本語のタイトル", "日本語のタイトル"),
        ("Cafe\u0301 Ünïcode", "Café-Ünïcode", "café-ünïcode"),  # NFC first
        ("हिन्दी भाषा", "हिन्दी-भाषा", "हिन्दी-भाषा"),  # marks (\p{M}) stay
        ("x² ½", "x", "x"),  # only decimal digits (\p{Nd}) are digits to Jekyll
        ("me@host.kr", "me@host.kr", "me-host-kr"),
        ("Ünïcode_Ä.Ö", "Ünïcode_Ä.Ö", "ünïcode-ä-ö"),
        ("Promise<T>의 의미", "Promise-T-의-의미", "promise-t-의-의미"),
    ],
)
def test_jekyll_slugify_pretty_and_default(text: str, title: str, slug: str) -> None:
    assert jekyll_slugify(text, pretty=True, cased=True) == title
    assert jekyll_slugify(text) == slug


@given(st.text(max_size=30))
def test_jekyll_slugs_never_start_or_end_with_a_hyphen_run(text: str) -> None:
    for pretty in (False, True):
        slug = jekyll_slugify(text, pretty=pretty)
        assert not slug.startswith("--") and not slug.endswith("--") and "--" not in slug
        assert slug == slug.lower()


def test_feedsvc_slugify_is_unchanged_for_dots() -> None:
    """{slug} keeps feedsvc's rules on every site: no existing URL moves."""
    assert slugify("sass-converter-3.0-released") == "sass-converter-3-0-released"


# --- permalinks ----------------------------------------------------------------------------

RELEASE = datetime(2022, 12, 21, 10, 30, tzinfo=LA)  # a Wednesday, ISO week 51, day 355


def fill(
    pattern: str,
    *,
    published: datetime = RELEASE,
    categories: tuple[str, ...] = ("release",),
    slug: str = "sass-converter-3-0-released",
    path: str = "_posts/2022-12-21-sass-converter-3.0-released.markdown",
    own_slug: bool = False,
) -> str:
    return permalink_for(
        PERMALINK_STYLES.get(pattern, pattern),
        published=published,
        slug=slug,
        title="Sass converter 3.0 released",
        categories=categories,
        tz=LA,
        path=path,
        own_slug=own_slug,
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("date", "/release/2022/12/21/sass-converter-3.0-released.html"),
        ("pretty", "/release/2022/12/21/sass-converter-3.0-released/"),
        ("ordinal", "/release/2022/355/sass-converter-3.0-released.html"),
        ("weekdate", "/release/2022/W51/Wed/sass-converter-3.0-released.html"),
        ("none", "/release/sass-converter-3.0-released.html"),
        # jekyllrb.com's own posts collection
        ("/news/:year/:month/:day/:title/", "/news/2022/12/21/sass-converter-3.0-released/"),
        ("/:year/:slug:output_ext", "/2022/sass-converter-3-0-released.html"),
        ("/:collection/:name/", "/posts/2022-12-21-sass-converter-3-0-released/"),
        ("/{year}/{month}/{day}/{slug}/", "/2022/12/21/sass-converter-3-0-released/"),  # ours
        ("/{category}/:title/", "/release/sass-converter-3.0-released/"),  # mixed
        ("/:month_:day/:title/", "/12_21/sass-converter-3.0-released/"),  # :month then _
    ],
)
def test_jekyll_styles_and_placeholders(pattern: str, expected: str) -> None:
    assert fill(pattern) == expected


def test_every_date_placeholder_as_ruby_strftime_writes_it() -> None:
    moment = datetime(2024, 3, 5, 7, 8, 9, tzinfo=LA)  # a Tuesday
    pattern = (
        "/:year/:short_year/:month/:i_month/:short_month/:long_month/:day/:i_day/:y_day"
        "/:hour/:minute/:second/:short_day/:long_day/:w_day/:title/"
    )
    assert fill(pattern, published=moment) == (
        "/2024/24/03/3/Mar/March/05/5/065/07/08/09/Tue/Tuesday/2/sass-converter-3.0-released/"
    )


def test_the_iso_week_year_differs_from_the_year_at_new_year() -> None:
    moment = datetime(2021, 1, 1, tzinfo=LA)  # a Friday in week 53 of 2020
    assert fill("/:year/:w_year/W:week/:w_day/:title/", published=moment) == (
        "/2021/2020/W53/5/sass-converter-3.0-released/"
    )


def test_dates_are_in_the_site_zone() -> None:
    moment = datetime(2022, 12, 22, 1, 0, tzinfo=timezone(timedelta(hours=9)))  # Dec 21 in LA
    assert fill("date", published=moment).startswith("/release/2022/12/21/")


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        ((), "/2021/09/14/Hello-World.html"),  # no categories: no segment, no '//'
        (("Team", "community", "team"), "/team/community/2021/09/14/Hello-World.html"),
        (("Work 2 Progress",), "/work%202%20progress/2021/09/14/Hello-World.html"),
        (("C#",), "/c%23/2021/09/14/Hello-World.html"),  # not a fragment
        (("../../etc",), "/etc/2021/09/14/Hello-World.html"),  # Jekyll's sanitize_url
        (("여행",), "/%EC%97%AC%ED%96%89/2021/09/14/Hello-World.html"),
    ],
)
def test_categories_are_all_of_them_downcased_as_jekyll_joins_them(
    categories: tuple[str, ...], expected: str
) -> None:
    got = fill(
        "date",
        published=datetime(2021, 9, 14, 12, tzinfo=LA),
        categories=categories,
        path="2021-09-14-Hello-World.md",
        slug="hello-world",
    )
    assert got == expected


def test_slugified_categories() -> None:
    got = fill("/:slugified_categories/:title/", categories=("Work 2 Progress", "부산 여행"))
    assert (
        got == "/work-2-progress/%EB%B6%80%EC%82%B0-%EC%97%AC%ED%96%89/sass-converter-3.0-released/"
    )


def test_a_front_matter_slug_keeps_feedsvc_rules_in_jekyll_placeholders() -> None:
    """The front matter set slug:, which stands for :title and :slug."""
    assert fill("/:title/:slug/", own_slug=True, slug="custom-3-0") == "/custom-3-0/custom-3-0/"


@given(st.lists(st.text(max_size=8), max_size=4))
def test_a_jekyll_pattern_never_gives_a_double_slash_or_dot_dot(categories: list[str]) -> None:
    path = fill("date", categories=tuple(categories))
    assert path.startswith("/") and "//" not in path and ".." not in path


# --- config: content.permalink and content.order_by ---------------------------------------


def settings(**content: Any) -> Any:
    return settings_from_mapping({"content": content})


@pytest.mark.parametrize("style", list(PERMALINK_STYLES))
def test_a_jekyll_style_name_becomes_its_pattern(style: str) -> None:
    assert settings(permalink=style).content.permalink == PERMALINK_STYLES[style]


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ("/:categories/:year/:nope/:title/", ":nope"),
        ("/:path/", ":path"),  # Jekyll's, but a collection document's: not read here
        ("/{year}/{nope}/{slug}/", "{nope}"),
    ],
)
def test_an_unknown_placeholder_is_named_with_the_key(pattern: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(permalink=pattern)
    message = str(caught.value)
    assert "content.permalink" in message and f"unknown placeholder {named}" in message
    assert ":title" in message and "pretty" in message  # what is allowed


@pytest.mark.parametrize("pattern", ["/:year/:month/", ":year/:title", "/{year}/"])
def test_a_pattern_must_start_with_a_slash_and_name_the_post(pattern: str) -> None:
    with pytest.raises(ConfigError, match=r"content\.permalink"):
        settings(permalink=pattern)


@pytest.mark.parametrize("value", ["archiveOrder", "weight", "-weight", "순서"])
def test_order_by_takes_a_front_matter_key(value: str) -> None:
    assert settings(order_by=value).content.order_by == value


@pytest.mark.parametrize("value", ["", "two words", "--x", "-", "a:b"])
def test_order_by_refuses_what_is_no_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"content\.order_by"):
        settings(order_by=value)


def test_id_style_refuses_other_values() -> None:
    with pytest.raises(ConfigError, match=r"feeds\.id_style"):
        settings_from_mapping({"feeds": {"id_style": "guid"}})


# --- through a post: URLs and ids -----------------------------------------------------------


def meta(
    path: str,
    front: str,
    *,
    permalink: str = "date",
    id_style: str = "permalink",
    first_seen: datetime | None = None,
    url: str = "https://jekyllrb.com/",
) -> PostMeta:
    options = settings_from_mapping(
        {
            "site": {"url": url, "timezone": "America/Los_Angeles"},
            "content": {"permalink": permalink},
            "feeds": {"id_style": id_style},
        }
    ).parse_options
    parsed = parse_source(path, f"---\n{front}\n---\n본문\n".encode(), options)
    return to_meta(parsed, options, first_seen=first_seen)


def test_the_sass_release_links_as_jekyll_links_it() -> None:
    got = meta(
        "_posts/2022-12-21-sass-converter-3.0-released.markdown",
        "title: Sass converter 3.0 released\ndate: 2022-12-21 10:30:00 -0800\n"
        "categories: [release]",
    )
    assert got.url == "https://jekyllrb.com/release/2022/12/21/sass-converter-3.0-released.html"
    assert got.slug == "sass-converter-3-0-released"  # feedsvc's slug is unchanged
    assert got.id == got.url


def test_a_korean_file_name_links_as_jekyll_links_it() -> None:
    got = meta("_posts/2024-03-01-부산 여행기.md", "categories: 여행 부산", permalink="pretty")
    assert got.url == (
        "https://jekyllrb.com/%EC%97%AC%ED%96%89/%EB%B6%80%EC%82%B0/2024/03/01/"
        "%EB%B6%80%EC%82%B0-%EC%97%AC%ED%96%89%EA%B8%B0/"
    )


def test_a_post_permalink_with_placeholders_is_filled() -> None:
    got = meta("_posts/2024-03-01-x.1.md", "permalink: /notes/:year/:title/", permalink="date")
    assert got.url == "https://jekyllrb.com/notes/2024/x.1/"


def test_a_literal_post_permalink_with_a_colon_is_kept() -> None:
    got = meta("_posts/2024-03-01-x.md", "permalink: /notes/ratio:three/")
    assert got.url == "https://jekyllrb.com/notes/ratio:three/"


@pytest.mark.parametrize(
    ("path", "front", "permalink", "expected"),
    [
        (  # date style: the URL without .html
            "_posts/2022-12-21-sass-converter-3.0-released.markdown",
            "categories: [release]",
            "date",
            "https://jekyllrb.com/release/2022/12/21/sass-converter-3.0-released",
        ),
        (  # pretty: the folder of the URL and the slug
            "_posts/2021-09-14-Hello-World.md",
            "categories: [Team, Community]",
            "pretty",
            "https://jekyllrb.com/team/community/2021/09/14/Hello-World",
        ),
        (  # the slug as written, not as slugified
            "_posts/2024-03-01-부산 여행기.md",
            "",
            "/:year/:title:output_ext",
            "https://jekyllrb.com/2024/%EB%B6%80%EC%82%B0%20%EC%97%AC%ED%96%89%EA%B8%B0",
        ),
        (  # the front matter's slug, as written
            "_posts/2024-03-01-x.md",
            "slug: Release 3.0",
            "date",
            "https://jekyllrb.com/2024/03/01/Release%203.0",
        ),
        (  # at the site's root
            "_posts/2024-03-01-about.md",
            "",
            "/:title:output_ext",
            "https://jekyllrb.com/about",
        ),
    ],
)
def test_jekyll_feed_ids(path: str, front: str, permalink: str, expected: str) -> None:
    got = meta(path, front, permalink=permalink, id_style="jekyll-feed")
    assert got.id == expected and not got.id_is_url


def test_a_front_matter_id_wins_over_every_style() -> None:
    for style in ("permalink", "jekyll-feed", "tag"):
        first = datetime(2024, 1, 1, tzinfo=SEOUL)
        got = meta("_posts/2024-03-01-x.md", "id: urn:uuid:1", id_style=style, first_seen=first)
        assert got.id == "urn:uuid:1"


def test_a_tag_id_is_dated_by_the_first_sighting_in_the_site_zone() -> None:
    first_seen = datetime(2024, 6, 1, 5, 0, tzinfo=ZoneInfo("UTC"))  # 2024-05-31 in LA
    got = meta(
        "_posts/2024-03-01-부산.md",
        "",
        id_style="tag",
        first_seen=first_seen,
        url="https://News.Example.kr:8443/blog/",
    )
    assert got.id == "tag:news.example.kr,2024-05-31:/blog/2024/03/01/%EB%B6%80%EC%82%B0.html"


def test_a_tag_id_needs_the_first_sighting() -> None:
    with pytest.raises(ValueError, match="first_seen"):
        meta("_posts/2024-03-01-x.md", "", id_style="tag")


def test_id_helpers() -> None:
    assert jekyll_feed_id("/2021/09/14/title.html", "title") == "/2021/09/14/title"
    assert jekyll_feed_id("/2021/09/14/title/", "title") == "/2021/09/14/title"
    assert jekyll_feed_id("/title.html", "title") == "/title"
    assert (
        tag_uri("https://x.kr/a/", "https://x.kr/", date(2024, 1, 2)) == "tag:x.kr,2024-01-02:/a/"
    )
    korean = tag_uri("https://부산.kr/a/", "https://부산.kr/", date(2024, 1, 2))
    assert korean == "tag:" + "부산.kr".encode("idna").decode() + ",2024-01-02:/a/"
    assert korean.isascii()
