"""feedsvc.content.html_tags: which <…> is markup and which is text, in HTML bodies (and
raw HTML blocks of Markdown); and the same through render_post for both formats."""

from __future__ import annotations

import pytest

from feedsvc.content.html_tags import escape_text_tags, has_text_tags, is_html_name
from tests.content.test_markup import html_of


@pytest.mark.parametrize(
    ("name", "markup"),
    [("b", True), ("B", True), ("br", True), ("BR", True), ("h2", True), ("H2", True),
     ("svg", True), ("foreignObject", True), ("clipPath", True), ("mrow", True),
     ("my-card", True), ("o:p", True), ("annotation-xml", True),
     ("T", False), ("K", False), ("String", False), ("Integer", False), ("EOF", False),
     ("Object", False), ("Data", False), ("Option", False), ("Br", False), ("eof", False),
     ("foreignobject", True), ("FOREIGNOBJECT", True), ("ForeignObject", False)],
)  # fmt: skip
def test_the_rule_for_tag_names(name: str, markup: bool) -> None:
    assert is_html_name(name) is markup


HTML_BODIES = [
    ("<h2>Promise<T>의 T는</h2>", "<h2>Promise&lt;T&gt;의 T는</h2>"),
    ("<p>Connection<open/closed></p>", "<p>Connection&lt;open/closed&gt;</p>"),
    ("<p>Map<String, List<Integer>></p>", "<p>Map&lt;String, List&lt;Integer&gt;></p>"),
    (
        "<p>Bash의 <<< Here String, <<EOF Here Document와</p>",
        "<p>Bash의 &lt;&lt;&lt; Here String, &lt;&lt;EOF Here Document와</p>",
    ),
    ("<p>a < b, c <= d</p>", "<p>a &lt; b, c &lt;= d</p>"),
    ("<p>List<Object></p>", "<p>List&lt;Object&gt;</p>"),
    ("<P>대문자<BR>태그</P><B>굵게</B>", "<P>대문자<BR>태그</P><B>굵게</B>"),
    ("<my-card x='<T>'>카드</my-card><o:p></o:p>", "<my-card x='<T>'>카드</my-card><o:p></o:p>"),
    ('<img alt="List<T>" src="a.png">', '<img alt="List<T>" src="a.png">'),
    ("<!-- Promise<T> --><!DOCTYPE html>", "<!-- Promise<T> --><!DOCTYPE html>"),
    ("<script>if (a<b && c<T>(d)) {}</script>", "<script>if (a<b && c<T>(d)) {}</script>"),
    (
        "<STYLE>a<b{}</STYLE><textarea><T></textarea>",
        "<STYLE>a<b{}</STYLE><textarea><T></textarea>",
    ),
    ("<pre><code>List<T> x;</code></pre>", "<pre><code>List&lt;T&gt; x;</code></pre>"),
]


@pytest.mark.parametrize(("html", "expected"), HTML_BODIES)
def test_text_tags_in_html_are_escaped(html: str, expected: str) -> None:
    assert escape_text_tags(html) == expected


def test_html_without_text_tags_comes_back_as_the_same_object() -> None:
    html = '<p data-x="1">부산 <b>해운대</b> <a href="/x">링크</a></p>'
    assert not has_text_tags(html)
    assert escape_text_tags(html) is html


def test_an_html_post_keeps_its_text_tags_through_url_rewriting() -> None:
    body = '<h2>Promise<T>의 T는</h2>\n<p><a href="x">Map<K, V></a> <<EOF</p>'
    assert html_of(body, "2024-01-02-a.html") == (
        "<h2>Promise&lt;T&gt;의 T는</h2>\n"
        '<p><a href="https://x.kr/blog/2024/01/02/a/x">Map&lt;K, V&gt;</a> &lt;&lt;EOF</p>'
    )


def test_a_markdown_post_keeps_its_text_tags_through_url_rewriting() -> None:
    body = "## Promise<T>의 T는\n\n[링크](x)와 `List<T>`, <B>굵게</B>\n"
    assert html_of(body) == (
        "<h2>Promise&lt;T&gt;의 T는</h2>\n"
        '<p><a href="https://x.kr/blog/2024/01/02/a/x">링크</a>와 <code>List&lt;T&gt;</code>, '
        "<b>굵게</b></p>\n"
    )


def test_the_summary_keeps_the_text_tag() -> None:
    from tests.content.test_markup import render

    post, _ = render("---\ntitle: t\n---\nPromise<T>의 의미와 <<EOF 사용법\n")
    assert post.summary == "Promise<T>의 의미와 <<EOF 사용법"
