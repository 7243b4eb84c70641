"""Post HTML made safe for where it goes (pure): feed content and email, one sanitiser
(nh3, html5ever's parser) with an allow-list for each.

Both take out active content: ``<script>``, ``<style>`` and the like with what they hold,
event handler attributes (``on…``; only listed attributes are kept), ``javascript:``,
``vbscript:`` and ``data:`` URLs (but ``data:image/…``, which feeds keep) and comments.
Feeds keep inline styles of presentation only (``text-align``, ``color`` …); email keeps
none (its template's CSS is inlined).
Text stays text: ``Promise&lt;T&gt;`` comes out as it went in.

An ``<iframe>`` stays in a feed only when its ``src`` is an http(s) URL on one of the
hosts given (``feeds.iframe_hosts``: video players); any other becomes a paragraph with a
link to its ``src``, and one without a ``src`` goes. Email clients show no iframe at all,
so in email each becomes that link.

A post's feed HTML is made once, when the post is rendered (``markup.render_post``), and
kept with the render: one html5ever pass both sanitises it and makes its relative URLs
absolute. Email sanitises that HTML again with its own, narrower list.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import nh3
from lxml import etree

from feedsvc.content.posts import strip_xml_illegal
from feedsvc.content.urls import resolved_ref, resolved_srcset

__all__ = ["sanitise_email_html", "sanitise_feed_html"]

# Elements whose content goes with them (everything else unknown loses its tag, keeps text).
_ACTIVE = frozenset({"script", "style", "template", "noscript", "object", "embed", "applet"})
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_IFRAME_ATTRIBUTES = frozenset(
    {"src", "width", "height", "title", "allow", "allowfullscreen", "frameborder", "loading",
     "referrerpolicy"}
)  # fmt: skip

# Feeds: what authors write in posts, media included; readers style it themselves.
_FEED_TAGS = (nh3.ALLOWED_TAGS - {"map", "area"}) | {
    "audio", "video", "source", "track", "picture", "iframe", "section", "main", "figure",
    "figcaption", "details", "summary", "mark", "abbr", "address", "tfoot",
}  # fmt: skip
_FEED_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"lang", "dir", "title", "class", "style"},
    "a": {"href", "hreflang", "name"},
    "img": {"src", "srcset", "sizes", "alt", "width", "height", "loading"},
    "source": {"src", "srcset", "sizes", "type", "media"},
    "video": {"src", "poster", "width", "height", "controls", "loop", "muted", "preload"},
    "audio": {"src", "controls", "loop", "muted", "preload"},
    "track": {"src", "kind", "srclang", "label", "default"},
    "iframe": set(_IFRAME_ATTRIBUTES),
    "time": {"datetime"},
    "abbr": {"title"},
    "details": {"open"},
}
# Inline styles keep their presentation (a centred table cell, a coloured word); nothing
# that loads or moves things (url(), position, background images) and nothing the W3C
# validator calls dangerous.
_FEED_STYLES = frozenset(
    {"text-align", "color", "font-weight", "font-style", "font-size", "text-decoration",
     "vertical-align", "white-space", "width", "height", "text-indent", "direction",
     "line-height", "list-style-type"}
)  # fmt: skip
# Email: no media players, no forms, no style attributes (the template's CSS is inlined).
_EMAIL_TAGS = (nh3.ALLOWED_TAGS - {"map", "area", "nav", "details", "summary"}) | {"iframe"}
_EMAIL_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "width", "height", "title"},
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "iframe": {"src"},
}
_DATA_URL = re.compile(r"\s*data:", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"\s*data:image/", re.IGNORECASE)


def _cleaner(**options: Any) -> nh3.Cleaner:
    return nh3.Cleaner(clean_content_tags=set(_ACTIVE), strip_comments=True, **options)


# What the feed cleaner's filter resolves relative URLs against during the clean() under
# way (the post's URL and the site's), or None to leave them: a context variable, so each
# thread has its own.
_BASE: ContextVar[tuple[str, str] | None] = ContextVar("feed_html_base", default=None)
_URL_ATTRIBUTE_NAMES = frozenset({"href", "src", "poster"})
_HAS_SCHEME = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*:")
# What the filter lets through once resolved: the schemes nh3 is told to keep.
_SAFE_URL = re.compile(rf"\s*(?:{'|'.join(sorted(_URL_SCHEMES))}):", re.IGNORECASE)
_IFRAME = re.compile(r"<iframe", re.IGNORECASE)


@lru_cache(maxsize=16)
def _feed_cleaner(hosts: frozenset[str]) -> nh3.Cleaner:
    """The feed allow-list, with a filter nh3 asks about every attribute it keeps: it
    resolves relative URLs (see :data:`_BASE`), keeps only images of the data: URLs and
    only the allowed hosts' iframe srcs (those iframes were made links before; this is
    the guarantee). nh3 checks URL schemes before it asks, not after: the filter lets
    nothing through but http(s), mailto, tel and relative URLs."""

    def keep(element: str, attribute: str, value: str) -> str | None:
        base = _BASE.get()
        if attribute == "srcset":  # candidates are only ever fetched as images
            return value if base is None else resolved_srcset(value, *base)
        if attribute not in _URL_ATTRIBUTE_NAMES:
            return value
        if _DATA_URL.match(value):  # a data:text/html link is a page of the sender's making
            return value if _DATA_IMAGE.match(value) else None
        if base is not None:
            value = resolved_ref(value, *base)
        if _HAS_SCHEME.match(value) and not _SAFE_URL.match(value):
            return None
        if element == "iframe" and attribute == "src" and not _allowed(value, hosts):
            return None
        return value

    return _cleaner(
        tags=_FEED_TAGS,
        attributes=_FEED_ATTRIBUTES,
        url_schemes=set(_URL_SCHEMES | {"data"}),
        link_rel=None,
        filter_style_properties=set(_FEED_STYLES),
        attribute_filter=keep,
    )


def sanitise_feed_html(
    fragment: str,
    iframe_hosts: frozenset[str] | tuple[str, ...],
    *,
    base_url: str | None = None,
    site_url: str | None = None,
) -> str:
    """``fragment`` as feed content: the author's HTML without active content, iframes
    kept only from ``iframe_hosts`` (lower-case host names). With ``base_url``, every
    relative href, src, srcset candidate and poster is made absolute in the same pass:
    '/x' against ``site_url`` (default ``base_url``), anything else against ``base_url``
    (a post's URL), '//h/x' with the site's scheme."""
    hosts = frozenset(iframe_hosts)
    base = None if base_url is None else (base_url, site_url or base_url)
    if _IFRAME.search(fragment):
        fragment = _iframes_as_links(fragment, hosts, base)
    token = _BASE.set(base)
    try:
        cleaned = _feed_cleaner(hosts).clean(fragment)
    finally:
        _BASE.reset(token)
    # nh3 writes references such as &#1; as the characters they stand for: XML-illegal ones
    # would stop the feed (lxml refuses them), so they go.
    return strip_xml_illegal(cleaned) if "&#" in fragment else cleaned


@lru_cache(maxsize=64)
def _email_cleaner(base_url: str) -> nh3.Cleaner:
    return _cleaner(
        tags=_EMAIL_TAGS,
        attributes=_EMAIL_ATTRIBUTES,
        url_schemes=set(_URL_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        link_rel="noopener noreferrer",
    )


def sanitise_email_html(fragment: str, base_url: str) -> str:
    """Post HTML safe to put in an email: no script, style, iframe, form, object, no event
    handlers or style attributes, no ``javascript:`` (only http, https, mailto, tel
    links); any relative URL left is made absolute against ``base_url``; an iframe
    becomes a link to what it showed."""
    cleaned = fragment
    if "<iframe" in fragment.lower():
        cleaned = _iframes_as_links(fragment, frozenset())
    cleaned = _email_cleaner(base_url).clean(cleaned)
    return strip_xml_illegal(cleaned) if "&#" in fragment else cleaned


def _allowed(src: str, hosts: frozenset[str]) -> bool:
    parts = urlsplit(src.strip())
    return parts.scheme.lower() in ("http", "https") and (parts.hostname or "") in hosts


def _iframes_as_links(
    fragment: str, hosts: frozenset[str], base: tuple[str, str] | None = None
) -> str:
    """Each iframe whose src is not on ``hosts`` replaced by a link to its http(s) src (in
    a paragraph of its own unless it is in one), or dropped without one; the allowed ones
    lose their fallback content. ``base``: the post's and the site's URL, which a
    relative src is resolved against first. nh3 cleans the result."""
    parser = etree.HTMLParser(remove_comments=False, remove_pis=False, no_network=True)
    root = etree.fromstring(f"<html><body>{fragment}</body></html>", parser)
    body = root.find("body") if root is not None else None
    if body is None:
        return fragment
    for iframe in list(body.iter("iframe")):
        for child in list(iframe):
            iframe.remove(child)
        iframe.text = None
        src = (iframe.get("src") or "").strip()
        if src and base is not None:
            src = resolved_ref(src, *base)
            iframe.set("src", src)
        if _allowed(src, hosts):
            continue
        replacement: Any = None
        if urlsplit(src).scheme.lower() in ("http", "https"):  # else nothing to link to
            replacement = etree.Element("a", href=src)
            replacement.text = src
            if next(iframe.iterancestors("p"), None) is None:
                paragraph = etree.Element("p")
                paragraph.append(replacement)
                replacement = paragraph
        _replace(iframe, replacement)
    serialized = etree.tostring(body, encoding="utf-8", method="html").decode("utf-8")
    return serialized[serialized.index(">") + 1 : serialized.rindex("</body>")]


def _replace(element: Any, replacement: Any) -> None:
    """``element`` replaced by ``replacement`` (or removed for None), its tail kept."""
    parent = element.getparent()
    tail = element.tail
    if replacement is not None:
        replacement.tail = tail
        parent.replace(element, replacement)
        return
    previous = element.getprevious()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
