"""Posts → RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes (pure: no files, no clock).

``feedsvc.feeds.plan`` decides which feeds exist and which posts each holds, from metadata
alone; ``render_feeds`` turns the plan into bytes. feedgen writes RSS and Atom; a small
feedgen extension (``_FeedFixups``/``_EntryFixups``) repairs what feedgen 1.0 gets
wrong and adds what it lacks:

- Atom entry links lose ``rel``/``type``/``length`` (upstream issue #135), which would
  turn the enclosure into a second alternate link;
- feedgen ties ``atom:id`` to the RSS guid, but a non-URI id needs a ``urn:uuid`` in Atom;
- per-entry ``xml:lang``; the RSS ``atom:link rel="hub"``; the version in RSS
  ``<generator>``.

JSON Feed is written by orjson, laid out as ``json.dumps(ensure_ascii=False, indent=2)``
would and byte for byte the same (:data:`JSON_OPTIONS`; the tests hold them together).
Categories and tags both become categories (RSS ``domain``/Atom ``scheme`` =
``{site.url}categories/`` or ``{site.url}tags/``) and JSON Feed ``tags``. Every date is
written to the second in ``site.timezone``'s offset at that moment (the instant as the
post gave it). A post in several feeds (site, categories, tags) has its parts built once
per call and shared (``_Shared``).

Content is the post's HTML as its render left it, sanitised for feeds then
(``content.sanitise``: no scripts, event handlers or ``javascript:`` URLs; iframes only
from ``feeds.iframe_hosts``; relative URLs made absolute). Summaries
and titles are plain text: Atom writes them as ``type="text"``, JSON as strings, and
RSS's ``<description>``, which readers take for HTML, as escaped HTML of the text
(``Promise<T>`` is ``Promise&lt;T&gt;`` there). An entry's author is its post's, else
``site.author``, else none; Atom's feed-level author (required when an entry has none)
is ``site.author``, else the site's title.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc import __version__
from feedsvc.config import FeedOptions
from feedsvc.content.posts import strip_xml_illegal
from feedsvc.feeds.plan import FeedSpec, feed_base_url
from feedsvc.models import Author, Post

FILE_NAMES: dict[str, str] = {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# An empty feed has no newest item; a fixed moment keeps its bytes deterministic.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

# ``(json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode()`` for what a feed
# holds (str, int, bool, None, lists and dicts with str keys), at a twentieth of the cost.
JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
_ATOM_NS = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# lxml refuses these (XML 1.0 Char production); lone surrogates cannot even be encoded.
# Characters kept as they are when an IRI becomes a URI: reserved ones and "%" (so an
# already-encoded URL is left alone).
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
# A language tag, as config.py accepts for site.language; anything else is not written.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
# Ids Atom can use as they are; anything else (a bare slug, "post:1") gets a urn:uuid.
_ABSOLUTE_ID = re.compile(r"^(?:https?://[^/\s]+|urn:[A-Za-z0-9][A-Za-z0-9-]*:|tag:)\S*$")
# RSS elements holding plain text, with an escaped '<' or '&' in it; the HTML in
# <description> and <content:encoded> is escaped as such, so never matches.
_RSS_TEXT = re.compile(rb"(<(?:title|category|dc:creator)\b[^>]*>)([^<]*&(?:amp|lt);[^<]*)(?=</)")
# A fixed table rather than `mimetypes`, whose answers depend on the host's files.
_IMAGE_TYPES = {
    "avif": "image/avif",
    "gif": "image/gif",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "webp": "image/webp",
}


@dataclass(frozen=True, slots=True)
class _Item:
    """A post's feed fields, cleaned once and shared by every feed that holds it."""

    guid: str
    guid_is_permalink: bool
    atom_id: str
    url: str
    title: str
    summary: str
    html: str
    published: datetime
    updated: datetime
    categories: tuple[tuple[str, str], ...]  # (term, scheme)
    author: Author | None
    lang: str | None
    image_url: str | None
    image_type: str
    image_length: int | None


@dataclass(slots=True)
class _Shared:
    """One post's parts for every feed holding it, each built on first use in one call."""

    item: _Item
    entry: _CachedEntry | None = None
    json: dict[str, Any] | None = None


def render_feeds(
    plan: Sequence[FeedSpec], posts: Mapping[str, Post], options: FeedOptions
) -> dict[str, bytes]:
    """Bytes of each feed file in ``options.formats``, keyed by path below the output dir."""
    shared: dict[str, _Shared] = {}
    files: dict[str, bytes] = {}
    for spec in plan:
        feed_items = []
        for post_id in spec.post_ids:
            if post_id not in shared:
                if post_id not in posts:
                    raise ValueError(f"feed {spec.path or '/'!r} names post {post_id!r}, not given")
                shared[post_id] = _Shared(_item(posts[post_id], options))
            feed_items.append(shared[post_id])
        updated = max(
            (s.item.updated for s in feed_items),
            default=EMPTY_FEED_UPDATED.astimezone(_zone(options.timezone)),
        )
        formats = options.formats
        generator: Any = None
        if "rss" in formats or "atom" in formats:  # one feedgen object serves both
            generator = _feedgen(spec, feed_items, updated, options)
        for fmt in formats:
            name = spec.path + FILE_NAMES[fmt]
            if fmt == "json":
                files[name] = _json_feed(spec, feed_items, options)
            elif fmt == "rss":
                files[name] = _rss_text_references(generator.rss_str(pretty=True))
            else:
                files[name] = generator.atom_str(pretty=True)
    return files


def _rss_text_references(rss: bytes) -> bytes:
    """RSS with '<' and '&' in plain-text elements (titles, categories, creators) written
    as the hexadecimal references the RSS Profile asks for (``&#x3C;``, ``&#x26;``): the
    same text to an XML parser, and the W3C validator then knows it is not HTML."""
    if b"&" not in rss:
        return rss
    return _RSS_TEXT.sub(_hex_references, rss)


def _hex_references(match: re.Match[bytes]) -> bytes:
    return match.group(1) + match.group(2).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")


def _uri(iri: str) -> str:
    """``iri`` as a URI: non-ASCII and unsafe characters percent-encoded (idempotent)."""
    return quote(strip_xml_illegal(iri), safe=_URI_SAFE)


def _author(author: Author | None, options: FeedOptions) -> Author | None:
    """``author`` if it has a name, else ``site.author`` if set, else None; cleaned for XML."""
    if author is None or not author.name.strip():
        if not options.author_name:
            return None
        author = Author(options.author_name, options.author_email)
    return Author(
        strip_xml_illegal(author.name), strip_xml_illegal(author.email) if author.email else None
    )


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _local(moment: datetime, post_id: str, zone: tzinfo) -> datetime:
    """``moment`` to the second, in ``zone``'s offset (the same instant)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"post {post_id!r} has a date without time zone: {moment.isoformat()}")
    return moment.astimezone(zone).replace(microsecond=0)


def _item(post: Post, options: FeedOptions) -> _Item:
    meta = post.meta
    base = feed_base_url(options)
    guid = _uri(meta.id) if meta.id_is_url else strip_xml_illegal(meta.id)
    if _ABSOLUTE_ID.match(guid):
        atom_id = _uri(guid)
    else:  # Atom ids must be absolute IRIs; derive a stable one from site and id.
        atom_id = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, base + "#" + meta.id))
    zone = _zone(options.timezone)
    published = _local(meta.published, meta.id, zone)
    # An edit cannot predate the post; readers sort on updated.
    updated = max(published, _local(meta.updated, meta.id, zone))
    category_scheme, tag_scheme = _uri(base + "categories/"), _uri(base + "tags/")
    categories = tuple((strip_xml_illegal(c), category_scheme) for c in meta.categories)
    tags = tuple((strip_xml_illegal(t), tag_scheme) for t in meta.tags)
    image = meta.image
    image_type = "application/octet-stream"
    if image is not None:
        extension = image.url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
        image_type = image.media_type or _IMAGE_TYPES.get(extension, image_type)
    title = strip_xml_illegal(meta.title) or meta.slug or meta.url  # Atom entries must have a title
    return _Item(
        guid=guid,
        guid_is_permalink=meta.id_is_url,
        atom_id=atom_id,
        url=_uri(meta.url),
        title=title,
        # RSS needs a description before content:encoded; an empty one would swap them.
        summary=strip_xml_illegal(post.summary) or title,
        html=strip_xml_illegal(post.html),  # sanitised for feeds when it was rendered
        published=published,
        updated=updated,
        categories=tuple(c for c in categories + tags if c[0]),
        author=_author(meta.author, options),
        lang=meta.lang if meta.lang and _LANGUAGE.match(meta.lang) else None,
        image_url=_uri(image.url) if image is not None else None,
        image_type=image_type,
        image_length=image.length if image is not None else None,
    )


class _FeedFixups(BaseExtension):  # type: ignore[misc]
    """Fixes the RSS channel: its own self link, the hub link, the generator version."""

    def __init__(self) -> None:
        self.rss_url = ""
        self.hub: str | None = None

    def extend_rss(self, rss: Any) -> Any:
        channel = rss.find("channel")
        self_link = channel.find(f"{{{_ATOM_NS}}}link")
        self_link.set("href", self.rss_url)
        self_link.set("type", "application/rss+xml")
        channel.find("generator").text = f"feedsvc {__version__}"
        if self.hub:
            etree.SubElement(channel, f"{{{_ATOM_NS}}}link", href=self.hub, rel="hub")
        return rss


class _CachedEntry(FeedEntry):  # type: ignore[misc]
    """A feedgen entry that builds its ``<item>``/``<entry>`` once, not once per feed.

    feedgen moves what it gets into the feed, so each call hands out a copy.
    """

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[tuple[str, bool], Any] = {}

    def rss_entry(self, extensions: bool = True) -> Any:
        return self._copy("rss", extensions)

    def atom_entry(self, extensions: bool = True) -> Any:
        return self._copy("atom", extensions)

    def _copy(self, fmt: str, extensions: bool) -> Any:
        if (fmt, extensions) not in self._built:
            build = super().rss_entry if fmt == "rss" else super().atom_entry
            self._built[fmt, extensions] = build(extensions)
        return self._built[fmt, extensions].__copy__()  # lxml: a deep copy


class _EntryFixups(BaseEntryExtension):  # type: ignore[misc]
    """Rewrites an Atom entry's id, link attributes and language (see module docstring)."""

    def __init__(self) -> None:
        self.item: _Item | None = None

    def extend_atom(self, entry: Any) -> Any:
        item = self.item
        assert item is not None
        entry.find("id").text = item.atom_id
        links = entry.findall("link")
        links[0].set("rel", "alternate")
        links[0].set("type", "text/html")
        if item.image_url is not None:
            links[1].set("rel", "enclosure")
            links[1].set("type", item.image_type)
            if item.image_length is not None:
                links[1].set("length", str(item.image_length))
        if item.lang:
            entry.set(_XML_LANG, item.lang)
        return entry


def _feedgen(spec: FeedSpec, items: list[_Shared], updated: datetime, options: FeedOptions) -> Any:
    title = strip_xml_illegal(spec.title)
    base = feed_base_url(options) + spec.path
    fg = FeedGenerator()
    # register_extension, as load_extension does, minus its failing import of a
    # feedgen.ext.*_entry module per feed (a search of the whole import path each time).
    fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
    fg.register_extension("media", MediaExtension, MediaEntryExtension, atom=True, rss=True)
    fg.register_extension("feedsvc", _FeedFixups, _EntryFixups, atom=True, rss=True)
    fg.id(_uri(base + FILE_NAMES["atom"]))
    fg.title(title)
    fg.description(strip_xml_illegal(spec.description) or title)
    fg.language(options.language)
    fg.generator("feedsvc", version=__version__)
    fg.updated(updated)  # also lastBuildDate; feedgen's default is "now"
    # Atom needs a feed-level author for entries without one: the site's, else its title.
    author = _author(None, options) or Author(title)
    fg.author(name=author.name, **({"email": author.email} if author.email else {}))
    if author.email:
        fg.managingEditor(f"{author.email} ({author.name})")
    # One generator serves both formats; _FeedFixups points RSS's self link at feed.xml.
    fg.link(href=_uri(base + FILE_NAMES["atom"]), rel="self", type="application/atom+xml")
    fg.feedsvc.rss_url = _uri(base + FILE_NAMES["rss"])
    if options.websub_hub:
        fg.link(href=_uri(options.websub_hub), rel="hub")
        fg.feedsvc.hub = _uri(options.websub_hub)
    # Last: feedgen's RSS <link> is the last link added.
    fg.link(href=_uri(options.site_url), rel="alternate", type="text/html")
    # add_entry prepends by default, which would reverse our newest-first order. Every
    # feed loads the same extensions, so a shared entry already has them (feedgen skips
    # them with ImportError "already loaded").
    for post in items:
        if post.entry is None:
            post.entry = fg.add_entry(_CachedEntry(), order="append")
            _fill_entry(post.entry, post.item)
        else:
            fg.add_entry(post.entry, order="append")
    return fg


def _fill_entry(fe: Any, item: _Item) -> None:
    fe.feedsvc.item = item
    fe.title(item.title)
    fe.guid(item.guid, permalink=item.guid_is_permalink)
    fe.link(href=item.url, rel="alternate")
    if item.image_url is not None:
        length = str(item.image_length) if item.image_length is not None else "0"
        fe.enclosure(item.image_url, length, item.image_type)  # RSS demands a length
        fe.media.thumbnail(url=item.image_url, group=None)  # group=None: no <media:group>
    fe.published(item.published)
    fe.updated(item.updated)
    fe.summary(item.summary)  # Atom: type="text"
    fe.description(html.escape(item.summary, quote=False))  # RSS: HTML, so the text escaped
    fe.content(item.html, type="html")  # escaped text, never CDATA ("]]>" would end it)
    author = item.author
    if author is not None and author.email:
        fe.author(name=author.name, email=author.email)
    elif author is not None:  # RSS <author> must be an email address
        fe.author(name=author.name)
        fe.dc.dc_creator(author.name)
    if item.lang:
        fe.dc.dc_language(item.lang)
    if item.categories:
        fe.category([{"term": term, "scheme": scheme} for term, scheme in item.categories])


def _json_feed(spec: FeedSpec, items: list[_Shared], options: FeedOptions) -> bytes:
    title = strip_xml_illegal(spec.title)
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": title,
        "home_page_url": _uri(options.site_url),
        "feed_url": _uri(feed_base_url(options) + spec.path + FILE_NAMES["json"]),
        "description": strip_xml_illegal(spec.description) or title,
        "language": options.language,
    }
    site_author = _author(None, options)
    if site_author is not None:
        feed["authors"] = [_json_author(site_author)]
    if options.websub_hub:
        feed["hubs"] = [{"type": "WebSub", "url": _uri(options.websub_hub)}]
    for post in items:
        if post.json is None:
            post.json = _json_item(post.item)
    feed["items"] = [post.json for post in items]
    return orjson.dumps(feed, option=JSON_OPTIONS)


def _json_item(item: _Item) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": item.guid,
        "url": item.url,
        "title": item.title,
        "content_html": item.html,
        "summary": item.summary,
    }
    if item.image_url is not None:
        entry["image"] = item.image_url
    entry["date_published"] = item.published.isoformat()
    entry["date_modified"] = item.updated.isoformat()
    # Categories and tags are one list here; a term used as both appears once.
    tags = list(dict.fromkeys(term for term, _ in item.categories))
    if tags:
        entry["tags"] = tags
    if item.author is not None:
        entry["authors"] = [_json_author(item.author)]
    if item.lang:
        entry["language"] = item.lang
    return entry


def _json_author(author: Author) -> dict[str, str]:
    # JSON Feed authors have no email field; its spec allows a mailto: url instead.
    result = {"name": author.name}
    if author.email:
        result["url"] = "mailto:" + _uri(author.email)
    return result
