"""Markdown as Korean, Japanese and Chinese authors write it (feedsvc.content.markdown_prep
and cjk_emphasis): CJK-friendly emphasis, single tildes as text, math as written, <T>
as text; standard CommonMark untouched; code never touched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from feedsvc.content.cjk_emphasis import cjk_flanking, cmark_flanking, is_cjk
from feedsvc.content.cmark import to_html
from feedsvc.content.markdown_prep import prepare
from feedsvc.content.markup import render_markdown

SPEC = json.loads(
    (Path(__file__).parents[1] / "data" / "gfm-spec-0.29.json").read_text(encoding="utf-8")
)["examples"]


def p(html: str) -> str:
    return f"<p>{html}</p>\n"


# --- CJK-friendly emphasis ---------------------------------------------------------------

CJK_EMPHASIS = [
    # Korean: a particle right after the closing ** (16 cases in 10 posts of one blog)
    ("**제네릭(Generics)**을 쓴다", "<strong>제네릭(Generics)</strong>을 쓴다"),
    ("**전력 자급률 42%**를 넘었다", "<strong>전력 자급률 42%</strong>를 넘었다"),
    ("**스크립트(script)**라고", "<strong>스크립트(script)</strong>라고"),
    ("**안녕(hello)**하세요.", "<strong>안녕(hello)</strong>하세요."),
    (
        "**`npm publish`**를 실행하십시오.",
        "<strong><code>npm publish</code></strong>를 실행하십시오.",
    ),
    (
        "**이 [링크](https://example.kr/)**만을 강조",
        '<strong>이 <a href="https://example.kr/">링크</a></strong>만을 강조',
    ),
    ("*이탤릭(italic)*은", "<em>이탤릭(italic)</em>은"),
    ("***굵은 기울임(both)***이", "<em><strong>굵은 기울임(both)</strong></em>이"),
    ("**Python(파이썬)**은", "<strong>Python(파이썬)</strong>은"),
    ("값은 **100만 원(1M)**입니다", "값은 <strong>100만 원(1M)</strong>입니다"),
    ("한**(괄호)**한", "한<strong>(괄호)</strong>한"),
    ("**~~취소(cancel)~~**를", "<strong><del>취소(cancel)</del></strong>를"),
    # Japanese: CJK brackets and punctuation beside the delimiters
    ("**「厳密」**という", "<strong>「厳密」</strong>という"),
    ("これは**重要（じゅうよう）**です", "これは<strong>重要（じゅうよう）</strong>です"),
    ("**〔注〕**を参照", "<strong>〔注〕</strong>を参照"),
    ("*「強調」*の", "<em>「強調」</em>の"),
    # Chinese
    ("**中文（括号）**的用法", "<strong>中文（括号）</strong>的用法"),
    ("这是**“引号”**里的", "这是<strong>“引号”</strong>里的"),
    ("**注意：**请阅读", "<strong>注意：</strong>请阅读"),
]


@pytest.mark.parametrize(("source", "html"), CJK_EMPHASIS)
def test_cjk_friendly_emphasis(source: str, html: str) -> None:
    assert render_markdown(source) == p(html)


STANDARD = [
    # CommonMark's own verdicts, unchanged: no CJK beside the delimiters
    ("**foo**bar", "<strong>foo</strong>bar"),
    ("**foo(bar)**baz", "**foo(bar)**baz"),
    ("a * b * c", "a * b * c"),
    ("snake_case_word and foo_bar_", "snake_case_word and foo_bar_"),
    ("\\*\\*not bold\\*\\*", "**not bold**"),
    ("`**code**`를", "<code>**code**</code>를"),
    ("*foo bar *", "*foo bar *"),
    ("foo*bar*", "foo<em>bar</em>"),
    # '_' is never changed by the amendment: intraword rules hold
    ("_제네릭(Generics)_을", "_제네릭(Generics)_을"),
    ("한_글_자", "한_글_자"),
    # already emphasis in CommonMark, still
    ("**굵게** 쓴 글", "<strong>굵게</strong> 쓴 글"),
    ("*強調*の後", "<em>強調</em>の後"),
]


@pytest.mark.parametrize(("source", "html"), STANDARD)
def test_standard_emphasis_is_unchanged(source: str, html: str) -> None:
    assert render_markdown(source) == p(html) == to_html(source)


def test_every_commonmark_emphasis_example_renders_as_cmark_does() -> None:
    examples = [e for e in SPEC if e["section"] == "Emphasis and strong emphasis"]
    assert len(examples) == 131
    for example in examples:
        assert render_markdown(example["markdown"]) == to_html(example["markdown"]), example


# Where feedsvc deliberately differs from cmark-gfm on the GFM spec's own examples: each
# has a tag whose name is no element (<bab>, <c2c>, <b2>, <foo>, <Warning>, <bar>), which
# is text by html_tags's rule.
SPEC_DEVIATIONS = {120, 133, 532, 544, 632, 633, 634, 642}


def test_every_other_spec_example_renders_as_cmark_does() -> None:
    assert len(SPEC) == 673
    changed = {
        e["example"] for e in SPEC if render_markdown(e["markdown"]) != to_html(e["markdown"])
    }
    assert changed == SPEC_DEVIATIONS


def test_the_deviations_show_the_unknown_tag_as_text() -> None:
    by_number = {e["example"]: e for e in SPEC}
    assert render_markdown(by_number[632]["markdown"]) == p("<a>&lt;bab&gt;&lt;c2c&gt;")
    assert "&lt;Warning&gt;" in render_markdown(by_number[133]["markdown"])


@pytest.mark.parametrize(
    ("char", "cjk"),
    [("한", True), ("ᅡ", True), ("가", True), ("字", True), ("「", True), ("）", True),
     ("～", True), ("ｱ", True), ("〰", True), ("㊙", True), ("🈂", True), ("☰", True),
     ("a", False), ("(", False), ("é", False), ("😀", False), ("⌚", False), ("🈁", False),
     ("—", False), (" ", False)],
)  # fmt: skip
def test_cjk_characters_as_the_amendment_defines_them(char: str, cjk: bool) -> None:
    assert is_cjk(char) is cjk


@pytest.mark.parametrize(
    ("before", "after", "left", "right"),
    [
        (" ", "한", True, False),  # before a word: opens only, as in CommonMark
        ("한", " ", False, True),
        (")", "을", True, True),  # ")**을": CommonMark says left only
        ("」", "と", True, True),  # CJK punctuation before: CommonMark says left only
        ("한", "(", True, True),  # "한**(": CommonMark says right only
        ("a", "(", False, True),  # no CJK: CommonMark's verdict
        (")", "b", True, False),
        ("%", "를", True, True),
    ],
)
def test_flanking_under_the_amendment(before: str, after: str, left: bool, right: bool) -> None:
    assert cjk_flanking("x", before, after) == (left, right)
    if not (is_cjk(before) or is_cjk(after)):
        assert cmark_flanking(before, after) == (left, right)


# --- tildes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("1~9 … 4~6", "1~9 … 4~6"),
        ("서울~부산 구간과 대구~광주 구간", "서울~부산 구간과 대구~광주 구간"),
        ("~한 번~", "~한 번~"),
        ("~~지움~~ 남김", "<del>지움</del> 남김"),
    ],
)
def test_only_a_double_tilde_strikes_through(source: str, html: str) -> None:
    assert render_markdown(source) == p(html)


# --- math --------------------------------------------------------------------------------

MATH = [
    ("$\\{a\\}$", "$\\{a\\}$"),
    ("$a_1 * b_2$ 그리고 $c_1 * d_2$", "$a_1 * b_2$ 그리고 $c_1 * d_2$"),
    ("$x^*$ and $y^*$", "$x^*$ and $y^*$"),
    ("$a<b$ and $\\alpha_{i}$", "$a&lt;b$ and $\\alpha_{i}$"),
    ("$$x_1 * y_1 = \\frac{a}{b}$$", "$$x_1 * y_1 = \\frac{a}{b}$$"),
    ("\\(a_1 * b_1\\) 인라인", "\\(a_1 * b_1\\) 인라인"),
    ("**$x$**를 보라", "<strong>$x$</strong>를 보라"),
    # money is not math
    ("가격은 $5에서 $10로 올랐다", "가격은 $5에서 $10로 올랐다"),
    ("\\$5 and \\$10", "$5 and $10"),
]


@pytest.mark.parametrize(("source", "html"), MATH)
def test_math_is_left_as_written(source: str, html: str) -> None:
    assert render_markdown(source) == p(html)


def test_display_math_keeps_its_backslashes_and_line_structure() -> None:
    source = "$$\n\\begin{aligned}\na &= b \\\\\n- c &= d\n\\end{aligned}\n$$\n"
    assert render_markdown(source) == p(
        "$$\n\\begin{aligned}\na &amp;= b \\\\\n- c &amp;= d\n\\end{aligned}\n$$"
    )
    bracket = "\\[\nx_1 * y_1\n\\]\n"
    assert render_markdown(bracket) == p("\\[\nx_1 * y_1\n\\]")


def test_math_in_a_block_quote_keeps_the_quote() -> None:
    assert render_markdown("> $$\n> x_1 * y_1\n> $$\n") == (
        "<blockquote>\n" + p("$$\nx_1 * y_1\n$$") + "</blockquote>\n"
    )


def test_math_in_code_and_urls_is_not_math() -> None:
    source = "`$x_1 * y_1$` [링크](https://x.kr/$a$) $b_1 * c_1$\n\n```\n$\\{a\\}$\n```\n"
    assert render_markdown(source) == (
        p('<code>$x_1 * y_1$</code> <a href="https://x.kr/$a$">링크</a> $b_1 * c_1$')
        + "<pre><code>$\\{a\\}$\n</code></pre>\n"
    )


def test_a_blank_line_ends_math() -> None:
    assert render_markdown("$a\n\nb$\n") == to_html("$a\n\nb$\n")


def test_math_in_image_alt_text_comes_back_in_the_attribute() -> None:
    assert render_markdown('![$a<b$ "q"](x.png)') == p(
        '<img src="x.png" alt="$a&lt;b$ &quot;q&quot;" />'
    )


def test_math_in_a_reference_definition_url_is_left_to_cmark() -> None:
    source = "[r]: /u/$a$\n\n[링크][r] $b_1 * c_1$\n"
    assert render_markdown(source) == p('<a href="/u/$a$">링크</a> $b_1 * c_1$')


# --- <T> as text ---------------------------------------------------------------------------

TAGS = [
    ("## Promise<T>의 T는", "<h2>Promise&lt;T&gt;의 T는</h2>\n"),
    ("Connection<open/closed>", p("Connection&lt;open/closed&gt;")),
    ("Map<String, List<Integer>>", p("Map&lt;String, List&lt;Integer&gt;&gt;")),
    (
        "Bash의 <<< Here String, <<EOF Here Document와",
        p("Bash의 &lt;&lt;&lt; Here String, &lt;&lt;EOF Here Document와"),
    ),
    ("List<Object>와 Optional<Data>", p("List&lt;Object&gt;와 Optional&lt;Data&gt;")),
    ("useState<boolean>(false)", p("useState&lt;boolean&gt;(false)")),
    # markup stays markup: known names in lower case or capitals, custom elements, comments
    ("<B>굵게</B>와 줄<BR>바꿈", p("<B>굵게</B>와 줄<BR>바꿈")),
    (
        "<b>굵게</b> <br/> <my-card>카드</my-card> <!-- 주석 -->",
        p("<b>굵게</b> <br/> <my-card>카드</my-card> <!-- 주석 -->"),
    ),
    (
        '<svg><foreignObject width="1"></foreignObject></svg>',
        p('<svg><foreignObject width="1"></foreignObject></svg>'),
    ),
    (
        "<https://x.kr/a> <a@b.kr>",
        p('<a href="https://x.kr/a">https://x.kr/a</a> <a href="mailto:a@b.kr">a@b.kr</a>'),
    ),
    # code is code
    ("`Promise<T>`와 `<B>`", p("<code>Promise&lt;T&gt;</code>와 <code>&lt;B&gt;</code>")),
    (
        "```ts\nconst a: Promise<T> = x;\n```",
        '<pre><code class="language-ts">const a: Promise&lt;T&gt; = x;\n</code></pre>\n',
    ),
    ("    List<T> 들여쓰기", "<pre><code>List&lt;T&gt; 들여쓰기\n</code></pre>\n"),
    # raw HTML blocks follow the HTML rule; script content is not HTML
    ("<div>\nList<T>와 Map<K, V>\n</div>", "<div>\nList&lt;T&gt;와 Map&lt;K, V&gt;\n</div>\n"),
    ("<T>\n\n본문", p("&lt;T&gt;") + p("본문")),
    ("a <script>x = f<T>(y)</script> b", p("a <script>x = f<T>(y)</script> b")),
    ("<script>\nvar a = b<T>(c);\n</script>", "<script>\nvar a = b<T>(c);\n</script>\n"),
]


@pytest.mark.parametrize(("source", "html"), TAGS)
def test_tags_that_are_text_come_out_as_text(source: str, html: str) -> None:
    assert render_markdown(source) == html


def test_a_link_destination_in_angle_brackets_is_left_to_cmark() -> None:
    for source in ("[a](<T>)", "[r]: <T>\n\n[r]"):
        assert render_markdown(source) == to_html(source)


# --- never lost, never slow ------------------------------------------------------------------


def test_a_marker_cmark_moves_into_a_url_falls_back_to_plain_rendering() -> None:
    # the definition's title gets a marker, which comes back out of the attribute
    source = '[r]: /u "한**(x)**을"\n\n[링크][r] **제네릭(Generics)**을\n'
    assert render_markdown(source) == p(
        '<a href="/u" title="한**(x)**을">링크</a> <strong>제네릭(Generics)</strong>을'
    )


def test_posts_that_need_no_pass_are_not_scanned() -> None:
    plain = (
        '## 소제목\n\n부산 해운대 <a href="../x.html">관련</a> | 표 |\n\n```python\nx = 1\n```\n'
    )
    assert prepare(plain) is None
    assert prepare("**굵게** 쓴 글과 *기울임*") is None
    assert prepare("$5 그리고 커피") is None


# Code, tricky text around and inside it: every code block and span cmark shows for the
# source comes out the same after the passes.
_TRICKY = st.sampled_from(
    ["**제네릭(Generics)**을", "<T>", "Promise<T>", "$\\{a\\}$", "$x^*$", "\\(a\\)", "1~9",
     "<B>", "<!-- c -->", "**「厳密」**という", " ", "\n", "\n\n", "`", "``", "한", "*", "$"]
)  # fmt: skip
_CODE = st.sampled_from(
    ["`{}`", "``{} ` ``", "\n```\n{}\n```\n", "\n~~~ko\n{}\n~~~\n", "\n\n    {}\n\n"]
)
_CODE_TEXT = re.compile(r"<code[^>]*>(.*?)</code>", re.DOTALL)


@st.composite
def _posts(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            inner = "".join(draw(st.lists(_TRICKY, min_size=1, max_size=4))).strip("\n`")
            parts.append(draw(_CODE).format(inner or "x"))
        else:
            parts.append("".join(draw(st.lists(_TRICKY, max_size=5))))
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(_posts())
def test_code_is_never_touched(source: str) -> None:
    """Every code text cmark-gfm finds is in ours, where no line starts with a tag: a line
    such as `<T>` starts a raw HTML block for cmark, which swallows the lines after it (a
    fence's opening line among them), while ours is text and the block structure is the
    author's (see the next test)."""
    assume(_BLOCK_TAG_LINE.search(source) is None)
    before = _CODE_TEXT.findall(to_html(source))
    after = _CODE_TEXT.findall(render_markdown(source))
    for code in before:
        assert code in after, (source, code)


_BLOCK_TAG_LINE = re.compile(r"(?m)^ {0,3}</?[A-Za-z]")


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("<T>\n```\n \n```\n", " \n"),
        ("<T>\n```\n**제네릭(Generics)**을\n\n`x`\n```\n", "**제네릭(Generics)**을\n\n`x`\n"),
        (
            "Promise<T>\n```ts\nconst p: Promise<T> = f();\n```\n",
            "const p: Promise&lt;T&gt; = f();\n",
        ),
    ],
)
def test_a_tag_like_line_is_text_and_the_fence_after_it_keeps_its_code(
    source: str, code: str
) -> None:
    """cmark-gfm would take `<T>` alone on a line for a raw HTML block running to the next
    blank line, eating the fence's first line; as text, the fence is the author's."""
    rendered = render_markdown(source)
    assert "&lt;T&gt;" in rendered.split("<pre>")[0]
    assert _CODE_TEXT.findall(rendered) == [code]


_PLAIN = st.text(alphabet=st.sampled_from([*"ab *_~`#>-|()[]!.\n\t1", "é", "—", "😀"]), max_size=60)


@settings(max_examples=400, deadline=None)
@given(_PLAIN)
def test_text_without_cjk_math_or_tags_renders_as_cmark_does(source: str) -> None:
    assert render_markdown(source) == to_html(source)
