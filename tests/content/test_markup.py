"""feedsvc.content.markup: bodies → feed-ready HTML (sanitised, absolute URLs), Liquid
handling, summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.config import (
    IFRAME_HOSTS,
    LiquidOptions,
    MarkupOptions,
    ParseOptions,
    Settings,
    settings_from_mapping,
)
from feedsvc.content.liquid import check_body
from feedsvc.content.markup import make_excerpt, render_markdown, render_post
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.content.sanitise import sanitise_feed_html
from feedsvc.errors import ContentError
from feedsvc.models import Post, Problem
from tests.conftest import REPO

SEED = REPO / "content" / "000_efb257d3228fd9cc.txt"
SITE = "https://x.kr/blog/"
POST_URL = "https://x.kr/blog/2024/01/02/a/"
FIRST_SEEN = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)


def absolutize_urls(html: str, base_url: str, site_url: str) -> str:
    """What a render does to a body's HTML: sanitised for feeds, URLs made absolute."""
    return sanitise_feed_html(html, IFRAME_HOSTS, base_url=base_url, site_url=site_url)


def make_settings(url: str = SITE, **content: Any) -> Settings:
    raw: dict[str, Any] = {"site": {"url": url, "timezone": "Asia/Seoul"}}
    if content:
        raw["content"] = content
    return settings_from_mapping(raw)


SETTINGS = make_settings()
LIQUID = make_settings(liquid="on")


def render(
    text: str, path: str = "2024-01-02-a.md", settings: Settings = SETTINGS
) -> tuple[Post, list[Problem]]:
    parsed = parse_source(path, text.encode("utf-8"), settings.parse_options)
    meta = to_meta(parsed, settings.parse_options, first_seen=FIRST_SEEN)
    return render_post(parsed, meta, settings.markup_options), []


def html_of(body: str, path: str = "2024-01-02-a.md", settings: Settings = SETTINGS) -> str:
    return render(f"---\ntitle: 제목\n---\n{body}", path, settings)[0].html


# --- the seed post ---------------------------------------------------------------------


def test_seed_post_renders_with_absolute_images_and_its_excerpt_as_summary() -> None:
    parsed = parse_source(SEED.name, SEED.read_bytes(), SETTINGS.parse_options)
    meta = to_meta(parsed, SETTINGS.parse_options, first_seen=FIRST_SEEN)
    post = render_post(parsed, meta, SETTINGS.markup_options)
    assert '<img src="https://x.kr/blog/assets/img/news.png" alt="rentncar 속보">' in post.html
    # data-* attributes are the blog editor's, not the reader's: feeds do not carry them
    assert "<h2>클라우드 기반 디지털 트윈 통합플랫폼 구축</h2>" in post.html
    assert post.summary == meta.excerpt
    assert post.meta is meta


# --- Markdown and HTML bodies ----------------------------------------------------------


def test_markdown_renders_gfm_tables_strikethrough_autolinks_and_tasks() -> None:
    out = render_markdown(
        "| 항목 | 값 |\n|---|---|\n| 국비 | 47억 |\n\n~~취소~~ https://x.kr\n\n- [x] 완료\n"
    )
    assert "<table>" in out and "<td>47억</td>" in out
    assert "<del>취소</del>" in out
    assert '<a href="https://x.kr">https://x.kr</a>' in out
    assert 'type="checkbox"' in out and "checked" in out


def test_markdown_keeps_raw_html() -> None:
    assert '<div class="note">부산</div>' in render_markdown('<div class="note">부산</div>\n')


def test_an_html_body_is_kept_as_written() -> None:
    body = '<p class="x">부산 <b>해운대</b></p>\n<a href="https://x.kr/">x</a>'
    assert html_of(body, "a.html") == body


# --- URLs ------------------------------------------------------------------------------


def test_root_relative_urls_resolve_against_the_site_url() -> None:
    out = absolutize_urls('<img src="/assets/x.png">', POST_URL, SITE)
    assert out == '<img src="https://x.kr/blog/assets/x.png">'


def test_relative_urls_resolve_against_the_post_url() -> None:
    out = absolutize_urls(
        '<a href="../related/1.html">r</a><img src="img.png"><a href="#frag">f</a>', POST_URL, SITE
    )
    assert out == (
        '<a href="https://x.kr/blog/2024/01/02/related/1.html">r</a>'
        f'<img src="{POST_URL}img.png"><a href="{POST_URL}#frag">f</a>'
    )


def test_mailto_tel_data_and_absolute_urls_are_left_alone() -> None:
    html = (
        '<a href="mailto:a@b.kr">m</a><a href="tel:+8251">t</a>'
        '<img src="data:image/png;base64,AA=="><a href="http://o.example/x">o</a>'
    )
    assert absolutize_urls(html, POST_URL, SITE) == html


def test_html_without_relative_urls_keeps_its_text_and_structure() -> None:
    html = '<p>부산&nbsp;<img src="https://x.kr/a.png" /><br/>\n<!-- c --></p>'
    out = absolutize_urls(html, POST_URL, SITE)
    assert out == '<p>부산&nbsp;<img src="https://x.kr/a.png"><br>\n</p>'


def test_protocol_relative_urls_get_the_site_scheme() -> None:
    assert absolutize_urls(
        '<img src="//cdn.example/a.png"><script src="//cdn.example/a.js"></script>',
        POST_URL,
        "http://x.kr/",
    ) == ('<img src="http://cdn.example/a.png">')


def test_every_srcset_candidate_and_the_video_poster_are_resolved() -> None:
    out = absolutize_urls(
        '<img srcset="a.png 1x, /b.png 2x, data:image/png;base64,AA,BB 3x">'
        '<video poster="p.jpg" src="/v.mp4"></video>',
        POST_URL,
        SITE,
    )
    assert out == (
        f'<img srcset="{POST_URL}a.png 1x, https://x.kr/blog/b.png 2x, '
        'data:image/png;base64,AA,BB 3x">'
        f'<video poster="{POST_URL}p.jpg" src="https://x.kr/blog/v.mp4"></video>'
    )


def test_a_srcset_url_ending_in_a_comma_has_no_descriptor() -> None:
    out = absolutize_urls('<img srcset="a.png,, b.png 2x">', POST_URL, SITE)
    assert out == f'<img srcset="{POST_URL}a.png, {POST_URL}b.png 2x">'


def test_a_url_attribute_far_from_its_equals_sign_is_still_found() -> None:
    out = absolutize_urls("<a href" + " " * 40 + '="x">l</a>', POST_URL, SITE)
    assert out == f'<a href="{POST_URL}x">l</a>'


def test_rewritten_html_keeps_korean_as_characters_and_its_structure() -> None:
    html = '<h2 class="가">부산</h2>\n\n<p>해운대 &amp; <a href="x">광안리</a></p>\n'
    out = absolutize_urls(html, POST_URL, SITE)
    assert out == html.replace('href="x"', f'href="{POST_URL}x"')


def test_a_pasted_whole_page_keeps_what_follows_its_body() -> None:
    html = '<html><body><p><a href="a">1</a></p></body></html><p>뒤</p>'
    assert absolutize_urls(html, POST_URL, SITE) == f'<p><a href="{POST_URL}a">1</a></p><p>뒤</p>'


def test_markdown_links_and_images_are_made_absolute() -> None:
    out = html_of("[전](/2023/01/01/b/) ![사진](사진.png)\n")
    assert '<a href="https://x.kr/blog/2023/01/01/b/">전</a>' in out
    assert f'<img src="{POST_URL}%EC%82%AC%EC%A7%84.png" alt="사진">' in out  # cmark encodes


# --- XML safety ------------------------------------------------------------------------


def test_xml_illegal_characters_are_stripped_from_html_and_summary() -> None:
    source = '---\ntitle: t\n---\n<p>부\x01산 &#1; &#xFFFE; <a href="x\x02y">l</a></p>'
    post, _ = render(source, "2024-01-02-a.html")
    for text in (post.html, post.summary):
        assert not any(c in text for c in "\x01\x02\ufffe")
    assert f'<p>부산   <a href="{POST_URL}xy">l</a></p>' == post.html
    assert post.summary == "부산 l"


# --- summary ---------------------------------------------------------------------------


def test_summary_is_the_front_matter_excerpt_when_given() -> None:
    post, _ = render("---\ntitle: t\nexcerpt: 요약입니다\n---\n첫 문단\n")
    assert post.summary == "요약입니다"


def test_summary_is_the_text_before_the_separator() -> None:
    post, _ = render(
        "---\ntitle: t\n---\n첫 **문단**\n\n둘째 &amp; 문단\n\n<!--more-->\n\n나머지\n"
    )
    assert post.summary == "첫 문단 둘째 & 문단"


def test_the_separator_is_configurable() -> None:
    settings = make_settings(excerpt_separator="<!-- 더보기 -->")
    post, _ = render("---\ntitle: t\n---\n앞\n\n<!-- 더보기 -->\n\n뒤\n", settings=settings)
    assert post.summary == "앞"


def test_markup_options_are_the_settings_slice() -> None:
    settings = make_settings(excerpt_separator="<!-- 더보기 -->")
    assert settings.markup_options == MarkupOptions(SITE, "<!-- 더보기 -->")
    assert settings.markup_options is settings.markup_options  # made once


def test_renders_with_options_made_from_plain_values() -> None:
    # No Settings: the slices are plain values.
    parse = ParseOptions("https://y.kr/", "UTC", "/{year}/{slug}/", "utf-8", 100_000, "/nowhere")
    liquid = LiquidOptions(True, "https://y.kr/", {"url": "https://y.kr"})
    markup = MarkupOptions(site_url="https://y.kr/", excerpt_separator="<!--cut-->", liquid=liquid)
    text = "---\ntitle: t\n---\n앞 [{{ site.url }}](/a/) ![](b.png)\n\n<!--cut-->\n\n뒤\n"
    parsed = parse_source("2024-01-02-a.md", text.encode("utf-8"), parse)
    meta = to_meta(parsed, parse, first_seen=FIRST_SEEN)
    post = render_post(parsed, meta, markup)
    assert meta.url == "https://y.kr/2024/a/"
    assert '<a href="https://y.kr/a/">https://y.kr</a>' in post.html
    assert '<img src="https://y.kr/2024/a/b.png" alt="">' in post.html
    assert post.summary == "앞 https://y.kr"


def test_summary_is_the_first_paragraph_with_text() -> None:
    html = '<p><img src="/a.png"></p>\n<h2>소제목</h2>\n<p>첫  <b>문단</b>\n입니다</p><p>둘째</p>'
    assert make_excerpt(html, "<!--more-->") == "첫 문단 입니다"


def test_summary_falls_back_to_the_first_text_block() -> None:
    assert (
        make_excerpt("<div>\n</div><div>첫 블록</div><div>둘째</div>", "<!--more-->") == "첫 블록"
    )


def test_summary_is_cut_on_a_word_boundary_with_an_ellipsis() -> None:
    text = "부산 " * 200
    summary = make_excerpt(f"<p>{text}</p>", "", limit=20)
    assert summary == "부산 부산 부산 부산 부산 부산…" and len(summary) <= 20


def test_summary_that_fits_has_no_ellipsis() -> None:
    assert make_excerpt("<p>" + "가" * 300 + "</p>", "") == "가" * 300


def test_summary_without_spaces_is_cut_mid_run() -> None:
    summary = make_excerpt("<p>" + "가" * 301 + "</p>", "")
    assert summary == "가" * 299 + "…"


def test_long_front_matter_excerpt_is_shortened_too() -> None:
    post, _ = render("---\ntitle: t\nexcerpt: " + "해운대 " * 100 + "\n---\n")
    assert post.summary.endswith("…") and len(post.summary) <= 300


# --- fuzzing ---------------------------------------------------------------------------

_SPECIAL = st.sampled_from(
    ["<", ">", "&", "&amp;", "&#1;", '"', "'", "\n", "\r", "\t", "\x00", "\x01", "\x0b", "\x1f",
     "\ufffe", "\uffff", "\ud800", "\udfff", "부산", "해운대 ", "# ", "<p>", "</p>", "<img src=",
     "<a href='../x'>", "{{ site.url }}", "{% include x %}", "{% raw %}", "---", "+++", ": ",
     "<!--more-->", "```", "\u00a0", "🙂"]
)  # fmt: skip
_TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), _SPECIAL), max_size=40).map(
    "".join
)


def _assert_xml_clean(value: str) -> None:
    etree.fromstring(f"<x>{escape(value)}</x>")


@settings(max_examples=100, deadline=None)
@given(
    title=_TEXT,
    body=_TEXT,
    categories=st.lists(_TEXT, max_size=3),
    raw_front_matter=st.booleans(),
    extension=st.sampled_from(["md", "html", "txt"]),
)
def test_any_input_gives_xml_clean_output_or_a_content_error(
    title: str, body: str, categories: list[str], raw_front_matter: bool, extension: str
) -> None:
    if raw_front_matter:  # whatever the author typed, broken YAML included
        front = f"title: {title}\ncategories: [{', '.join(categories)}]\nexcerpt: {body[:20]}"
    else:
        front = yaml.safe_dump({"title": title, "categories": categories}, allow_unicode=True)
    text = f"---\n{front}\n---\n{body}\n"
    try:
        parsed = parse_source(
            f"2024-01-02-{title[:10]}.{extension}",
            text.encode("utf-8", "surrogatepass"),
            LIQUID.parse_options,
        )
    except ContentError:
        event("refused with ContentError")
        return
    event("rendered")
    meta = to_meta(parsed, LIQUID.parse_options, first_seen=FIRST_SEEN)
    post = render_post(parsed, meta, LIQUID.markup_options)
    problems = check_body(parsed, LIQUID.liquid_options).problems
    author = [meta.author.name, meta.author.email or ""] if meta.author else []
    image = [meta.image.url] if meta.image else []
    strings = [
        meta.id, meta.slug, meta.url, meta.title, meta.excerpt or "", meta.lang or "",
        *meta.categories, *meta.tags, *author, *image, post.html, post.summary,
        *(p.reason for p in problems),
    ]  # fmt: skip
    for value in strings:
        _assert_xml_clean(value)
    assert "\n" not in meta.title and "\r" not in meta.title


def test_a_control_character_in_a_relative_url_is_percent_encoded() -> None:
    """`&#1;` in an attribute decodes to U+0001, legal in neither a URL nor XML."""
    html = absolutize_urls('<img src="0&#1;x"><a href="a&#31;b">링크</a>', POST_URL, SITE)
    assert 'src="' + POST_URL + '0%01x"' in html
    assert "%1F" in html and "\x01" not in html and "\x1f" not in html
