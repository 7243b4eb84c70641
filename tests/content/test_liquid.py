"""feedsvc.content.liquid: Jekyll's Liquid resolved or removed, never shown, never in code."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.config import IFRAME_HOSTS, LiquidOptions, Settings, settings_from_mapping
from feedsvc.content.links import LinkRef, link_table, unknown_links
from feedsvc.content.liquid import check_body, expand, has_liquid
from feedsvc.content.markdown_code import code_regions
from feedsvc.content.markup import render_markdown, render_post
from feedsvc.content.posts import parse_source, to_meta
from feedsvc.content.sanitise import sanitise_feed_html
from feedsvc.models import Problem, Severity

SITE = "https://x.kr/blog/"
FIRST_SEEN = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
PREVIOUS = "https://x.kr/blog/2013/05/06/before/"
NEWS = "https://x.kr/blog/2019/03/01/news/"
LINKS = link_table(
    [("_posts/2013-05-06-이전-글.md", PREVIOUS), ("_posts/공지/2019-03-01-소식.md", NEWS)], ""
)


def make_settings(liquid: str = "on", **site: Any) -> Settings:
    raw = {
        "site": {"url": SITE, "title": "내 블로그", "vars": {"repository": "me/블로그"}, **site},
        "content": {"liquid": liquid},
    }
    return settings_from_mapping(raw)


ON = make_settings()
OFF = make_settings("off")


def render(body: str, settings: Settings = ON, path: str = "_posts/2024-01-02-글.md") -> str:
    text = f"---\ntitle: 새해 계획\n요약: 짧은 글\n---\n{body}"
    parsed = parse_source(path, text.encode(), settings.parse_options)
    meta = to_meta(parsed, settings.parse_options, first_seen=FIRST_SEEN)
    return render_post(parsed, meta, settings.markup_options, LINKS).html


def warnings(body: str, settings: Settings = ON) -> list[tuple[int | None, str]]:
    """What the build reports for ``body``: read-time problems, then unknown links."""
    text = f"---\ntitle: 새해 계획\n요약: 짧은 글\n---\n{body}"
    parsed = parse_source("_posts/2024-01-02-글.md", text.encode(), settings.parse_options)
    found = check_body(parsed, settings.liquid_options)
    problems = found.problems + unknown_links(parsed.path, found.links, LINKS)
    assert all(p.severity is Severity.WARNING for p in problems)
    return [(p.line, p.reason) for p in problems]


# Body (starting on line 4) → the HTML rendered.
CASES = [
    ("저장소 {{ site.repository }}", "<p>저장소 me/블로그</p>\n"),
    (
        "{{site.title}}: [홈]({{ site.url }}{{ site.baseurl }}/)",
        f'<p>내 블로그: <a href="{SITE}">홈</a></p>\n',
    ),
    ("[이전]({% post_url 2013-05-06-이전-글 %})", f'<p><a href="{PREVIOUS}">이전</a></p>\n'),
    ("[소식]({% post_url 공지/2019-03-01-소식 %})", f'<p><a href="{NEWS}">소식</a></p>\n'),
    ("[소식]({% post_url 2019-03-01-소식 %})", f'<p><a href="{NEWS}">소식</a></p>\n'),
    ("[이전]({% link _posts/2013-05-06-이전-글.md %})", f'<p><a href="{PREVIOUS}">이전</a></p>\n'),
    ("[없는 글]({% post_url 2000-01-01-없음 %}) 끝", "<p>없는 글 끝</p>\n"),
    ('<a href="{% link _posts/없음.md %}">없는 글</a>', "<p>없는 글</p>\n"),
    (
        '![그림]({{ "/img/a.png" | relative_url }})',
        f'<p><img src="{SITE}img/a.png" alt="그림"></p>\n',
    ),
    ('<a href="{{ "놀이/" | absolute_url }}">놀이</a>', f'<p><a href="{SITE}놀이/">놀이</a></p>\n'),
    (
        '[홈]({{ "/" | absolute_url }}) [여기]({{ page.url | relative_url }})',
        f'<p><a href="{SITE}">홈</a> <a href="{SITE}2024/01/02/%EA%B8%80/">여기</a></p>\n',
    ),
    ("제목은 {{ page.title }}, {{ page.요약 }}", "<p>제목은 새해 계획, 짧은 글</p>\n"),
    ("{% raw %}{{ site.url }} {% 그대로 %}{% endraw %}", "<p>{{ site.url }} {% 그대로 %}</p>\n"),
    ("앞{% comment %}숨김 {{ x }}{% endcomment %}뒤", "<p>앞뒤</p>\n"),
    (
        "앞\n\n{% for 글 in site.posts %}\n- {{ 글.title }}\n{% endfor %}\n\n뒤",
        "<p>앞</p>\n<p>뒤</p>\n",
    ),
    (
        "{% if a %}{% if b %}안{% endif %}밖{% else %}다른{% endif %}남음",
        "<p>남음</p>\n",
    ),
    ("{% assign 수 = 1 %}{% include 광고.html %}본문", "<p>본문</p>\n"),
    ("{% capture 글 %}잡음{% endcapture %}본문{{ 글 }}", "<p>본문</p>\n"),
    ("{% youtube abc %}영상{% endyoutube %}끝", "<p>끝</p>\n"),
    ("값 {{ site.없음 }}.", "<p>값 .</p>\n"),
    ('{{ page.date | date: "%Y" }}년', "<p>년</p>\n"),
    ("본문 {% endif %}", "<p>본문</p>\n"),
]


@pytest.mark.parametrize(("body", "html"), CASES)
def test_liquid_cases_render_as_a_reader_should_see_them(body: str, html: str) -> None:
    assert render(body) == html


def test_what_is_removed_is_reported_naming_the_line() -> None:
    body = (
        "첫 줄 {{ site.repository }}\n"  # 5: resolved, nothing to say
        "{% for 글 in site.posts %}\n"  # 6
        "{{ 글.title }}\n"
        "{% endfor %}\n"
        "{% include 광고.html\n   크기=3 %}\n"  # 9, a tag over two lines
        "{{ site.없음 }} {% comment %}조용히{% endcomment %}\n"  # 11
        "[없음]({% post_url 2000-01-01-없음 %})\n"  # 12
        "{% raw %}닫히지 않음\n"  # 13
    )
    assert warnings(body) == [
        (
            6,
            "Liquid '{% for 글 in site.posts %}' is not run here: removed with everything up "
            "to its '{% endfor %}' (line 8); write what it would produce into the post",
        ),
        (
            9,
            "Liquid '{% include 광고.html 크기=3 %}' is not run here: removed; write what it "
            "would produce into the post",
        ),
        (
            11,
            "unknown Liquid variable 'site.없음': removed; set it under site.vars in "
            "config.yaml (or in the site's _config.yml)",
        ),
        (
            13,
            "'{% raw %}' has no matching '{% endraw %}': the tag is removed and the text after "
            "it kept; add the end tag",
        ),
        (
            12,
            "'{% post_url 2000-01-01-없음 %}' names no published post: the link around it is "
            "taken out, its text kept (elsewhere the tag gives nothing); name a post under "
            "_posts/, e.g. {% post_url 2024-01-02-name %}",
        ),
    ]


def test_every_case_that_removes_something_says_so() -> None:
    silent = {0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13}  # resolved, or a comment
    for index, (body, _) in enumerate(CASES):
        assert bool(warnings(body)) == (index not in silent), body


# --- code is never touched -----------------------------------------------------------


def test_code_keeps_its_liquid_byte_for_byte() -> None:
    body = (
        "`{{ site.url }}` 와 ``{% raw %}x{% endraw %}``\n\n"
        '```html\n<a href="{{ site.url }}/x">{% raw %}x{% endraw %}</a>\n{% for a in b %}\n```\n\n'
        "    {{ site.repository }} {% include x %}\n\n"
        "~~~\n{% endfor %}\n~~~\n"
    )
    expanded = expand(
        body, path="a.md", first_line=1, markdown=True, options=ON.liquid_options, page={},
        links=LINKS,
    )  # fmt: skip
    assert expanded.text == body and expanded.problems == []
    assert '<a href="{{ site.url }}/x">{% raw %}x{% endraw %}</a>' in render(body).replace(
        "&lt;", "<"
    ).replace("&gt;", ">").replace("&quot;", '"')


def test_pre_and_code_elements_keep_their_liquid_in_html_and_markdown() -> None:
    body = "<p>{{ site.repository }}</p><pre>{{ site.url }}</pre><code>{% if %}</code>"
    for markdown in (False, True):
        out = expand(
            body, path="a.html", first_line=1, markdown=markdown, options=ON.liquid_options,
            page={}, links=LINKS,
        )  # fmt: skip
        assert out.text == "<p>me/블로그</p><pre>{{ site.url }}</pre><code>{% if %}</code>"
        assert out.problems == []


def test_raw_around_a_fence_is_taken_out_and_the_fence_kept() -> None:
    body = "{% raw %}\n```liquid\n{{ page.title }}\n```\n{% endraw %}\n"
    html = render(body)
    assert html == '<pre><code class="language-liquid">{{ page.title }}\n</code></pre>\n'


def test_highlight_becomes_a_code_block() -> None:
    body = "{% highlight python %}\nif a < b:\n    print('```')\n{% endhighlight %}\n"
    assert "<pre><code class=\"language-python\">if a &lt; b:\n    print('```')\n" in render(body)
    html = render(
        "{% highlight js linenos %}\na && b\n{% endhighlight %}", path="a/2024-01-02-b.html"
    )
    assert html == '<pre><code class="language-js">a &amp;&amp; b</code></pre>'


# --- off -----------------------------------------------------------------------------

NOT_JEKYLL = [
    "배포: ${{ github.sha }}",
    "{% block content %}본문{% endblock %}",
    "PID {{.State.Pid}} 와 {{ site.repository }}",
    "{% raw %}x{% endraw %}",
]


@pytest.mark.parametrize("body", NOT_JEKYLL)
def test_with_liquid_off_liquid_looking_text_is_left_as_written_without_warnings(body: str) -> None:
    assert warnings(body, OFF) == []
    expanded = expand(
        body, path="a.md", first_line=1, markdown=True, options=OFF.liquid_options, page={},
        links=LINKS,
    )  # fmt: skip
    assert expanded.text == body
    assert render(body, OFF) == render_markdown(body)


_PROSE = st.lists(
    st.sampled_from([*"가나다 abc{}%|.-_*\n`~<>/\"'", "{{", "}}", "{%", "%}"]), max_size=60
).map("".join)


@settings(max_examples=200, deadline=None)
@given(body=_PROSE)
def test_with_liquid_off_any_body_renders_as_markdown_alone(body: str) -> None:
    text = f"---\ntitle: t\n---\n{body}"
    parsed = parse_source("2024-01-02-a.md", text.encode(), OFF.parse_options)
    meta = to_meta(parsed, OFF.parse_options, first_seen=FIRST_SEEN)
    html = render_post(parsed, meta, OFF.markup_options, LINKS).html
    expected = sanitise_feed_html(
        render_markdown(parsed.body), IFRAME_HOSTS, base_url=meta.url, site_url=SITE
    )
    assert html == expected
    assert check_body(parsed, OFF.liquid_options).problems == []


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=120).filter(lambda t: "{{" not in t and "{%" not in t))
def test_with_liquid_on_text_without_liquid_is_untouched(body: str) -> None:
    assert not has_liquid(body)
    expanded = expand(
        body, path="a.md", first_line=1, markdown=True, options=ON.liquid_options, page={},
        links=LINKS,
    )  # fmt: skip
    assert expanded.text is body and expanded.problems == [] and expanded.links == []


_CODE = st.lists(st.sampled_from([*'가 x=<>"/', "{{ site.url }}", "{% raw %}", "{% endraw %}",
    "{% for a in b %}", "{% endfor %}", "{{ page.title }}", "{% include x %}"]), min_size=1,
    max_size=12).map("".join)  # fmt: skip
_LIQUID_PROSE = st.lists(
    st.sampled_from(
        ["글", " ", "{{ site.repository }}", "{% include 광고.html %}", "{{ site.없음 }}",
         "{% raw %}{{ x }}{% endraw %}", "{% comment %}c{% endcomment %}",
         "{% if a %}b{% endif %}", "[글]({% post_url 2013-05-06-이전-글 %})"]
    ),
    max_size=6,
).map("".join)  # fmt: skip


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Markdown of prose with Liquid between fenced blocks and code spans holding Liquid;
    with the code pieces, in order."""
    parts: list[str] = []
    code: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        prose = draw(_LIQUID_PROSE)
        inner = draw(_CODE).replace("`", "").replace("\n", " ").strip() or "x"
        if draw(st.booleans()):
            piece = f"```\n{inner}\n```"
            parts.append(f"{prose}\n\n{piece}\n\n")
        else:
            piece = f"`{inner}`"
            parts.append(f"{prose} {piece}\n\n")
        code.append(piece)
    return "".join(parts), code


@settings(max_examples=200, deadline=None)
@given(document=_documents())
def test_code_regions_are_never_changed(document: tuple[str, list[str]]) -> None:
    body, pieces = document
    expanded = expand(
        body, path="a.md", first_line=1, markdown=True, options=ON.liquid_options, page={},
        links=LINKS,
    )  # fmt: skip
    position = 0
    for piece in pieces:
        found = expanded.text.find(piece, position)
        assert found >= 0, (piece, expanded.text)
        position = found + len(piece)
    # And each is still code (a tag removed at a line's start may make the prose after
    # it indented code, as in Jekyll, which runs Liquid first: then it joins that block).
    after = [expanded.text[s:e] for s, e in code_regions(expanded.text)]
    for start, end in code_regions(body):
        assert any(body[start:end] in region for region in after), (body[start:end], after)


# --- links -----------------------------------------------------------------------------


def test_link_table_names_posts_by_path_and_by_name() -> None:
    table = link_table([("2013-05-06-이전-글.md", PREVIOUS)], "_posts/")
    assert table["link:_posts/2013-05-06-이전-글.md"] == PREVIOUS
    assert table["post_url:2013-05-06-이전-글"] == PREVIOUS
    ref = LinkRef("link", "/_posts/2013-05-06-이전-글.md", 3)
    assert unknown_links("a.md", [ref], table) == []
    missing = LinkRef("post_url", "2013-05-06-다른-글", 9)
    assert unknown_links("a.md", [missing], table)[0].line == 9


def test_a_multi_line_problem_keeps_its_prefix_on_every_line() -> None:
    problem = Problem("_posts/가.md", "첫째\n둘째\r\n셋째", 7, Severity.WARNING)
    assert str(problem).splitlines() == [
        "_posts/가.md:7: warning: 첫째",
        "_posts/가.md:7: 둘째",
        "_posts/가.md:7: 셋째",
    ]


# --- the settings ----------------------------------------------------------------------


def _site(tmp_path: Path, config: str | None, *, posts: bool = False, **content: Any) -> Settings:
    (tmp_path / "content").mkdir(parents=True)
    if posts:
        (tmp_path / "content" / "_posts").mkdir()
    if config is not None:
        (tmp_path / "_config.yml").write_text(config, encoding="utf-8")
    raw = {"site": {"url": SITE, "vars": {"저자": "홍길동"}}, "content": content}
    return settings_from_mapping(raw, base_dir=tmp_path)


def test_auto_is_on_for_a_jekyll_site_with_its_config_values(tmp_path: Path) -> None:
    settings = _site(tmp_path, "title: 옛 제목\nrepository: me/옛\n저자: 덮임\nurl: https://old/\n")
    options = settings.liquid_options
    assert options.enabled and options.config_file == str(tmp_path / "_config.yml")
    assert options.site_vars == {
        "title": "feedsvc",  # ours wins over _config.yml's
        "repository": "me/옛",
        "저자": "홍길동",  # site.vars wins over both
        "url": "https://x.kr",
        "baseurl": "/blog",
    }
    assert options.link_prefix == "content/"
    assert settings.parse_options.liquid is options and settings.markup_options.liquid is options


def test_auto_is_on_with_a_posts_folder_and_off_otherwise(tmp_path: Path) -> None:
    assert _site(tmp_path / "a", None, posts=True).liquid_options.enabled
    assert not _site(tmp_path / "b", None).liquid_options.enabled
    assert not _site(tmp_path / "c", "title: x\n", liquid="off").liquid_options.enabled
    assert _site(tmp_path / "d", None, liquid="on").liquid_options == LiquidOptions(
        True,
        SITE,
        {"url": "https://x.kr", "baseurl": "/blog", "title": "feedsvc", "저자": "홍길동"},
    )


def test_a_broken_config_yml_is_an_error_naming_its_line(tmp_path: Path) -> None:
    settings = _site(tmp_path, "title: 좋음\nrepository: [닫히지 않음\nother: 1\n")
    with pytest.raises(Exception) as caught:
        settings.liquid_options  # noqa: B018
    message = str(caught.value)
    assert f"{tmp_path / '_config.yml'}:" in message and "not valid YAML" in message
    assert type(caught.value).__name__ == "ConfigError"


def test_bare_on_and_off_in_yaml_mean_on_and_off() -> None:
    loaded = yaml.safe_load("content:\n  liquid: on\n")  # YAML 1.1: True
    assert settings_from_mapping(loaded).content.liquid == "on"
    assert settings_from_mapping({"content": {"liquid": False}}).content.liquid == "off"


def test_a_bad_liquid_value_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(Exception) as caught:
        make_settings("가끔")
    assert "content.liquid" in str(caught.value) and "'auto', 'on' or 'off'" in str(caught.value)


@pytest.mark.parametrize(
    "unit", ["{% for 글 in 목록 %}가\n", "{% raw %}가\n", "{% include 광고.html %}\n", "{% if a %}"]
)
def test_many_unclosed_tags_cost_linear_time(unit: str) -> None:
    # Each tag without its end would otherwise look through the rest of the body: 40,000
    # of them in 600 KB took minutes; one pass over the tags takes a fraction of a second.
    body = unit * 40_000
    started = time.perf_counter()
    expanded = expand(
        body, path="a.md", first_line=1, markdown=True, options=ON.liquid_options, page={},
        links=LINKS,
    )  # fmt: skip
    assert time.perf_counter() - started < 5
    assert len(expanded.problems) == 40_000
    assert expanded.problems[-1].line == 1 + body.count("\n", 0, body.rindex(unit))
