"""content.sanitise: post HTML for feeds and for email, one sanitiser (nh3) with two
allow-lists; no active content leaves, text stays text, iframes only from allowed hosts."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import html as lxml_html

from feedsvc.config import IFRAME_HOSTS
from feedsvc.content.posts import strip_xml_illegal
from feedsvc.content.sanitise import sanitise_email_html, sanitise_feed_html

YOUTUBE = "https://www.youtube.com/embed/dQw4w9WgXcQ"


def feed(fragment: str, hosts: tuple[str, ...] = IFRAME_HOSTS) -> str:
    return sanitise_feed_html(fragment, hosts)


@pytest.mark.parametrize(
    ("given_html", "expected"),
    [
        ("<p>부산 <script>alert('x')</script>소식</p>", "<p>부산 소식</p>"),
        ("<style>p { color: red }</style><p>본문</p>", "<p>본문</p>"),
        ('<img src="https://x.kr/a.png" onerror="alert(1)">', '<img src="https://x.kr/a.png">'),
        ('<p onclick="steal()" class="lead">글</p>', '<p class="lead">글</p>'),
        ('<a href="javascript:alert(1)">링크</a>', "<a>링크</a>"),
        ('<a href="  JavaScript:alert(1)">링크</a>', "<a>링크</a>"),
        ('<a href="vbscript:msgbox(1)">링크</a>', "<a>링크</a>"),
        ('<a href="data:text/html,&lt;script&gt;x">링크</a>', "<a>링크</a>"),
        (
            '<img src="data:image/png;base64,iVBORw0KGgo=">',
            '<img src="data:image/png;base64,iVBORw0KGgo=">',
        ),
        ('<a href="https://x.kr/?a=1&amp;b=2">x</a>', '<a href="https://x.kr/?a=1&amp;b=2">x</a>'),
        ("<h2>Promise&lt;T&gt;의 T는</h2>", "<h2>Promise&lt;T&gt;의 T는</h2>"),
        (
            "<p>Bash의 &lt;&lt;&lt; Here String, &lt;&lt;EOF</p>",
            "<p>Bash의 &lt;&lt;&lt; Here String, &lt;&lt;EOF</p>",
        ),
        (
            '<pre><code class="language-ts">a &lt; b</code></pre>',
            '<pre><code class="language-ts">a &lt; b</code></pre>',
        ),
        ("<p>a<!-- 주석 -->b</p>", "<p>ab</p>"),
        (
            '<p style="text-align: center; background: url(https://t.kr/x.gif); color: red">글</p>',
            '<p style="text-align:center;color:red">글</p>',
        ),
        ('<form action="https://x.kr/"><input name="q"></form>', ""),
        ('<object data="x.swf"></object><embed src="x.swf">', ""),
    ],
)
def test_feed_content_keeps_the_authors_html_without_active_content(
    given_html: str, expected: str
) -> None:
    assert feed(given_html) == expected


@pytest.mark.parametrize(
    ("given_html", "expected"),
    [
        (  # an allowed host: kept, its fallback content dropped
            f'<p><iframe src="{YOUTUBE}" width="560" onload="x()">대체 <b>글</b></iframe></p>',
            f'<p><iframe src="{YOUTUBE}" width="560"></iframe></p>',
        ),
        (  # any other host: a link to its src, in a paragraph of its own
            '<iframe src="https://maps.example.kr/embed?a=1&amp;b=2"></iframe>',
            '<p><a href="https://maps.example.kr/embed?a=1&amp;b=2">'
            "https://maps.example.kr/embed?a=1&amp;b=2</a></p>",
        ),
        (  # inside a paragraph: just the link
            '<p>지도: <iframe src="https://maps.example.kr/x"></iframe> 끝</p>',
            '<p>지도: <a href="https://maps.example.kr/x">https://maps.example.kr/x</a> 끝</p>',
        ),
        (  # an allowed host over a scheme that is not http(s): not an embed
            '<iframe src="javascript:alert(1)"></iframe>',
            "",
        ),
        ('<iframe srcdoc="&lt;script&gt;x&lt;/script&gt;"></iframe>', ""),
        (  # "<iframe" inside an attribute value is text, not an element to rewrite
            '<img alt="<iframe" src="https://x.kr/a.png"><iframe src="https://evil.kr/"></iframe>',
            '<img alt="&lt;iframe" src="https://x.kr/a.png">'
            '<p><a href="https://evil.kr/">https://evil.kr/</a></p>',
        ),
        (  # a host that merely ends like an allowed one
            '<iframe src="https://www.youtube.com.evil.kr/embed/x"></iframe>',
            '<p><a href="https://www.youtube.com.evil.kr/embed/x">'
            "https://www.youtube.com.evil.kr/embed/x</a></p>",
        ),
    ],
)
def test_iframes_stay_only_from_allowed_hosts(given_html: str, expected: str) -> None:
    assert feed(given_html) == expected


def test_iframe_hosts_come_from_the_setting() -> None:
    fragment = '<iframe src="https://maps.example.kr/x"></iframe>'
    kept = feed(fragment, ("maps.example.kr",))
    assert kept == '<iframe src="https://maps.example.kr/x"></iframe>'
    assert feed(f'<iframe src="{YOUTUBE}"></iframe>', ()) == (
        f'<p><a href="{YOUTUBE}">{YOUTUBE}</a></p>'
    )


def test_email_keeps_its_own_allow_list_and_makes_every_iframe_a_link() -> None:
    fragment = (
        f'<iframe src="{YOUTUBE}"></iframe><details><summary>더보기</summary>본문</details>'
        '<img src="data:image/png;base64,AAAA"><a href="/about/">소개</a>'
    )
    assert sanitise_email_html(fragment, "https://news.example.kr/2024/") == (
        f'<p><a href="{YOUTUBE}" rel="noopener noreferrer">{YOUTUBE}</a></p>더보기본문'
        '<img><a href="https://news.example.kr/about/" rel="noopener noreferrer">소개</a>'
    )


# -------------------------------------------------------------------- properties

# Korean, '<', '&', quotes and the runs authors write in prose (<<<, <<EOF, <T>).
TEXT = st.lists(
    st.sampled_from([*"가나다한글 T<>&\"';=/:.ab()[]{}\n", "<<<", "<<EOF", "<T>", "&amp;"]),
    max_size=20,
).map("".join)
DANGEROUS = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<style>*{}</style>",
        '<img src="https://x.kr/a.png" onerror="alert(1)">',
        '<a href="javascript:alert(1)" onmouseover="x">j</a>',
        '<a href="vbscript:x">v</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>',
        '<img src="data:image/gif;base64,R0lGODlh">',
        f'<iframe src="{YOUTUBE}"></iframe>',
        '<iframe src="https://evil.example/x"></iframe>',
        '<svg onload="alert(1)"><circle r="1"/></svg>',
        "<p>",
        "</p>",
        "<div>",
        "<b>",
        '<a href="https://x.kr/">',
        "</a>",
        "<!-- c -->",
    ]
)


POST_URL, SITE = "https://x.kr/blog/2024/01/02/a/", "https://x.kr/blog/"

# URLs a render resolves, and ones dressed up to look relative or to hide a scheme.
RELATIVE = st.sampled_from(
    [
        '<a href="../x/">r</a>',
        '<a href="/about/">s</a>',
        '<img src="사진.png" srcset="a.png 1x, /b.png 2x">',
        '<video poster="p.jpg" src="v.mp4"></video>',
        '<video poster="javascript:alert(1)" src="v.mp4"></video>',
        '<video poster=" JavaScript:alert(1)"></video>',
        '<a href=" javascript:alert(1)">j</a>',
        '<a href="java&#9;script:alert(1)">j</a>',
        '<a href="java\nscript:alert(1)">j</a>',
        '<a href="&#1;javascript:alert(1)">j</a>',
        '<a href="//evil.example/x">p</a>',
        '<a href="#top">t</a>',
        '<a href="?q=1">q</a>',
        '<a href="">e</a>',
    ]
)


@given(st.lists(st.one_of(TEXT.map(html.escape), DANGEROUS, RELATIVE), max_size=12), st.booleans())
def test_no_active_content_survives(parts: list[str], resolving: bool) -> None:
    """Also when relative URLs are resolved in the same pass (a post's render): nh3 does
    not check the schemes of what its attribute filter gives back."""
    fragment = "".join(parts)
    if resolving:
        clean = sanitise_feed_html(fragment, IFRAME_HOSTS, base_url=POST_URL, site_url=SITE)
    else:
        clean = feed(fragment)
    root = lxml_html.fragment_fromstring(clean or "<p></p>", create_parent="div")
    for element in root.iter():
        assert element.tag not in ("script", "style", "svg", "object", "embed")
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), clean
            lowered = value.strip().lower()
            assert not lowered.startswith(("javascript:", "vbscript:")), clean
            assert not lowered.startswith("data:") or lowered.startswith("data:image/"), clean
        if element.tag == "iframe":
            assert element.get("src", "").startswith("https://www.youtube.com/"), clean
        if resolving:
            for name in ("href", "src", "poster"):
                value = element.get(name)
                assert value is None or value.startswith(
                    ("https://", "http://", "mailto:", "tel:", "data:image/")
                ), clean


@given(TEXT)
def test_text_comes_out_as_the_same_text(text: str) -> None:
    """Escaped text (``Promise&lt;T&gt;``, ``&lt;&lt;EOF``, quotes) is text after
    sanitising: a reader shows exactly what the author wrote."""
    clean = feed(f"<p>{html.escape(text)}</p>")
    root = lxml_html.fragment_fromstring(clean, create_parent="div")
    assert root.text_content() == text.replace("\r", "")


@pytest.mark.parametrize("reference", ["&#1;", "&#x1F;", "&#0;", "&#xFFFE;", "&#27;"])
def test_references_to_xml_illegal_characters_do_not_survive_sanitising(reference: str) -> None:
    """nh3 writes &#1; as the character itself, which lxml (feeds, email) refuses."""
    html = f"<p>부산 {reference}소식</p>"
    for cleaned in (sanitise_feed_html(html, ()), sanitise_email_html(html, "https://x.kr/")):
        assert "부산 " in cleaned and "소식" in cleaned
        assert strip_xml_illegal(cleaned) == cleaned


def test_relative_urls_are_made_absolute_in_the_same_pass() -> None:
    fragment = (
        '<p><a href="../b/" onclick="x()">전</a> <a href="/about/">소개</a></p>'
        '<img src="사진.png" srcset="작은.png 1x, /큰.png 2x">'
        '<video poster="p.jpg" src="//cdn.example/v.mp4"></video>'
    )
    out = sanitise_feed_html(fragment, IFRAME_HOSTS, base_url=POST_URL, site_url=SITE)
    assert out == (
        '<p><a href="https://x.kr/blog/2024/01/02/b/">전</a> '
        '<a href="https://x.kr/blog/about/">소개</a></p>'
        f'<img src="{POST_URL}사진.png" srcset="{POST_URL}작은.png 1x, {SITE}큰.png 2x">'
        f'<video poster="{POST_URL}p.jpg" src="https://cdn.example/v.mp4"></video>'
    )


@pytest.mark.parametrize("base_url", [None, POST_URL])
def test_a_poster_with_a_script_url_goes(base_url: str | None) -> None:
    """nh3 does not check poster's scheme; the filter does, before and after resolving."""
    fragment = '<video poster="javascript:alert(1)" src="https://x.kr/v.mp4"></video>'
    out = sanitise_feed_html(fragment, IFRAME_HOSTS, base_url=base_url, site_url=SITE)
    assert out == '<video src="https://x.kr/v.mp4"></video>'


def test_a_relative_iframe_src_is_resolved_then_checked_against_the_hosts() -> None:
    out = sanitise_feed_html(
        '<iframe src="/embed/1"></iframe>', ("x.kr",), base_url=POST_URL, site_url=SITE
    )
    assert out == '<iframe src="https://x.kr/blog/embed/1"></iframe>'
    elsewhere = sanitise_feed_html(
        '<iframe src="/embed/1"></iframe>', IFRAME_HOSTS, base_url=POST_URL, site_url=SITE
    )
    assert "<iframe" not in elsewhere
