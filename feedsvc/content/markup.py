"""Post bodies → feed-ready HTML and a plain-text summary (pure: strings in, values out).

Order: Jekyll's Liquid when content.liquid is on (content.liquid: variables and links
resolved, what it cannot run removed; its warnings are reported when the file is read,
see liquid.check_body) → Markdown (cmark-gfm, raw HTML kept; markdown_prep:
CJK-friendly emphasis, math as written, ``<T>`` as text) or the HTML with ``<T>`` as text
(html_tags) → sanitised for feeds with relative URLs made absolute, in one pass
(content.sanitise: nh3) → XML-illegal characters stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from feedsvc.config import MarkupOptions
from feedsvc.content import markdown_prep
from feedsvc.content.cmark import to_html
from feedsvc.content.html_tags import escape_text_tags
from feedsvc.content.markup_bounds import line_of_element, measure
from feedsvc.content.posts import ParsedSource, html_to_text, strip_xml_illegal
from feedsvc.content.sanitise import sanitise_feed_html
from feedsvc.errors import ContentError
from feedsvc.models import Message, Post, PostMeta

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
    # Sanitised for feeds and made absolute in one pass; kept so, with the render.
    post_html = sanitise_feed_html(
        rendered, options.iframe_hosts, base_url=meta.url, site_url=options.site_url
    )
    if "&#" in body:  # cmark turns references such as &#1; back into characters
        post_html = strip_xml_illegal(post_html)
    if meta.excerpt:
        summary = _shorten(meta.excerpt, 300)
    else:  # from the HTML as written: an excerpt separator may be a comment
        summary = make_excerpt(rendered, options.excerpt_separator)
        if "&#" in body:
            summary = strip_xml_illegal(summary)
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
