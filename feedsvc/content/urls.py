"""Slugs and URLs: Unicode slugs (feedsvc's and Jekyll's), permalinks from the pattern,
the entry ids of the other id styles, absolute and quoted URLs."""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from urllib.parse import quote, urljoin, urlsplit

from feedsvc.config import permalink_parts

_SLUG_JUNK = re.compile(r"[\W_]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What quote_url leaves as it is: unreserved and reserved ASCII, no '%' (most URLs).
_QUOTED_ALREADY = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]*")


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


# Jekyll's Utils.slugify: what its "default" and "pretty" modes keep (letters, marks and
# decimal digits; pretty also these, which read well in a URL); any other run is one '-'.
_PRETTY_KEEPS = "._~!$&'()+,;=@"
_JEKYLL_ASCII = {
    True: re.compile(r"[^A-Za-z0-9._~!$&'()+,;=@]+"),
    False: re.compile(r"[^A-Za-z0-9]+"),
}
_JEKYLL_RUN = re.compile("\x00+")


def jekyll_slugify(text: str, *, pretty: bool = False, cased: bool = False) -> str:
    """Jekyll's ``Utils.slugify(text, mode: "pretty"|"default", cased:)``.

    'sass-converter-3.0-released' stays itself in pretty mode (Jekyll's ``:title``), and
    becomes 'sass-converter-3-0-released' in default mode (``:slug``). Text is NFC first
    (a file name from macOS arrives decomposed; browsers ask for the composed form).
    """
    if text.isascii():
        slug = _JEKYLL_ASCII[pretty].sub("-", text)
    else:
        keeps = _PRETTY_KEEPS if pretty else ""
        slug = _JEKYLL_RUN.sub(
            "-",
            "".join(
                c if c in keeps or _jekyll_letter(c) else "\x00"
                for c in unicodedata.normalize("NFC", text)
            ),
        )
    slug = slug.removeprefix("-").removesuffix("-")  # one at each end, as Jekyll strips
    return slug if cased else slug.lower()


def _jekyll_letter(char: str) -> bool:
    """\\p{L}, \\p{M} or \\p{Nd}: what Jekyll's slugs keep of any script."""
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd"


_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PLAIN_PATH = re.compile(r"[a-zA-Z0-9./-]*")
_SLASHES = re.compile(r"//+")


def _escape_path(value: str) -> str:
    """Jekyll's ``URL.escape_path``: what may not stand in a path segment, %-encoded."""
    if _PLAIN_PATH.fullmatch(value):
        return value
    return quote(value, safe="/-._~!$&'()*+,;=:@")


def permalink_for(
    pattern: str,
    *,
    published: datetime,
    slug: str,
    title: str,
    categories: Sequence[str],
    tz: tzinfo,
    path: str = "",
    own_slug: bool = False,
    strict: bool = True,
) -> str:
    """``pattern`` filled in for one post; dates in the site's time zone.

    ``{placeholders}`` are feedsvc's (``{slug}`` the post's slug). Jekyll's
    ``:placeholders`` fill as Jekyll fills them from the file name (``path``, below the
    content folder), except that a front-matter ``slug:`` (``own_slug``) stands for
    ``:title`` and ``:slug`` as ``slug``; a pattern with any of them is cleaned as
    Jekyll cleans a URL (no '..', no './', no '//': a post without categories loses the
    ``:categories`` segment). ``strict``: an unknown placeholder is an error (else
    literal text, for a post's own ``permalink:``).
    """
    local = published.astimezone(tz)
    out = []
    jekyll = False
    name_slug: str | None = None
    for literal, placeholder in permalink_parts(pattern, strict):  # cached, positional: fast
        out.append(literal)
        if placeholder is None:
            continue
        if placeholder[0] == ":":
            if not jekyll and not own_slug:
                name_slug = jekyll_name_slug(path)
            jekyll = True
            value = _jekyll_value(placeholder[1:], local, slug, categories, name_slug, path)
            out.append(_escape_path(value))
        elif placeholder == "slug":
            out.append(slug)
        elif placeholder == "year":
            out.append(f"{local.year:04d}")
        elif placeholder in ("month", "day", "hour", "minute"):
            out.append(f"{getattr(local, placeholder):02d}")
        elif placeholder == "category":
            out.append((slugify(categories[0]) if categories else "") or "uncategorized")
        else:  # title
            out.append(slugify(title) or slug)
    path = "".join(out)
    if not jekyll:
        return path
    # Jekyll's URL#sanitize_url
    return _SLASHES.sub("/", ("/" + path).replace("..", "/").replace("./", ""))


def _jekyll_value(
    key: str,
    local: datetime,
    slug: str,
    categories: Sequence[str],
    name_slug: str | None,
    path: str,
) -> str:
    """The text Jekyll's UrlDrop gives for the placeholder ``key`` ('title' …)."""
    if key == "title":
        return (jekyll_slugify(name_slug, pretty=True, cased=True) if name_slug else "") or slug
    if key == "slug":
        return (jekyll_slugify(name_slug) if name_slug else "") or slug
    if key == "categories":
        return "/".join(dict.fromkeys(c.lower() for c in categories))
    if key == "slugified_categories":
        return "/".join(dict.fromkeys(jekyll_slugify(c) for c in categories))
    if key == "name":  # the file name without its extension, slugified
        name = path.rpartition("/")[2]
        return jekyll_slugify(name.rpartition(".")[0] if "." in name else name)
    if key == "collection":
        return "posts"
    if key == "output_ext":
        return ".html"
    return _jekyll_date(key, local)


def _jekyll_date(key: str, local: datetime) -> str:
    """The date placeholders, as Ruby's strftime writes them (English names)."""
    iso_year, iso_week, iso_day = local.isocalendar()
    values = {
        "year": f"{local.year:04d}",
        "short_year": f"{local.year % 100:02d}",
        "month": f"{local.month:02d}",
        "i_month": str(local.month),
        "short_month": _MONTH_NAMES[local.month - 1][:3],
        "long_month": _MONTH_NAMES[local.month - 1],
        "day": f"{local.day:02d}",
        "i_day": str(local.day),
        "y_day": f"{local.timetuple().tm_yday:03d}",
        "w_year": f"{iso_year:04d}",
        "week": f"{iso_week:02d}",
        "w_day": str(iso_day),
        "short_day": _DAY_NAMES[iso_day - 1][:3],
        "long_day": _DAY_NAMES[iso_day - 1],
        "hour": f"{local.hour:02d}",
        "minute": f"{local.minute:02d}",
        "second": f"{local.second:02d}",
    }
    return values[key]


_JEKYLL_DATED_NAME = re.compile(r"\d{2,4}-\d{1,2}-\d{1,2}-(.*)", re.DOTALL)


def jekyll_name_slug(path: str) -> str:
    """Jekyll's slug of a file, as written: its name without the extension, what follows
    its date, trailing dots off ('_posts/2022-12-21-sass-converter-3.0-released.markdown'
    → 'sass-converter-3.0-released')."""
    name = path.rpartition("/")[2]
    stem = name.rpartition(".")[0] if "." in name else name
    dated = _JEKYLL_DATED_NAME.match(stem)
    return (dated[1] if dated else stem).rstrip(".")


def jekyll_feed_id(permalink: str, raw_slug: str) -> str:
    """jekyll-feed's entry id, as a path below the site: Jekyll's ``Document#id``, the
    folder of the post's URL and its slug as written ('/2021/09/14/title' for
    '/2021/09/14/title.html' or '/2021/09/14/title/')."""
    trimmed = permalink.rstrip("/") or "/"
    folder = trimmed.rpartition("/")[0]  # Ruby's File.dirname ('' for the root)
    return folder + "/" + raw_slug.lstrip("/")


def tag_uri(url: str, site_url: str, day: date) -> str:
    """A tag: URI (RFC 4151) for ``url``: 'tag:x.kr,2024-06-01:/blog/2024/06/01/a/'."""
    parts = urlsplit(site_url)
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):  # else kept as written: still unique
        host = host.encode("idna").decode("ascii")
    origin = f"{parts.scheme}://{parts.netloc}"
    specific = url[len(origin) :] if url.startswith(origin) else urlsplit(url).path
    return f"tag:{host},{day.isoformat()}:{specific or '/'}"


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


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")
_SRCSET_DESCRIPTORS = re.compile(r"([^,]*),?")


def resolved_ref(ref: str, base_url: str, site_url: str) -> str:
    """An attribute's URL made absolute (:func:`absolute_url`), with control characters
    (legal in neither a URL nor XML; ``&#1;`` in an attribute puts one there)
    percent-encoded."""
    return _CONTROLS.sub(_percent, absolute_url(ref, base_url, site_url))


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def resolved_srcset(srcset: str, base_url: str, site_url: str) -> str:
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
        resolved = resolved_ref(ref, base_url, site_url)
        candidates.append(f"{resolved} {descriptors}" if descriptors else resolved)
    return ", ".join(candidates)


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
