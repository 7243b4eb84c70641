"""Slugs and URLs: Unicode slugs, permalinks from the pattern, absolute and quoted URLs."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, tzinfo
from urllib.parse import quote, urljoin, urlsplit

_SLUG_JUNK = re.compile(r"[\W_]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What quote_url leaves as it is: unreserved and reserved ASCII, no '%' (most URLs).
_QUOTED_ALREADY = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]*")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _keep_marks(match: re.Match[str]) -> str:
    run = match.group()
    if run.isascii():
        return "-"
    # Combining marks are not \w, but Indic or Thai words fall apart without them.
    return "".join(c if unicodedata.category(c)[0] == "M" else "-" for c in run)


def slugify(text: str) -> str:
    """Lowercased letters and digits of any script; other runs become '-'.

    '부산 여행!' → '부산-여행', so Korean slugs and category folders stay Korean.
    """
    if text.isascii():  # most file names: no normalising, no per-run callback
        return _SLUG_JUNK.sub("-", text.lower()).strip("-")
    return _SLUG_JUNK.sub(_keep_marks, unicodedata.normalize("NFC", text).lower()).strip("-")


def permalink_for(
    pattern: str,
    *,
    published: datetime,
    slug: str,
    title: str,
    categories: Sequence[str],
    tz: tzinfo,
) -> str:
    """``content.permalink`` filled in; dates in the site's time zone."""
    local = published.astimezone(tz)
    parts = _pattern_parts(pattern)
    out = []
    for literal, name in parts:
        out.append(literal)
        if name is None:
            continue
        if name == "slug":
            out.append(slug)
        elif name == "year":
            out.append(f"{local.year:04d}")
        elif name in ("month", "day", "hour", "minute"):
            out.append(f"{getattr(local, name):02d}")
        elif name == "category":
            out.append((slugify(categories[0]) if categories else "") or "uncategorized")
        elif name == "title":
            out.append(slugify(title) or slug)
        else:
            out.append("{" + name + "}")
    return "".join(out)


@functools.lru_cache(maxsize=16)
def _pattern_parts(pattern: str) -> tuple[tuple[str, str | None], ...]:
    """'/{year}/{slug}/' → (('/', 'year'), ('/', 'slug'), ('/', None)): parsed once."""
    parts: list[tuple[str, str | None]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append((pattern[position : match.start()], match.group(1)))
        position = match.end()
    parts.append((pattern[position:], None))
    return tuple(parts)


def absolute_url(ref: str, base_url: str, site_url: str) -> str:
    """``ref`` resolved: '/x' against ``site_url``, '//h/x' with its scheme, else ``base_url``.

    A root path that already carries the site's own path ('/blog/x' for a site at
    https://h/blog/, as Jekyll's ``{{ site.baseurl }}/x`` produces) is not prefixed twice.
    """
    ref = ref.strip()
    if ref.startswith("//"):
        return site_url[: site_url.index(":") + 1] + ref
    if _SCHEME.match(ref):
        return ref
    if ref.startswith("/"):
        origin, path = _origin_and_path(site_url)
        if path != "/" and ref.startswith(path):
            return origin + ref
        return site_url + ref[1:]
    return urljoin(base_url, ref)


@functools.lru_cache(maxsize=8)
def _origin_and_path(site_url: str) -> tuple[str, str]:
    """'https://x.kr/blog/' → ('https://x.kr', '/blog/'); cached: one site, many links."""
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}", parts.path


def url_path(url: str, site_url: str) -> str:
    """``urlsplit(url).path``, without taking the site's own part apart again.

    Below a plain ``site_url`` (scheme://host/path) the path is the site's path and the
    rest up to any '?' or '#', exactly as urlsplit would find it, at a fifth of the cost.
    """
    if url.startswith(site_url):
        site_path = _plain_site_path(site_url)
        rest = url[len(site_url) :]
        # urlsplit drops tabs and line breaks before anything else
        if site_path is not None and "\t" not in rest and "\r" not in rest and "\n" not in rest:
            return site_path + rest.split("#", 1)[0].split("?", 1)[0]
    return urlsplit(url).path


@functools.lru_cache(maxsize=8)
def _plain_site_path(site_url: str) -> str | None:
    """The path of a site URL that urlsplit reads back exactly as scheme://host/path."""
    try:
        parts = urlsplit(site_url)
    except ValueError:
        return None  # urlsplit says so for every URL below it too
    plain = site_url == f"{parts.scheme}://{parts.netloc}{parts.path}"
    return parts.path if plain and parts.path.startswith("/") else None


def quote_url(url: str) -> str:
    """Percent-encode what may not stand in a URL (non-ASCII, spaces), keep existing %XX."""
    if _QUOTED_ALREADY.fullmatch(url):
        return url  # what quote() would give back, in a tenth of its time
    return quote(_LONE_PERCENT.sub("%25", url), safe=":/?#[]@!$&'()*+,;=%~")
