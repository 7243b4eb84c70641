"""Source files → post metadata: front matter, fields, dates, slugs, ids, URLs.

Pure: bytes in, values out (no file system, no database). ``parse_source`` reads what a
file says; ``to_meta`` adds what the site decides (first-seen date, permalink, URL, id).
Every string leaving here is free of XML-illegal characters. The parts: ``front_matter``
(bytes → text → mapping + body), ``fields`` (mapping → typed values), ``dates``,
``plaintext`` (XML-clean and one-line text), ``urls``.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from feedsvc.config import ParseOptions
from feedsvc.content.dates import date_in_name, name_prefix_date
from feedsvc.content.fields import CATEGORY_KEYS, DATE_KEYS, TAG_KEYS, UPDATED_KEYS, Fields
from feedsvc.content.front_matter import decode_source, split_front_matter
from feedsvc.content.html_tags import escape_text_tags
from feedsvc.content.plaintext import html_to_text, one_line, strip_xml_illegal
from feedsvc.content.urls import (
    absolute_url,
    jekyll_feed_id,
    jekyll_name_slug,
    permalink_for,
    quote_url,
    tag_uri,
    url_path,
)
from feedsvc.errors import ContentError
from feedsvc.models import Author, DateSource, Image, Message, PostMeta, Problem, Severity

# Other modules take these from here, where posts are read.
__all__ = ["ParsedSource", "html_to_text", "parse_source", "strip_xml_illegal", "to_meta"]

_HTML_START = re.compile(
    r"\s*<(?:!--|(?:p|div|h[1-6]|img|table|ul|ol|figure|article|section|blockquote|pre)"
    r"(?=[\s/>]))",
    re.IGNORECASE,
)
_MD_H1 = re.compile(
    r"^ {0,3}#[ \t]+([^\n]+?)(?:[ \t]+#+)?[ \t]*$"  # ATX: # Title
    r"|^ {0,3}(\S[^\n]*)\n {0,3}=+[ \t]*$"  # setext: Title / ===
    r"|(?s:<h1\b[^>]*>(.*?)</h1\s*>)",
    re.MULTILINE | re.IGNORECASE,
)
_HTML_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"^ {0,3}(?:```|~~~)", re.MULTILINE)
_MD_INLINE = re.compile(r"\[([^\]]*)\]\([^)]*\)|\*\*|\*|`")


# Not frozen: a frozen dataclass sets each of its 18 fields through object.__setattr__,
# ~2 µs a file; nothing changes a ParsedSource after it is made.
@dataclass(slots=True)
class ParsedSource:
    """What one source file says about itself; strings already XML-clean."""

    path: str
    title: str
    slug: str
    date: datetime | None
    date_source: DateSource | None
    updated: datetime | None
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    author: Author | None
    lang: str | None
    image: str | None
    excerpt: str | None
    permalink: str | None
    id: str | None
    draft: bool
    body: str
    body_line: int
    body_format: Literal["markdown", "html"]
    own_slug: str | None = None  # the front matter's slug: as written (Jekyll's ids)
    order: float | str | None = None  # the content.order_by key's value
    warnings: tuple[Problem, ...] = ()  # read, but worth the author's attention
    # The front matter, kept only for a body that may use it ({{ page.X }} in Liquid).
    page: dict[str, Any] | None = None


def parse_source(path: str, data: bytes, options: ParseOptions) -> ParsedSource:
    """Read one source file; raises ContentError saying what is wrong and what to do."""
    text = decode_source(path, data, options)
    fields, fm, fm_line, body, body_line = split_front_matter(path, text)
    field = Fields(path, fields, fm, fm_line)
    name = path.rpartition("/")[2]
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    tz = ZoneInfo(options.timezone)
    prefix_date, bare_stem = name_prefix_date(stem, tz)
    ext = ext.lower()
    if ext in ("html", "htm"):
        body_format: Literal["markdown", "html"] = "html"
    elif ext in ("md", "markdown"):
        body_format = "markdown"
    else:
        body_format = "html" if _HTML_START.match(body) else "markdown"

    title = field.text("title", allow_bool=False) or _heading(body, body_format) or bare_stem
    slug = field.slug(bare_stem)
    when = _front_matter_date(field, prefix_date, name, tz)
    date_source: DateSource | None = "front_matter"
    if when is None:
        when = prefix_date or date_in_name(name, tz)
        date_source = "file_name" if when is not None else None
    published_flag = fields.get("published")
    # Positional, in field order (which is also the order errors are found in): 18
    # keyword arguments cost 2 µs a file on their own.
    return ParsedSource(
        path,
        one_line(title),
        slug,
        when,
        date_source,
        field.date(UPDATED_KEYS, tz),  # updated
        field.terms(CATEGORY_KEYS),
        field.terms(TAG_KEYS),
        field.author(),
        field.text("lang", allow_bool=False),
        field.image(),
        field.excerpt(),
        field.permalink(),
        field.text("id", allow_bool=True),
        field.flag("draft") or published_flag is False,  # draft
        body,
        body_line,
        body_format,
        field.text("slug", allow_bool=False) if "slug" in fields else None,
        field.order(options.order_by) if options.order_by else None,
        tuple(field.warnings),
        # {{ page.X }} reads the front matter; only a Liquid site looks (a substring
        # search of every Korean body costs ~10 µs).
        fields if options.liquid.enabled and "page." in body else None,
    )


def _front_matter_date(
    field: Fields, prefix_date: datetime | None, name: str, tz: ZoneInfo
) -> datetime | None:
    """The front matter's date. One that cannot be read stops the post, unless the file
    name has a date: then the post is published with that, and a warning."""
    try:
        return field.date(DATE_KEYS, tz)
    except ContentError as exc:
        name_date = prefix_date or date_in_name(name, tz)
        if name_date is None:
            raise
        warning = Message.of(
            "content.date_from_name",
            "%(problem)s; the post is published with the date in its file name (%(date)s) "
            "until it is fixed",
            problem=exc.message or exc.reason,
            date=name_date.date().isoformat(),
        )
        field.warnings.append(Problem.of(exc.path, warning, exc.line, Severity.WARNING))
        return None


def _heading(body: str, body_format: str) -> str | None:
    if body_format == "html":
        match = _HTML_H1.search(body)
        if match is None:
            return None
        return one_line(html_to_text(escape_text_tags(match.group(1)))) or None
    for match in _MD_H1.finditer(body):
        if len(_FENCE.findall(body, 0, match.start())) % 2:
            continue  # a '# comment' inside a fenced code block is not a heading
        markdown = match.group(1) or match.group(2)
        if markdown is not None:
            markdown = _MD_INLINE.sub(lambda m: m.group(1) or "", markdown)
        # Promise<T> is text (html_tags), not a tag for html_to_text to drop.
        heading = escape_text_tags(markdown if markdown is not None else match.group(3))
        title = one_line(html_to_text(heading))
        if title:
            return title
    return None


def _unknown_size(url: str) -> int | None:
    return None


def to_meta(
    parsed: ParsedSource,
    options: ParseOptions,
    *,
    first_seen: datetime | None,
    asset_size: Callable[[str], int | None] = _unknown_size,
) -> PostMeta:
    """The post's metadata: dates settled, permalink, absolute URL, stable id, image."""
    date_source: DateSource
    if parsed.date is not None:
        published, date_source = parsed.date, parsed.date_source or "front_matter"
    elif first_seen is not None:
        if first_seen.tzinfo is None:
            raise ValueError("first_seen must be timezone-aware")
        published, date_source = first_seen, "first_seen"
    else:
        raise ValueError(f"{parsed.path}: no date in the file; pass first_seen")
    updated = max(parsed.updated or published, published)
    site_url = options.site_url
    tz = ZoneInfo(options.timezone)
    permalink = permalink_for(
        parsed.permalink or options.permalink,
        published=published,
        slug=parsed.slug,
        title=parsed.title,
        categories=parsed.categories,
        tz=tz,
        path=parsed.path,
        own_slug=parsed.own_slug is not None,
        strict=parsed.permalink is None,
    )
    url = site_url + quote_url(permalink[1:])
    if parsed.id is not None:
        post_id = parsed.id
    elif options.id_style == "jekyll-feed":
        raw_slug = parsed.own_slug or jekyll_name_slug(parsed.path)
        post_id = site_url + quote_url(jekyll_feed_id(permalink, raw_slug)[1:])
    elif options.id_style == "tag":
        if first_seen is None:
            raise ValueError(f"{parsed.path}: a tag: id is dated by first_seen; pass it")
        post_id = tag_uri(url, site_url, first_seen.astimezone(tz).date())
    else:
        post_id = url
    image = None
    if parsed.image:
        image_url = quote_url(absolute_url(parsed.image, url, site_url))
        media_type = mimetypes.guess_type(url_path(image_url, site_url))[0]
        image = Image(image_url, media_type, asset_size(image_url))
    # Positional, in field order: keyword arguments would cost more than the rest here.
    return PostMeta(
        post_id,
        parsed.slug,
        url,
        parsed.path,  # source
        parsed.title,
        published,
        updated,
        date_source,
        parsed.categories,
        parsed.tags,
        parsed.author,
        parsed.lang,
        image,
        parsed.excerpt,
        parsed.draft,
        parsed.order,
    )
