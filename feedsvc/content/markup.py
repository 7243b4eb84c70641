"""Post bodies → feed-ready HTML and a plain-text summary (pure: strings in, values out).

Order: Jekyll's Liquid when content.liquid is on (content.liquid: variables and links
resolved, what it cannot run removed; its warnings are reported when the file is read,
see liquid.check_body) → Markdown (cmark-gfm, raw HTML kept; markdown_prep:
CJK-friendly emphasis, math as written, ``<T>`` as text) or the HTML with ``<T>`` as text
(html_tags) → relative URLs made absolute (lxml) → XML-illegal characters stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lxml import etree

from feedsvc.config import MarkupOptions
from feedsvc.content import markdown_prep
from feedsvc.content.cmark import to_html
from feedsvc.content.html_tags import escape_text_tags
from feedsvc.content.markup_bounds import line_of_element, measure
from feedsvc.content.posts import ParsedSource, html_to_text, strip_xml_illegal
from feedsvc.content.urls import absolute_url
from feedsvc.errors import ContentError
from feedsvc.models import Message, Post, PostMeta

# Scanning for '=' first and checking the name behind it is ~20x faster than one
# case-insensitive pattern on Korean text.
_ATTR_VALUE = re.compile(r"""=\s*("[^"]*"|'[^']*'|[^\s>]*)""")
_URL_ATTR_NAME = re.compile(r"(?<![\w-])(href|src|srcset|poster)\s*$", re.IGNORECASE)
_ABSOLUTE = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_DOCUMENT_TAGS = re.compile(r"</?(?:html|head|body)\b[^>]*>|<!doctype[^>]*>", re.IGNORECASE)
# Elements whose href/src/srcset/poster HTML defines; iter() by tag is ~15x faster than
# an XPath over every element's attributes.
_URL_ELEMENTS = (
    "a", "area", "link", "img", "source", "video", "audio", "track", "iframe", "embed",
    "script", "input", "frame", "image", "use",
)  # fmt: skip
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")
_SRCSET_DESCRIPTORS = re.compile(r"([^,]*),?")
_PARAGRAPH = re.compile(r"<p(?:\s[^>]*)?>(.*?)</p\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_END = re.compile(
    r"<!--.*?-->|</?(?:p|div|h[1-6]|li|ul|ol|table|tr|blockquote|pre|section|article|figure)"
    r"\b[^>]*>|<br\s*/?>",
    re.IGNORECASE | re.DOTALL,
)
_BLANK_LINES = re.compile(r"\n\s*\n")


def render_post(
    parsed: ParsedSource,
    meta: PostMeta,
    options: MarkupOptions,
    links: Mapping[str, str] | None = None,
) -> Post:
    """The post's absolute-URL HTML and summary. ``links``: what ``{% link %}`` and
    ``{% post_url %}`` resolve to (content.liquid.link_table).

    Raises ContentError for HTML nesting too deep or too many elements (markup_bounds)."""
    body = strip_xml_illegal(parsed.body)
    markdown = parsed.body_format == "markdown"
    if options.liquid.enabled and ("{%" in body or "{{" in body):
        from feedsvc.content import liquid  # a Liquid site's, with the code scanner

        page = liquid.page_variables(parsed, meta.url)
        body = liquid.expand(
            body,
            path=parsed.path,
            first_line=parsed.body_line,
            markdown=markdown,
            options=options.liquid,
            page=page,
            links=links or {},
        ).text
    # Promise<T> is text in HTML bodies too (html_tags); Markdown does it in markdown_prep.
    rendered = render_markdown(body) if markdown else escape_text_tags(body)
    _check_bounds(parsed, rendered)
    post_html = absolutize_urls(rendered, meta.url, options.site_url)
    if "&#" in body:  # cmark and lxml turn references such as &#1; back into characters
        post_html = strip_xml_illegal(post_html)
    if meta.excerpt:
        summary = _shorten(meta.excerpt, 300)
    else:
        summary = make_excerpt(post_html, options.excerpt_separator)
    return Post(meta=meta, html=post_html, summary=summary)


def _check_bounds(parsed: ParsedSource, rendered: str) -> None:
    """Refuse HTML too deep or too big for the sanitiser and CSS inliner (one linear pass);
    the line is where the source itself goes over, else the body's first line."""
    excess = measure(rendered)
    if excess is None:
        return
    line = parsed.body_line
    in_source = measure(parsed.body)
    if in_source is not None:
        found = line_of_element(parsed.body, in_source.element)
        if found is not None:
            line = parsed.body_line + found - 1
    refused = Message.of(
        "content.not_published", "%(reason)s; the post is not published", reason=excess.reason
    )
    raise ContentError(parsed.path, refused, line)


def render_markdown(text: str) -> str:
    """CommonMark + GFM tables, ~~strikethrough~~, autolinks and task lists; raw HTML
    kept; CJK-friendly emphasis, math left as written and ``<T>`` as text outside code
    (markdown_prep)."""
    return markdown_prep.render(text, to_html)


def absolutize_urls(html: str, base_url: str, site_url: str) -> str:
    """Every relative href, src, srcset candidate and poster made absolute.

    '/x' resolves against ``site_url``, anything else against ``base_url`` (the post's
    URL). HTML without relative URLs comes back unchanged, byte for byte.
    """
    if _all_absolute(html):
        return html
    if _DOCUMENT_TAGS.search(html):
        # A pasted whole page: libxml2 drops what follows a stray </body>.
        html = _DOCUMENT_TAGS.sub("", html)
    # A parser per call costs nothing measurable and is safe in any thread.
    parser = etree.HTMLParser(remove_comments=False, remove_pis=False, no_network=True)
    root = etree.fromstring(f"<html><body>{html}</body></html>", parser)
    body = root.find("body") if root is not None else None
    if body is None:
        return html
    for element in body.iter(*_URL_ELEMENTS):
        for name in ("href", "src", "poster"):
            value = element.get(name)
            if value is not None:
                resolved = _resolved(value, base_url, site_url)
                if resolved != value:
                    element.set(name, resolved)
        srcset = element.get("srcset")
        if srcset is not None:
            element.set("srcset", _resolve_srcset(srcset, base_url, site_url))
    # UTF-8 then decode is faster than encoding="unicode"; characters stay characters.
    serialized = etree.tostring(body, encoding="utf-8", method="html").decode("utf-8")
    return serialized[serialized.index(">") + 1 : serialized.rindex("</body>")]


def _all_absolute(html: str) -> bool:
    """True when no URL attribute could need rewriting (a conservative textual check)."""
    for match in _ATTR_VALUE.finditer(html):
        start = match.start()
        name = _URL_ATTR_NAME.search(html, max(0, start - 24), start)
        if name is None:
            if html[start - 1 : start].isspace():
                return False  # maybe a name far before '=': let lxml decide
            continue
        value = match.group(1).strip("\"'")
        if (
            name.group(1).lower() == "srcset"
            or not _ABSOLUTE.match(value)
            or value.lstrip().startswith("//")
        ):
            return False
    return True


def _resolved(ref: str, base_url: str, site_url: str) -> str:
    """``ref`` made absolute, with control characters (legal in neither a URL nor XML;
    ``&#1;`` in an attribute puts one there) percent-encoded."""
    return _CONTROLS.sub(_percent, absolute_url(ref, base_url, site_url))


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def _resolve_srcset(srcset: str, base_url: str, site_url: str) -> str:
    """Each candidate's URL resolved; URLs may hold commas (data:), so parse as HTML does."""
    candidates: list[str] = []
    position = 0
    while (url := _SRCSET_URL.match(srcset, position)) is not None:
        ref, position = url.group(1), url.end()
        descriptors = ""
        if ref.endswith(","):
            ref = ref.rstrip(",")
        else:
            rest = _SRCSET_DESCRIPTORS.match(srcset, position)
            assert rest is not None  # ([^,]*),? matches anywhere, possibly empty
            descriptors, position = rest.group(1).strip(), rest.end()
        resolved = _resolved(ref, base_url, site_url)
        candidates.append(f"{resolved} {descriptors}" if descriptors else resolved)
    return ", ".join(candidates)


def make_excerpt(html: str, separator: str, limit: int = 300) -> str:
    """Plain-text summary: the text before ``separator``, else the first paragraph with
    text, else the first text block; cut on a word boundary with '…' when longer."""
    if separator:
        end = html.find(separator)
        if end >= 0:
            text = html_to_text(html[:end])
            if text:
                return _shorten(text, limit)
    for paragraph in _PARAGRAPH.finditer(html):
        text = html_to_text(paragraph.group(1))
        if text:
            return _shorten(text, limit)
    for block in _BLANK_LINES.split(_BLOCK_END.sub("\n\n", html)):
        text = html_to_text(block)
        if text:
            return _shorten(text, limit)
    return ""


def _shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else cut at a space with '…' (≤ limit)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Text without spaces in the second half (Chinese, Japanese) is cut mid-run.
    if text[limit - 1] != " " and space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:·-–—") + "…"
