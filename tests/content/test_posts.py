"""feedsvc.content.posts: source bytes → ParsedSource → PostMeta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from feedsvc.config import Settings, settings_from_mapping
from feedsvc.content.posts import ParsedSource, parse_source, strip_xml_illegal, to_meta
from feedsvc.content.urls import absolute_url, permalink_for, slugify
from feedsvc.errors import ContentError
from feedsvc.models import Author, Image
from tests.conftest import REPO

SEED = REPO / "content" / "000_efb257d3228fd9cc.txt"
SEOUL = ZoneInfo("Asia/Seoul")
KST = timezone(timedelta(hours=9))
FIRST_SEEN = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)


def make_settings(url: str = "https://x.kr/blog/", **content: Any) -> Settings:
    raw: dict[str, Any] = {"site": {"url": url, "timezone": "Asia/Seoul"}}
    if content:
        raw["content"] = content
    return settings_from_mapping(raw)


SETTINGS = make_settings()
OPTIONS = SETTINGS.parse_options


def parse(text: str, path: str = "posts/글.md", settings: Settings = SETTINGS) -> ParsedSource:
    return parse_source(path, text.encode("utf-8"), settings.parse_options)


def front(text: str, path: str = "posts/글.md") -> ParsedSource:
    """A post whose YAML front matter is ``text``."""
    return parse(f"---\n{text}\n---\n본문\n", path)


def error(text: str | bytes, path: str = "posts/글.md", **content: Any) -> ContentError:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(ContentError) as caught:
        parse_source(path, data, make_settings(**content).parse_options)
    assert caught.value.path == path
    return caught.value


# --- the seed post ---------------------------------------------------------------------


def test_seed_post_is_read_as_published_on_the_korean_site() -> None:
    parsed = parse_source(SEED.name, SEED.read_bytes(), OPTIONS)
    assert parsed.title == "부산시 디지털 트윈 시범구역 조성  최종 선정 밝혀"
    assert parsed.categories == ("News",)
    assert parsed.image == "/assets/img/newspaper.png"
    assert parsed.body_format == "html"
    assert parsed.excerpt is not None and parsed.excerpt.startswith("부산시가 디지털 트윈")
    assert parsed.date is None and parsed.date_source is None
    meta = to_meta(parsed, OPTIONS, first_seen=FIRST_SEEN)
    assert meta.image == Image("https://x.kr/blog/assets/img/newspaper.png", "image/png", None)
    assert meta.excerpt == parsed.excerpt


# --- front matter ----------------------------------------------------------------------


def test_yaml_front_matter_fields_are_read() -> None:
    parsed = front("title: 부산 여행\nlang: ko\nid: 42\nauthor: 김민수")
    assert (parsed.title, parsed.lang, parsed.id) == ("부산 여행", "ko", "42")
    assert parsed.author == Author("김민수")
    assert parsed.body == "본문\n" and parsed.body_line == 7


def test_toml_front_matter_is_read_with_tomllib() -> None:
    parsed = parse(
        '+++\ntitle = "해운대"\ndate = 2024-01-02T10:00:00+09:00\n'
        'categories = ["여행", "부산"]\n+++\n본문\n'
    )
    assert parsed.title == "해운대"
    assert parsed.date == datetime(2024, 1, 2, 10, tzinfo=KST)
    assert parsed.categories == ("여행", "부산")
    assert parsed.body_line == 6


def test_a_file_without_front_matter_is_a_post() -> None:
    parsed = parse("그냥 본문입니다.\n", "2024-03-04-메모.md")
    assert parsed.title == "메모"
    assert parsed.body == "그냥 본문입니다.\n" and parsed.body_line == 1


def test_utf8_bom_is_accepted() -> None:
    parsed = parse_source(
        "a.md", b"\xef\xbb\xbf---\ntitle: \xeb\xb6\x80\xec\x82\xb0\n---\nx", OPTIONS
    )
    assert parsed.title == "부산"


def test_configured_encoding_decodes_legacy_korean_files() -> None:
    data = "---\ntitle: 부산\n---\n본문".encode("euc-kr")
    parsed = parse_source("a.md", data, make_settings(encoding="euc-kr").parse_options)
    assert (parsed.title, parsed.body) == ("부산", "본문")


def test_utf8_bom_wins_over_a_configured_legacy_encoding() -> None:
    data = b"\xef\xbb\xbf" + "---\ntitle: 부산\n---\n".encode()
    assert (
        parse_source("a.md", data, make_settings(encoding="euc-kr").parse_options).title == "부산"
    )


def test_crlf_line_ends_are_read_like_lf() -> None:
    parsed = parse("---\r\ntitle: 부산\r\n---\r\n본문\r\n")
    assert (parsed.title, parsed.body, parsed.body_line) == ("부산", "본문\n", 4)


# --- title -----------------------------------------------------------------------------


def test_title_keeps_inner_spaces_but_turns_line_breaks_into_spaces() -> None:
    assert front('title: "부산  시\\r\\n선정\\n발표"').title == "부산  시 선정 발표"


def test_title_loses_xml_illegal_characters() -> None:
    assert front('title: "부\\x01산\\x0b\\uFFFE"').title == "부산"


def test_title_falls_back_to_the_first_markdown_heading() -> None:
    parsed = parse("소개 문단\n\n# 부산 **여행** [기록](/a) #\n\n## 둘째\n", "a.md")
    assert parsed.title == "부산 여행 기록"


def test_title_falls_back_to_a_setext_heading() -> None:
    assert parse("해운대 일기\n=====\n\n본문\n", "a.md").title == "해운대 일기"


def test_title_falls_back_to_the_html_h1_without_its_tags() -> None:
    assert (
        parse("<p>x</p><h1 class=t>부산 <em>&amp;</em> 울산</h1>", "a.html").title == "부산 & 울산"
    )


def test_a_hash_line_inside_a_code_fence_is_not_the_title() -> None:
    parsed = parse("```sh\n# 주석\n```\n\n# 진짜 제목\n", "a.md")
    assert parsed.title == "진짜 제목"


def test_title_falls_back_to_the_file_name_without_its_date() -> None:
    assert parse("본문\n", "2024/2024-01-02-부산-여행.md").title == "부산-여행"


def test_a_title_of_the_wrong_type_names_the_key_and_line() -> None:
    exc = error("---\nlang: ko\ntitle: [a, b]\n---\n")
    assert "'title'" in exc.reason and "list" in exc.reason and exc.line == 3


def test_a_yes_no_title_asks_for_quotes() -> None:
    exc = error("---\ntitle: yes\n---\n")
    assert "'title'" in exc.reason and "quote" in exc.reason and exc.line == 2


# --- slug and permalink ----------------------------------------------------------------


def test_slug_comes_from_the_file_name_without_the_date_prefix() -> None:
    assert parse("x", "2024/2024-01-02-부산 여행!.md").slug == "부산-여행"


def test_front_matter_slug_wins_and_is_slugified() -> None:
    assert front("slug: Busan 해운대 Trip").slug == "busan-해운대-trip"


@pytest.mark.parametrize("slug", ["../etc", "a/b", "a\\\\b"])
def test_an_unsafe_slug_is_refused(slug: str) -> None:
    exc = error(f'---\ntitle: t\nslug: "{slug}"\n---\n')
    assert "'slug'" in exc.reason and "unsafe" in exc.reason and exc.line == 3


def test_a_slug_empty_after_slugify_is_refused() -> None:
    exc = error('---\nslug: "!!!"\n---\n')
    assert "slug" in exc.reason and "letters or digits" in exc.reason


def test_a_file_name_with_no_letters_needs_a_slug() -> None:
    assert "add a 'slug:'" in error("본문", "!!!.md").reason


@pytest.mark.parametrize(
    "permalink",
    ["/a/../b/", "/a\\\\b/", "https://evil.example/x/", "//evil.example/x/", "a/b/", "/a b/"],
)
def test_an_unsafe_permalink_is_refused(permalink: str) -> None:
    exc = error(f'---\npermalink: "{permalink}"\n---\n')
    assert "'permalink'" in exc.reason and "start with '/'" in exc.reason and exc.line == 2


def test_a_safe_permalink_is_kept_raw() -> None:
    assert front("permalink: /소식/부산/").permalink == "/소식/부산/"


# --- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T10:00:00+09:00", datetime(2024, 1, 2, 10, tzinfo=KST)),  # YAML timestamp
        ("2016-01-01 18:59:00 +0900", datetime(2016, 1, 1, 18, 59, tzinfo=KST)),  # YAML string
        ("2024-01-02 01:00:00Z", datetime(2024, 1, 2, 1, tzinfo=UTC)),
        ("'2024-01-02T10:00:00+09:00'", datetime(2024, 1, 2, 10, tzinfo=KST)),
        (
            "'2024-01-02 10:00:00 -05:30'",
            datetime(2024, 1, 2, 10, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("Tue, 02 Jan 2024 10:00:00 +0900", datetime(2024, 1, 2, 10, tzinfo=KST)),
    ],
)
def test_a_date_with_a_zone_keeps_its_zone(value: str, expected: datetime) -> None:
    parsed = front(f"date: {value}")
    assert parsed.date == expected and parsed.date.utcoffset() == expected.utcoffset()
    assert parsed.date_source == "front_matter"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02 10:00", datetime(2024, 1, 2, 10, tzinfo=SEOUL)),
        ("2024-01-02 10:00:30", datetime(2024, 1, 2, 10, 0, 30, tzinfo=SEOUL)),  # YAML naive
        ("'2024-01-02T10:00:00'", datetime(2024, 1, 2, 10, tzinfo=SEOUL)),
    ],
)
def test_a_date_without_a_zone_is_in_the_site_time_zone(value: str, expected: datetime) -> None:
    parsed = front(f"date: {value}")
    assert parsed.date == expected and parsed.date.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024/1/2 10:00", datetime(2024, 1, 2, 10, tzinfo=SEOUL)),
        ("2024-1-2", datetime(2024, 1, 2, tzinfo=SEOUL)),
        ("2024-01-02 10:00:00 UTC", datetime(2024, 1, 2, 10, tzinfo=UTC)),
        (
            "2024-01-02 10:00:00.5 -0530",
            datetime(
                2024, 1, 2, 10, 0, 0, 500000, tzinfo=timezone(-timedelta(hours=5, minutes=30))
            ),
        ),
    ],
)
def test_loose_date_strings_are_read(value: str, expected: datetime) -> None:
    parsed = front(f"date: '{value}'")
    assert parsed.date == expected and parsed.date.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+09:00", "9999-12-31"])
def test_a_date_at_the_edge_of_time_is_refused(value: str) -> None:
    exc = error(f"---\ndate: '{value}'\n---\n")
    assert "'date'" in exc.reason and "out of range" in exc.reason and exc.line == 2


def test_a_toml_time_of_day_is_not_a_date() -> None:
    exc = error("+++\ntitle = 't'\ndate = 10:00:00\n+++\n")
    assert "'date'" in exc.reason and exc.line == 3


def test_an_impossible_date_in_the_file_name_is_part_of_the_name() -> None:
    parsed = parse("x", "2024-13-45-a.md")
    assert parsed.date is None and parsed.slug == "2024-13-45-a"


@pytest.mark.parametrize("value", ["2024-01-02", "'2024-01-02'"])
def test_a_date_only_value_is_midnight_in_the_site_time_zone(value: str) -> None:
    assert front(f"date: {value}").date == datetime(2024, 1, 2, tzinfo=SEOUL)


def test_toml_local_dates_are_in_the_site_time_zone() -> None:
    parsed = parse("+++\ndate = 2024-01-02\nlastmod = 2024-01-03T08:00:00\n+++\n")
    assert parsed.date == datetime(2024, 1, 2, tzinfo=SEOUL)
    assert parsed.updated == datetime(2024, 1, 3, 8, tzinfo=SEOUL)


@pytest.mark.parametrize("key", ["pubDate", "published", "created"])
def test_date_aliases_are_read(key: str) -> None:
    assert front(f"{key}: 2024-01-02").date == datetime(2024, 1, 2, tzinfo=SEOUL)


@pytest.mark.parametrize("key", ["updated", "lastmod", "modified"])
def test_updated_aliases_are_read(key: str) -> None:
    assert front(f"{key}: 2024-02-03").updated == datetime(2024, 2, 3, tzinfo=SEOUL)


def test_an_unparseable_date_names_the_key_its_line_and_the_formats() -> None:
    exc = error("---\ntitle: t\ndate: 어제 오후\n---\n")
    assert "'date'" in exc.reason and "2024-01-02" in exc.reason and exc.line == 3


def test_an_impossible_yaml_date_names_its_line() -> None:
    exc = error("---\ntitle: t\n\ndate: 2024-13-45\n---\n")
    assert "date" in exc.reason and exc.line == 4


def test_the_file_name_date_is_midnight_in_the_site_time_zone() -> None:
    parsed = parse("본문", "2024/2024-01-02-부산.md")
    assert parsed.date == datetime(2024, 1, 2, tzinfo=SEOUL)
    assert parsed.date_source == "file_name"


def test_the_file_name_date_prefix_is_preferred_to_a_later_date() -> None:
    assert parse("x", "2024-01-02-after-2023-05-06.md").date == datetime(2024, 1, 2, tzinfo=SEOUL)


def test_a_date_elsewhere_in_the_file_name_is_used() -> None:
    assert parse("x", "회의-2023-05-06.md").date == datetime(2023, 5, 6, tzinfo=SEOUL)


def test_front_matter_date_wins_over_the_file_name() -> None:
    assert front("date: 2020-01-01", "2024-01-02-a.md").date == datetime(2020, 1, 1, tzinfo=SEOUL)


def test_no_date_anywhere_leaves_it_to_the_caller() -> None:
    parsed = parse("x", "메모.md")
    assert parsed.date is None and parsed.date_source is None


# --- drafts, taxonomy, other fields ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "draft"),
    [
        ("draft: true", True),
        ("published: false", True),
        ("draft: false", False),
        ("title: t", False),
    ],
)
def test_draft_and_published_false_mark_a_draft(text: str, draft: bool) -> None:
    assert front(text).draft is draft


@pytest.mark.parametrize(("value", "draft"), [("'yes'", True), ("'False'", False)])
def test_draft_as_a_yes_no_string_is_understood(value: str, draft: bool) -> None:
    assert front(f"draft: {value}").draft is draft


def test_draft_of_the_wrong_type_is_refused() -> None:
    assert "'draft'" in error("---\ndraft: [1]\n---\n").reason


def test_published_as_a_date_is_a_date_not_a_draft_flag() -> None:
    parsed = front("published: 2024-01-02")
    assert parsed.draft is False and parsed.date == datetime(2024, 1, 2, tzinfo=SEOUL)


def test_categories_list_keeps_order_and_drops_duplicates() -> None:
    assert front("categories: [뉴스, Tech, 뉴스]").categories == ("뉴스", "Tech")


def test_a_category_string_is_split_on_commas_and_spaces() -> None:
    assert front("category: 뉴스, 부산 Tech").categories == ("뉴스", "부산", "Tech")


def test_tags_follow_the_same_rules() -> None:
    assert front("tags: 디지털트윈, AI AI").tags == ("디지털트윈", "AI")


def test_categories_of_the_wrong_type_name_the_key_and_line() -> None:
    exc = error("---\ntitle: t\ncategories: {a: 1}\n---\n")
    assert "'categories'" in exc.reason and "mapping" in exc.reason and exc.line == 3


def test_a_nested_list_in_tags_is_refused() -> None:
    assert "'tags'" in error("---\ntags: [[a, b]]\n---\n").reason


def test_author_mapping_gives_name_and_email() -> None:
    parsed = front("author:\n  name: 김민수\n  email: minsu@example.kr")
    assert parsed.author == Author("김민수", "minsu@example.kr")


def test_author_of_the_wrong_type_is_refused() -> None:
    assert "'author'" in error("---\nauthor: [a, b]\n---\n").reason


@pytest.mark.parametrize(
    "text",
    [
        "image: /i.png",
        "feature_image: /i.png",
        "cover: /i.png",
        "image:\n  path: /i.png",
        "cover:\n  url: /i.png",
    ],
)
def test_image_aliases_and_mappings_are_read(text: str) -> None:
    assert front(text).image == "/i.png"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("image: [a.png]", "'image'"),
        ("excerpt: [요약]", "'excerpt'"),
        ("author: {name: [a]}", "'author'"),
        ("lang: [ko]", "'lang'"),
    ],
)
def test_other_fields_of_the_wrong_type_name_their_key(text: str, key: str) -> None:
    assert key in error(f"---\n{text}\n---\n").reason


def test_an_author_mapping_with_only_an_email_uses_it_as_the_name() -> None:
    assert front("author: {email: a@b.kr}").author == Author("a@b.kr", "a@b.kr")


def test_a_single_number_category_is_a_category() -> None:
    assert front("categories: 2024").categories == ("2024",)


def test_an_image_mapping_without_a_path_is_refused() -> None:
    assert "'image'" in error("---\nimage:\n  alt: x\n---\n").reason


@pytest.mark.parametrize("key", ["excerpt", "description", "summary"])
def test_excerpt_aliases_become_plain_text(key: str) -> None:
    parsed = front(f'{key}: "<p>부산  <b>해운대</b>\\n&amp; 광안리</p>"')
    assert parsed.excerpt == "부산 해운대 & 광안리"


def test_a_front_matter_id_is_kept_as_text() -> None:
    assert front("id: 2024-01").id == "2024-01"


# --- body format -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("a.html", "그냥 글", "html"),
        ("a.htm", "그냥 글", "html"),
        ("a.md", "<p>x</p>", "markdown"),
        ("a.markdown", "<p>x</p>", "markdown"),
        ("a.txt", "  \n<p>본문</p>", "html"),
        ("a.txt", "<!-- 주석 -->본문", "html"),
        ("a.txt", "<figure><img src=x></figure>", "html"),
        ("a.txt", "# 제목\n본문", "markdown"),
        ("a.txt", "<span>x</span>", "markdown"),
        ("README", "<p>x</p>", "html"),
    ],
)
def test_body_format_follows_the_extension_then_the_content(
    path: str, body: str, expected: str
) -> None:
    assert parse(f"---\ntitle: t\n---\n{body}", path).body_format == expected


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"  \n\t\n", b"\xef\xbb\xbf\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    assert "empty" in error(data).reason


def test_binary_content_is_refused() -> None:
    exc = error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "binary" in exc.reason and "byte offset 8" in exc.reason


def test_undecodable_bytes_name_line_offset_and_the_encoding_setting() -> None:
    exc = error("---\ntitle: 부산\n---\n".encode() + "둘째 줄 깨짐".encode("euc-kr"))
    assert exc.line == 4 and "byte offset 22" in exc.reason and "content.encoding" in exc.reason


def test_a_file_over_max_bytes_is_refused() -> None:
    exc = error("x" * 101, max_bytes=100)
    assert "content.max_bytes" in exc.reason and "101" in exc.reason


def test_broken_yaml_names_the_line_in_the_file() -> None:
    exc = error("---\ntitle: t\ndate: 2024-01-02\nexcerpt: a: b\n---\nbody")
    assert "YAML" in exc.reason and "quote" in exc.reason and exc.line == 4


def test_broken_toml_names_the_line_in_the_file() -> None:
    exc = error('+++\ntitle = "t"\n\ndate = \n+++\n')
    assert "TOML" in exc.reason and exc.line == 4


def test_front_matter_that_is_never_closed_is_refused() -> None:
    exc = error("---\ntitle: t\n본문\n")
    assert "never closed" in exc.reason and exc.line == 1


def test_empty_front_matter_is_allowed() -> None:
    parsed = parse("---\n---\n본문\n", "2024-01-02-a.md")
    assert (parsed.title, parsed.body, parsed.body_line) == ("a", "본문\n", 3)


def test_a_yaml_tag_that_cannot_be_built_is_refused() -> None:
    assert "YAML" in error("---\ndate: !!timestamp '곧'\n---\n").reason


def test_front_matter_that_is_not_a_mapping_is_refused() -> None:
    exc = error("---\n- a\n- b\n---\n")
    assert "key" in exc.reason and "list" in exc.reason


def test_yaml_with_a_raw_control_character_is_refused_with_its_line() -> None:
    exc = error("---\ntitle: t\nlang: k\x01o\n---\n")
    assert "#x0001" in exc.reason and exc.line == 3


# --- helpers ---------------------------------------------------------------------------


def test_strip_xml_illegal_removes_controls_nonchars_and_surrogates() -> None:
    assert strip_xml_illegal("a\x00b\x08\x0b\x0c\x1f\ufffe\uffff\ud800\udfffc") == "abc"


def test_strip_xml_illegal_keeps_tab_newlines_and_korean() -> None:
    assert strip_xml_illegal("부\t산\r\n🙂") == "부\t산\r\n🙂"


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("부산 디지털 트윈!", "부산-디지털-트윈"),
        ("  Hello,  World__2024 ", "hello-world-2024"),
        ("--a--", "a"),
        ("Cafe\u0301 Ünïcode", "café-ünïcode"),  # NFC: decomposed accents compose
        ("हिन्दी भाषा", "हिन्दी-भाषा"),  # combining vowel signs stay in the word
        ("!!!", ""),
    ],
)
def test_slugify_keeps_letters_and_digits_of_any_script(text: str, slug: str) -> None:
    assert slugify(text) == slug


# --- to_meta ---------------------------------------------------------------------------


def test_published_is_the_file_date() -> None:
    meta = to_meta(front("date: 2024-01-02 10:00"), OPTIONS, first_seen=FIRST_SEEN)
    assert meta.published == datetime(2024, 1, 2, 10, tzinfo=SEOUL)
    assert meta.date_source == "front_matter"


def test_published_falls_back_to_first_seen() -> None:
    meta = to_meta(parse("x", "메모.md"), OPTIONS, first_seen=FIRST_SEEN)
    assert (meta.published, meta.date_source) == (FIRST_SEEN, "first_seen")


def test_no_date_and_no_first_seen_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="first_seen"):
        to_meta(parse("x", "메모.md"), OPTIONS, first_seen=None)


def test_a_naive_first_seen_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_meta(parse("x", "메모.md"), OPTIONS, first_seen=datetime(2024, 1, 1))


def test_updated_defaults_to_published_and_never_precedes_it() -> None:
    plain = to_meta(front("date: 2024-01-02"), OPTIONS, first_seen=None)
    assert plain.updated == plain.published
    earlier = to_meta(front("date: 2024-01-02\nupdated: 2023-01-01"), OPTIONS, first_seen=None)
    assert earlier.updated == earlier.published


def test_later_updated_is_kept() -> None:
    meta = to_meta(front("date: 2024-01-02\nlastmod: 2024-03-01"), OPTIONS, first_seen=None)
    assert meta.updated == datetime(2024, 3, 1, tzinfo=SEOUL)


def test_default_permalink_uses_the_site_time_zone_date() -> None:
    # 2024-01-01 20:00 UTC is already 2024-01-02 in Seoul.
    meta = to_meta(front("date: 2024-01-01T20:00:00Z", "a-b.md"), OPTIONS, first_seen=None)
    assert meta.url == "https://x.kr/blog/2024/01/02/a-b/"


def test_permalink_pattern_fills_time_category_and_title() -> None:
    settings = make_settings(
        permalink="/{category}/{year}{month}{day}-{hour}{minute}/{title}/{slug}/"
    )
    parsed = front("title: 부산 여행!\ncategories: [Tech News]\ndate: 2024-01-02 03:04", "p.md")
    meta = to_meta(parsed, settings.parse_options, first_seen=None)
    assert meta.url == (
        "https://x.kr/blog/tech-news/20240102-0304/%EB%B6%80%EC%82%B0-%EC%97%AC%ED%96%89/p/"
    )


def test_permalink_category_falls_back_to_uncategorized() -> None:
    local = permalink_for(
        "/{category}/{slug}/",
        published=FIRST_SEEN,
        slug="a",
        title="t",
        categories=(),
        tz=SEOUL,
    )
    assert local == "/uncategorized/a/"


def test_url_percent_encodes_korean_and_keeps_existing_escapes() -> None:
    meta = to_meta(front("permalink: /소식/a%20b/"), OPTIONS, first_seen=FIRST_SEEN)
    assert meta.url == "https://x.kr/blog/%EC%86%8C%EC%8B%9D/a%20b/"


def test_url_at_the_site_root_has_no_double_slash() -> None:
    settings = make_settings("https://x.kr")
    meta = to_meta(front("date: 2024-01-02", "a.md"), settings.parse_options, first_seen=None)
    assert meta.url == "https://x.kr/2024/01/02/a/"


def test_id_is_the_url_unless_the_front_matter_sets_one() -> None:
    assert to_meta(front("title: t"), OPTIONS, first_seen=FIRST_SEEN).id_is_url
    assert to_meta(front("id: post-7"), OPTIONS, first_seen=FIRST_SEEN).id == "post-7"


def test_image_is_absolute_with_type_and_the_size_of_its_absolute_url() -> None:
    asked: list[str] = []

    def size(url: str) -> int:
        asked.append(url)
        return 1234

    meta = to_meta(
        front("image: 표지.jpg\ndate: 2024-01-02", "a.md"),
        OPTIONS,
        first_seen=None,
        asset_size=size,
    )
    url = "https://x.kr/blog/2024/01/02/a/%ED%91%9C%EC%A7%80.jpg"
    assert meta.image == Image(url, "image/jpeg", 1234) and asked == [url]


def test_author_excerpt_taxonomy_and_draft_pass_through() -> None:
    parsed = front(
        "author: 김민수\nexcerpt: 요약\ncategories: [a]\ntags: [b]\ndraft: true\nlang: ko"
    )
    meta = to_meta(parsed, OPTIONS, first_seen=FIRST_SEEN)
    assert (meta.author, meta.excerpt, meta.categories, meta.tags, meta.draft, meta.lang) == (
        Author("김민수"),
        "요약",
        ("a",),
        ("b",),
        True,
        "ko",
    )


# --- absolute_url ----------------------------------------------------------------------

POST = "https://x.kr/blog/2024/01/02/a/"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("/assets/x.png", "https://x.kr/blog/assets/x.png"),
        ("/blog/assets/x.png", "https://x.kr/blog/assets/x.png"),  # {{ site.baseurl }}/assets
        ("../related/1.html", "https://x.kr/blog/2024/01/02/related/1.html"),
        ("img.png", POST + "img.png"),
        ("#frag", POST + "#frag"),
        ("//cdn.example/x.js", "https://cdn.example/x.js"),
        ("http://other.example/x", "http://other.example/x"),
        ("mailto:a@b.kr", "mailto:a@b.kr"),
        ("tel:+82-51-000", "tel:+82-51-000"),
        ("data:image/png;base64,AA==", "data:image/png;base64,AA=="),
    ],
)
def test_absolute_url_resolves_like_a_browser_with_the_site_root(ref: str, expected: str) -> None:
    assert absolute_url(ref, POST, "https://x.kr/blog/") == expected


# --- YAML alias bombs and bounded messages ----------------------------------------------


def laughs(levels: int) -> str:
    """Front matter of ``levels`` nine-fold alias levels ("billion laughs"), ~1 KB."""
    lines = ['웃음0: &a0 ["하하", "하하", "하하", "하하", "하하", "하하", "하하", "하하", "하하"]']
    for i in range(1, levels + 1):
        lines.append(f"웃음{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"title: *a{levels}")
    return "---\n" + "\n".join(lines) + "\n---\n본문\n"


def test_aliases_expanding_past_the_bound_are_refused_naming_key_and_line() -> None:
    exc = error(laughs(5))  # ~530,000 values expanded: small enough to fail safely
    assert exc.line == 6  # 웃음4: the first key whose value expands past 10,000
    assert "'웃음4' expands through YAML aliases" in exc.reason and "drop the aliases" in exc.reason


def test_small_aliases_are_still_read() -> None:
    parsed = front("기본: &tags [부산, 여행]\ntags: *tags\ntitle: 해운대")
    assert parsed.tags == ("부산", "여행") and parsed.title == "해운대"


def test_an_alias_to_itself_is_refused() -> None:
    exc = error("---\ntitle: 제목\n고리: &a [1, *a]\n---\n")
    assert "'고리' refers to itself" in exc.reason and exc.line == 3


def test_a_huge_wrong_value_is_quoted_in_a_bounded_message() -> None:
    items = ", ".join(f'"{i}"' for i in range(50_000))
    exc = error(f'---\ndate: [[{items}]]\npermalink: "/{"긴" * 100_000}"\n---\n')
    assert len(str(exc)) < 300 and "'date'" in exc.reason
    slug = error(f'---\nslug: "../{"가" * 100_000}"\n---\n')
    assert len(str(slug)) < 300


@pytest.mark.slow
def test_ten_alias_levels_fail_fast_within_a_memory_cap(tmp_path: Path) -> None:
    """One level more than the 5.5 GB build: a clear problem, exit 1, under 1 GB and 60 s."""
    import resource
    import subprocess
    import sys

    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2024-05-01-폭탄.md").write_text(laughs(10), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        'site: {title: "부산", url: "https://news.example.kr/", language: ko}\n'
        f'storage: {{url: "sqlite:///{tmp_path / "state.db"}"}}\n',
        encoding="utf-8",
    )

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "--config", str(tmp_path / "config.yaml"), "build"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "2024-05-01-폭탄.md:6: error: '웃음4' expands through YAML aliases" in done.stderr
    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr
