"""Source files → post metadata: front matter, fields, dates, slugs, ids, URLs.

Pure: bytes in, values out (no file system, no database). ``parse_source`` reads what a
file says; ``to_meta`` adds what the site decides (first-seen date, permalink, URL, id).
Every string leaving here is free of XML-illegal characters.
"""

from __future__ import annotations

import functools
import html
import mimetypes
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from feedsvc.config import Settings
from feedsvc.errors import ContentError
from feedsvc.front_matter import DATE_HELP, decode_source, split_front_matter
from feedsvc.models import Author, DateSource, Image, PostMeta
from feedsvc.urls import absolute_url, permalink_for, quote_url, slugify

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_LINE_BREAK = re.compile(r"\r\n?|\n")
_NOT_ONE_LINE = re.compile("[\x00-\x08\x0a-\x1f\ufffe\uffff\ud800-\udfff]")
_TERM_SPLIT = re.compile(r"[,\s]+")
_SCALAR = (str, int, float)
_DATE_PREFIX = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:-|$)")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(\d\d)-(\d\d)(?!\d)")
_DATE_TEXT = re.compile(
    r"(\d{4})[-/](\d\d?)[-/](\d\d?)"
    r"(?:[T ](\d\d?):(\d\d)(?::(\d\d)(?:[.,](\d{1,6})\d*)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?",
    re.IGNORECASE,
)
_UNSAFE_PERMALINK = re.compile(r"\.\.|\\|^//|^[A-Za-z][A-Za-z0-9+.-]*:|[\x00-\x20\x7f]")
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
_TAG_DROP = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_BLOCK = re.compile(
    r"</?(?:p|div|h[1-6]|li|ul|ol|dl|dt|dd|table|thead|tbody|tr|td|th|blockquote|pre|"
    r"section|article|aside|header|footer|nav|figure|figcaption|br|hr)\b[^>]*>",
    re.IGNORECASE,
)
_TAG_ANY = re.compile(r"</?[A-Za-z][^>]*>|<![^>]*>|<\?[^>]*>")
_DATE_KEYS = ("date", "pubDate", "published", "created")
_UPDATED_KEYS = ("updated", "lastmod", "modified")
_EXCERPT_KEYS = ("excerpt", "description", "summary")
_IMAGE_KEYS = ("image", "feature_image", "cover")


@dataclass(frozen=True, slots=True)
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


def strip_xml_illegal(text: str) -> str:
    """``text`` without C0 controls (except tab, LF, CR), U+FFFE, U+FFFF and surrogates."""
    return _XML_ILLEGAL.sub("", text)


def _one_line(text: str) -> str:
    """XML-clean, with CR/LF as spaces: these values reach mail headers."""
    if _NOT_ONE_LINE.search(text) is None:  # the usual case, one scan
        return text.strip()
    return _XML_ILLEGAL.sub("", _LINE_BREAK.sub(" ", text)).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:  # already plain (most excerpts)
        return strip_xml_illegal(" ".join(fragment.split()))
    text = _TAG_ANY.sub("", _TAG_BLOCK.sub(" ", _TAG_DROP.sub(" ", fragment)))
    return strip_xml_illegal(" ".join(html.unescape(text).split()))


def parse_source(path: str, data: bytes, settings: Settings) -> ParsedSource:
    """Read one source file; raises ContentError saying what is wrong and what to do."""
    text = decode_source(path, data, settings)
    fields, fm, fm_line, body, body_line = split_front_matter(path, text)
    field = _Fields(path, fields, fm, fm_line)
    name = path.rpartition("/")[2]
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    tz = ZoneInfo(settings.site.timezone)
    prefix = _DATE_PREFIX.match(stem)
    prefix_date = _name_date(prefix, tz) if prefix is not None else None
    bare_stem = stem
    if prefix is not None and prefix_date is not None and prefix.end() < len(stem):
        bare_stem = stem[prefix.end() :]
    ext = ext.lower()
    if ext in ("html", "htm"):
        body_format: Literal["markdown", "html"] = "html"
    elif ext in ("md", "markdown"):
        body_format = "markdown"
    else:
        body_format = "html" if _HTML_START.match(body) else "markdown"

    title = field.text("title", allow_bool=False) or _heading(body, body_format) or bare_stem
    slug = _slug(field, bare_stem)
    when = field.date(_DATE_KEYS, tz)
    date_source: DateSource | None = "front_matter"
    if when is None:
        when = prefix_date or _date_in_name(name, tz)
        date_source = "file_name" if when is not None else None
    published_flag = fields.get("published")
    return ParsedSource(
        path=path,
        title=_one_line(title),
        slug=slug,
        date=when,
        date_source=date_source,
        updated=field.date(_UPDATED_KEYS, tz),
        categories=field.terms(("categories", "category")),
        tags=field.terms(("tags",)),
        author=field.author(),
        lang=field.text("lang", allow_bool=False),
        image=field.image(),
        excerpt=field.excerpt(),
        permalink=field.permalink(),
        id=field.text("id", allow_bool=True),
        draft=field.flag("draft") or published_flag is False,
        body=body,
        body_line=body_line,
        body_format=body_format,
    )


class _Fields:
    """Typed access to front-matter fields; wrong types become ContentErrors naming the key."""

    __slots__ = ("fm", "fm_line", "path", "values")

    def __init__(self, path: str, values: dict[str, Any], fm: str, fm_line: int) -> None:
        self.path, self.values, self.fm, self.fm_line = path, values, fm, fm_line

    def first(self, keys: Iterable[str]) -> tuple[str, Any]:
        for key in keys:
            value = self.values.get(key)
            if value is not None:
                return key, value
        return "", None

    def fail(self, key: str, reason: str) -> ContentError:
        found = re.search(
            rf"^[ \t]*(?:['\"]?{re.escape(key)}['\"]?[ \t]*[:=]|\[{re.escape(key)}\])",
            self.fm,
            re.MULTILINE,
        )
        line = self.fm_line + self.fm.count("\n", 0, found.start()) if found else None
        return ContentError(self.path, f"'{key}' {reason}", line)

    def wrong_type(self, key: str, value: object, expected: str) -> ContentError:
        return self.fail(key, f"must be {expected}, not {_describe(value)}; fix its value")

    def text(self, key: str, *, allow_bool: bool = True) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and not allow_bool:
            raise self.fail(key, f"is {value} (YAML reads yes/no/on/off as true/false); quote it")
        if isinstance(value, str):
            return _one_line(value) or None
        if isinstance(value, int | float | date):
            return _one_line(str(value)) or None
        raise self.wrong_type(key, value, "text")

    def terms(self, keys: Sequence[str]) -> tuple[str, ...]:
        key, value = self.first(keys)
        if value is None:
            return ()
        if isinstance(value, str):
            items: list[object] = list(_TERM_SPLIT.split(value))
        elif isinstance(value, list):
            try:  # the usual case, a list of clean names, checked in one scan
                clean = _NOT_ONE_LINE.search("".join(value)) is None
            except TypeError:  # an item is not text
                clean = False
            if clean:
                return tuple(dict.fromkeys(term for item in value if (term := item.strip())))
            items = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            items = [value]
        else:
            raise self.wrong_type(key, value, "a list or a comma-separated string")
        cleaned: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, _SCALAR):
                raise self.wrong_type(key, item, "a list of names (each item text)")
            term = _one_line(item if isinstance(item, str) else str(item))
            if term:
                cleaned.append(term)
        return tuple(dict.fromkeys(cleaned))

    def date(self, keys: Sequence[str], tz: tzinfo) -> datetime | None:
        for key in keys:
            value = self.values.get(key)
            if value is None or (key == "published" and isinstance(value, bool)):
                continue
            moment = _to_datetime(value, tz)
            if moment is None:
                raise self.fail(key, f"value {_shown(value)} is not a date; {DATE_HELP}")
            if not 1 < moment.year < 9999:  # keeps time zone arithmetic from overflowing
                raise self.fail(key, f"value {_shown(value)} is out of range; use a real date")
            return moment
        return None

    def author(self) -> Author | None:
        value = self.values.get("author")
        if value is None:
            return None
        if isinstance(value, str):
            name = _one_line(value)
            return Author(name) if name else None
        if isinstance(value, dict):
            raw_name, raw_email = value.get("name"), value.get("email")
            if not isinstance(raw_name, str | None) or not isinstance(raw_email, str | None):
                raise self.wrong_type("author", value, "a name, or name: and email: text")
            email = _one_line(raw_email or "") or None
            shown = _one_line(raw_name or "") or email
            return Author(shown, email) if shown else None
        raise self.wrong_type("author", value, "a name or a mapping with name: and email:")

    def image(self) -> str | None:
        key, value = self.first(_IMAGE_KEYS)
        if isinstance(value, dict):
            value = value.get("path") or value.get("url")
            if not isinstance(value, str):
                raise self.wrong_type(key, value, "a mapping whose path: or url: is text")
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong_type(key, value, "a URL or path (text)")
        return _one_line(value) or None

    def excerpt(self) -> str | None:
        key, value = self.first(_EXCERPT_KEYS)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong_type(key, value, "text")
        return html_to_text(value) or None

    def permalink(self) -> str | None:
        value = self.text("permalink", allow_bool=False)
        if value is not None and (not value.startswith("/") or _UNSAFE_PERMALINK.search(value)):
            raise self.fail(
                "permalink",
                f"value {value!r} must be a path on this site: start with '/', no '..', "
                "no '\\', no scheme or host, no spaces (for example /2024/my-post/)",
            )
        return value

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
            return value.strip().lower() in ("true", "yes")
        raise self.wrong_type(key, value, "true or false")


def _describe(value: object) -> str:
    kinds = {dict: "a mapping", list: "a list", bool: "true/false", type(None): "empty"}
    return kinds.get(type(value), f"{type(value).__name__} {_shown(value)}")


def _shown(value: object) -> str:
    shown = repr(value if isinstance(value, str) else str(value))
    return shown if len(shown) <= 60 else shown[:57] + "…"


def _slug(field: _Fields, bare_stem: str) -> str:
    raw = field.text("slug", allow_bool=False)
    if raw is not None and (".." in raw or "/" in raw or "\\" in raw):
        raise field.fail(
            "slug", f"value {raw!r} is unsafe ('..', '/' or '\\'); use a plain slug like my-post"
        )
    slug = slugify(raw if raw is not None else bare_stem)
    if not slug:
        source = "'slug'" if raw is not None else f"the file name {bare_stem!r}"
        raise ContentError(
            field.path,
            f"{source} has no letters or digits to make a URL slug; "
            "add a 'slug:' with letters or digits to the front matter",
        )
    return slug


def _heading(body: str, body_format: str) -> str | None:
    if body_format == "html":
        match = _HTML_H1.search(body)
        if match is None:
            return None
        return _one_line(html_to_text(match.group(1))) or None
    for match in _MD_H1.finditer(body):
        if len(_FENCE.findall(body, 0, match.start())) % 2:
            continue  # a '# comment' inside a fenced code block is not a heading
        markdown = match.group(1) or match.group(2)
        if markdown is not None:
            markdown = _MD_INLINE.sub(lambda m: m.group(1) or "", markdown)
        title = _one_line(html_to_text(markdown if markdown is not None else match.group(3)))
        if title:
            return title
    return None


def _to_datetime(value: object, tz: tzinfo) -> datetime | None:
    """A YAML/TOML date or a date string as an aware datetime; None if it is no date."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)  # C-fast; 3.11 also takes "... 18:59:00 +0900"
    except ValueError:
        loose = _loose_datetime(text, tz)
        if loose is None:
            return None
        moment = loose
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _loose_datetime(text: str, tz: tzinfo) -> datetime | None:
    """2024/1/2 10:00, ... 10:00 UTC, RFC 2822 (as in RSS): forms ISO parsing refuses."""
    match = _DATE_TEXT.fullmatch(text)
    try:
        if match is None:
            return parsedate_to_datetime(text)
        y, mo, d, h, mi, s, frac, zone = match.groups()
        zone_info = tz if zone is None else _fixed_zone(zone.upper())
        micro = int((frac or "0").ljust(6, "0"))
        return datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, zone_info
        )
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@functools.lru_cache(maxsize=64)
def _fixed_zone(zone: str) -> tzinfo:
    """'Z', 'UTC', '+0900', '-05:30' → tzinfo (cached: a blog uses one or two)."""
    if zone in ("Z", "UTC", "GMT"):
        return UTC
    minutes = int(zone[1:3]) * 60 + (int(zone[-2:]) if len(zone) > 3 else 0)
    return timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))


def _name_date(match: re.Match[str], tz: tzinfo) -> datetime | None:
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=tz)
    except ValueError:
        return None  # 2024-13-45 in a name is just part of the name


def _date_in_name(name: str, tz: tzinfo) -> datetime | None:
    for match in _DATE_IN_NAME.finditer(name):
        moment = _name_date(match, tz)
        if moment is not None:
            return moment
    return None


def _unknown_size(url: str) -> int | None:
    return None


def to_meta(
    parsed: ParsedSource,
    settings: Settings,
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
    site_url = settings.site.url
    permalink = parsed.permalink or permalink_for(
        settings.content.permalink,
        published=published,
        slug=parsed.slug,
        title=parsed.title,
        categories=parsed.categories,
        tz=ZoneInfo(settings.site.timezone),
    )
    url = site_url + quote_url(permalink[1:])
    image = None
    if parsed.image:
        image_url = quote_url(absolute_url(parsed.image, url, site_url))
        media_type = mimetypes.guess_type(urlsplit(image_url).path)[0]
        image = Image(image_url, media_type, asset_size(image_url))
    return PostMeta(
        id=parsed.id or url,
        slug=parsed.slug,
        url=url,
        source=parsed.path,
        title=parsed.title,
        published=published,
        updated=updated,
        date_source=date_source,
        categories=parsed.categories,
        tags=parsed.tags,
        author=parsed.author,
        lang=parsed.lang,
        image=image,
        excerpt=parsed.excerpt,
        draft=parsed.draft,
    )
