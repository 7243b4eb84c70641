"""Post HTML made safe for where it goes (pure): feed content and email, one sanitiser
(nh3, html5ever's parser) with an allow-list for each.

Both take out active content: ``<script>``, ``<style>`` and the like with what they hold,
event handler attributes (``on…``; only listed attributes are kept), ``javascript:``,
``vbscript:`` and ``data:`` URLs (but ``data:image/…``, which feeds keep) and comments.
Text stays text: ``Promise&lt;T&gt;`` comes out as it went in.

An ``<iframe>`` stays in a feed only when its ``src`` is an http(s) URL on one of the
hosts given (``feeds.iframe_hosts``: video players); any other becomes a paragraph with a
link to its ``src``, and one without a ``src`` goes. Email clients show no iframe at all,
so in email each becomes that link.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from urllib.parse import urlsplit

import nh3

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
    "*": {"lang", "dir", "title", "class"},
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
# Email: no media players, no forms, no style attributes (the template's CSS is inlined).
_EMAIL_TAGS = (nh3.ALLOWED_TAGS - {"map", "area", "nav", "details", "summary"}) | {"iframe"}
_EMAIL_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "width", "height", "title"},
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "iframe": {"src"},
}
# What nh3 writes for an iframe: attributes double-quoted; the content is raw text that
# cannot hold "</iframe" (html5ever ends it there), and is dropped with the element.
_IFRAME = re.compile(r"<iframe\b([^>]*)>.*?</iframe>", re.DOTALL)
_SRC = re.compile(r'\ssrc="([^"]*)"')
_DATA_URL = re.compile(r"\s*data:", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"\s*data:image/", re.IGNORECASE)


def _keep_data_images(element: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: of ``data:`` URLs only images stay (a ``data:text/html``
    link is a page of the sender's making)."""
    if _DATA_URL.match(value) and not _DATA_IMAGE.match(value):
        return None
    return value


def _cleaner(**options: object) -> nh3.Cleaner:
    return nh3.Cleaner(
        clean_content_tags=set(_ACTIVE),
        strip_comments=True,
        **options,  # type: ignore[arg-type]
    )


_FEED = _cleaner(
    tags=_FEED_TAGS, attributes=_FEED_ATTRIBUTES, url_schemes=set(_URL_SCHEMES), link_rel=None
)
# Only for HTML that holds "data:": nh3 calls the filter for every attribute.
_FEED_DATA = _cleaner(
    tags=_FEED_TAGS,
    attributes=_FEED_ATTRIBUTES,
    url_schemes=set(_URL_SCHEMES | {"data"}),
    link_rel=None,
    attribute_filter=_keep_data_images,
)


def sanitise_feed_html(fragment: str, iframe_hosts: frozenset[str] | tuple[str, ...]) -> str:
    """``fragment`` as feed content: the author's HTML without active content, iframes
    kept only from ``iframe_hosts`` (lower-case host names)."""
    cleaner = _FEED_DATA if "data:" in fragment.lower() else _FEED
    clean = cleaner.clean(fragment)
    if "<iframe" not in clean:
        return clean
    hosts = frozenset(iframe_hosts)
    return _IFRAME.sub(lambda match: _iframe(match, hosts), clean)


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
    clean = _email_cleaner(base_url).clean(fragment)
    if "<iframe" not in clean:
        return clean
    rel = 'rel="noopener noreferrer" '
    return _IFRAME.sub(lambda match: _iframe(match, frozenset(), rel), clean)


def _iframe(match: re.Match[str], hosts: frozenset[str], rel: str = "") -> str:
    """An iframe as nh3 wrote it: kept (without its fallback content) when its src is on
    an allowed host, else a link to its src (in a paragraph of its own unless it is in
    one already), else nothing."""
    attributes = match.group(1)
    src = _SRC.search(attributes)
    if src is None or not src.group(1):
        return ""
    parts = urlsplit(html.unescape(src.group(1)))
    if parts.scheme in ("http", "https") and (parts.hostname or "") in hosts:
        return f"<iframe{attributes}></iframe>"
    link = f'<a {rel}href="{src.group(1)}">{src.group(1)}</a>'
    before = match.string[: match.start()]
    in_paragraph = max(before.rfind("<p>"), before.rfind("<p ")) > before.rfind("</p>")
    return link if in_paragraph else f"<p>{link}</p>"
