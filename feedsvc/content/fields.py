"""Front-matter fields → typed, XML-clean values, under their Jekyll, Hugo and Astro names.

A value of the wrong type is a ContentError naming the key, the line it is on and what
to write instead; a missing or empty one is None (or an empty tuple).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from feedsvc.content.dates import read_date
from feedsvc.content.front_matter import DATE_HELP, field_problem
from feedsvc.content.html_tags import is_clearly_html
from feedsvc.content.plaintext import (
    NOT_ONE_LINE,
    html_to_text,
    one_line,
    shown,
    strip_xml_illegal,
)
from feedsvc.content.urls import slugify
from feedsvc.errors import ContentError
from feedsvc.models import Author, Message, Problem, Severity

DATE_KEYS = ("date", "pubDate", "published", "created")
UPDATED_KEYS = ("updated", "lastmod", "modified")
CATEGORY_KEYS = ("categories", "category")
TAG_KEYS = ("tags",)
EXCERPT_KEYS = ("excerpt", "description", "summary")
IMAGE_KEYS = ("image", "feature_image", "cover")
_URL_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")
_TERM_SPLIT = re.compile(r"[,\s]+")
_SCALAR = (str, int, float)
_UNSAFE_PERMALINK = re.compile(r"\.\.|\\|^//|^[A-Za-z][A-Za-z0-9+.-]*:|[\x00-\x20\x7f]")


class Fields:
    """Typed access to one file's front-matter fields; errors name the key and its line.

    What is read but worth the author's attention (a date of which a part was not read)
    is kept in ``warnings``.
    """

    __slots__ = ("fm", "fm_line", "path", "values", "warnings")

    def __init__(self, path: str, values: dict[str, Any], fm: str, fm_line: int) -> None:
        self.path, self.values, self.fm, self.fm_line = path, values, fm, fm_line
        self.warnings: list[Problem] = []

    def first(self, keys: Sequence[str]) -> tuple[str, Any]:
        """The first of ``keys`` (aliases, in order of precedence) with a value."""
        get = self.values.get
        for key in keys:
            value = get(key)
            if value is not None:
                return key, value
        return "", None

    def line_of(self, key: str) -> int | None:
        """The line of the file that sets ``key`` (None if it cannot be found)."""
        found = re.search(
            rf"^[ \t]*(?:['\"]?{re.escape(key)}['\"]?[ \t]*[:=]|\[{re.escape(key)}\])",
            self.fm,
            re.MULTILINE,
        )
        return self.fm_line + self.fm.count("\n", 0, found.start()) if found else None

    def fail(self, key: str, reason: Message) -> ContentError:
        return ContentError(self.path, field_problem(key, reason), self.line_of(key))

    def warn(self, key: str, reason: Message) -> None:
        problem = field_problem(key, reason)
        self.warnings.append(Problem.of(self.path, problem, self.line_of(key), Severity.WARNING))

    def wrong_type(self, key: str, value: object, expected: Message) -> ContentError:
        return self.fail(
            key,
            Message.of(
                "content.wrong_type",
                "must be %(expected)s, not %(actual)s; fix its value",
                expected=expected,
                actual=_describe(value),
            ),
        )

    def text(self, key: str, *, allow_bool: bool = True) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return one_line(value) or None
        if isinstance(value, bool) and not allow_bool:
            raise self.fail(
                key,
                Message.of(
                    "content.yes_no",
                    "is %(value)s (YAML reads yes/no/on/off as true/false); quote it",
                    value=str(value),
                ),
            )
        if isinstance(value, int | float | date):
            return one_line(str(value)) or None
        raise self.wrong_type(key, value, _TEXT)

    def terms(self, keys: Sequence[str]) -> tuple[str, ...]:
        """Categories or tags: a list, or one string split on commas and spaces."""
        key, value = self.first(keys)
        if value is None:
            return ()
        if isinstance(value, str):
            items: list[object] = list(_TERM_SPLIT.split(value))
        elif isinstance(value, list):
            try:  # the usual case, a list of clean names, checked in one scan
                clean = NOT_ONE_LINE.search("".join(value)) is None
            except TypeError:  # an item is not text
                clean = False
            if clean:
                unique = dict.fromkeys(map(str.strip, value))
                unique.pop("", None)  # blank items are no terms
                return tuple(unique)
            items = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            items = [value]
        else:
            raise self.wrong_type(
                key,
                value,
                Message.of("content.expected.terms", "a list or a comma-separated string"),
            )
        cleaned: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, _SCALAR):
                raise self.wrong_type(
                    key,
                    item,
                    Message.of("content.expected.names", "a list of names (each item text)"),
                )
            term = one_line(item if isinstance(item, str) else str(item))
            if term:
                cleaned.append(term)
        return tuple(dict.fromkeys(cleaned))

    def date(self, keys: Sequence[str], tz: tzinfo) -> datetime | None:
        """The first of ``keys`` that is set, as an aware datetime (naive ones in ``tz``)."""
        get = self.values.get
        for key in keys:
            value = get(key)
            if value is None or (key == "published" and isinstance(value, bool)):
                continue
            moment, ignored = read_date(value, tz)
            if moment is None:
                raise self.fail(
                    key,
                    Message.of(
                        "content.not_a_date",
                        "value %(value)s is not a date; %(help)s",
                        value=_shown(value),
                        help=DATE_HELP,
                    ),
                )
            if not 1 < moment.year < 9999:  # keeps time zone arithmetic from overflowing
                raise self.fail(
                    key,
                    Message.of(
                        "content.date_out_of_range",
                        "value %(value)s is out of range; use a real date",
                        value=_shown(value),
                    ),
                )
            if ignored:
                self.warn(
                    key,
                    Message.of(
                        "content.date_part_ignored",
                        "value %(value)s is read as %(moment)s, as Jekyll reads it: %(ignored)s "
                        "is left out (a time without a zone Jekyll understands is in "
                        "site.timezone); %(help)s",
                        value=_shown(value),
                        moment=moment.isoformat(),
                        ignored=_shown(ignored),
                        help=DATE_HELP,
                    ),
                )
            return moment
        return None

    def order(self, key: str) -> float | str | None:
        """The value of the ``content.order_by`` key: a number (written as text too), or
        text; anything else is left out with a warning."""
        value = self.values.get(key)
        if isinstance(value, str):
            text = one_line(value)
            try:
                number = float(text)
            except ValueError:
                return text or None
            return number if math.isfinite(number) else text
        if value is None or (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            return value
        self.warn(
            key,
            Message.of(
                "content.order_unusable",
                "is %(actual)s, which cannot order posts (content.order_by); write a number "
                "or text",
                actual=_describe(value),
            ),
        )
        return None

    def author(self) -> Author | None:
        value = self.values.get("author")
        if value is None:
            return None
        if isinstance(value, str):
            name = one_line(value)
            return Author(name) if name else None
        if isinstance(value, dict):
            raw_name, raw_email = value.get("name"), value.get("email")
            if not isinstance(raw_name, str | None) or not isinstance(raw_email, str | None):
                raise self.wrong_type(
                    "author",
                    value,
                    Message.of(
                        "content.expected.author_fields", "a name, or name: and email: text"
                    ),
                )
            email = one_line(raw_email or "") or None
            shown = one_line(raw_name or "") or email
            return Author(shown, email) if shown else None
        raise self.wrong_type(
            "author",
            value,
            Message.of("content.expected.author", "a name or a mapping with name: and email:"),
        )

    def image(self) -> str | None:
        key, value = self.first(IMAGE_KEYS)
        if isinstance(value, dict):
            value = value.get("path") or value.get("url")
            if not isinstance(value, str):
                raise self.wrong_type(
                    key,
                    value,
                    Message.of(
                        "content.expected.image_mapping", "a mapping whose path: or url: is text"
                    ),
                )
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong_type(
                key, value, Message.of("content.expected.image", "a URL or path (text)")
            )
        image = one_line(value) or None
        scheme = _URL_SCHEME.match(image or "")
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            # Feed readers and mail clients fetch it: javascript:, data:, file: … never.
            raise self.fail(
                key,
                Message.of(
                    "content.image_scheme",
                    "must be an http(s) URL or a path on the site, not %(value)s; fix its value",
                    value=shown(image),
                ),
            )
        return image

    def excerpt(self) -> str | None:
        key, value = self.first(EXCERPT_KEYS)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong_type(key, value, _TEXT)
        # Text unless clearly HTML: "Promise<T>의 의미" keeps its <T> (and "&amp;" its &).
        if is_clearly_html(value):
            return html_to_text(value) or None
        return strip_xml_illegal(" ".join(value.split())) or None

    def permalink(self) -> str | None:
        value = self.text("permalink", allow_bool=False)
        if value is not None and (not value.startswith("/") or _UNSAFE_PERMALINK.search(value)):
            raise self.fail(
                "permalink",
                Message.of(
                    "content.permalink_unsafe",
                    "value %(value)s must be a path on this site: start with '/', no '..', no "
                    "'\\', no scheme or host, no spaces (for example /2024/my-post/)",
                    value=shown(value),
                ),
            )
        return value

    def slug(self, bare_stem: str) -> str:
        """The ``slug`` field, else the file name's, as a URL slug."""
        raw = self.text("slug", allow_bool=False)
        if raw is not None and (".." in raw or "/" in raw or "\\" in raw):
            raise self.fail(
                "slug",
                Message.of(
                    "content.slug_unsafe",
                    "value %(value)s is unsafe ('..', '/' or '\\'); use a plain slug like my-post",
                    value=shown(raw),
                ),
            )
        slug = slugify(raw if raw is not None else bare_stem)
        if not slug:
            if raw is not None:
                empty = Message.of(
                    "content.slug_empty",
                    "'slug' has no letters or digits to make a URL slug; add a 'slug:' with "
                    "letters or digits to the front matter",
                )
            else:
                empty = Message.of(
                    "content.file_name_slug_empty",
                    "the file name %(name)s has no letters or digits to make a URL slug; add a "
                    "'slug:' with letters or digits to the front matter",
                    name=shown(bare_stem),
                )
            raise ContentError(self.path, empty)
        return slug

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
            return value.strip().lower() in ("true", "yes")
        raise self.wrong_type(key, value, Message.of("content.expected.flag", "true or false"))


_TEXT = Message.of("content.expected.text", "text")
_KINDS = {
    dict: Message.of("content.kind.mapping", "a mapping"),
    list: Message.of("content.kind.list", "a list"),
    bool: Message.of("content.kind.bool", "true/false"),
    type(None): Message.of("content.kind.empty", "empty"),
}


def _describe(value: object) -> Message:
    return _KINDS.get(type(value)) or Message.of(
        "content.kind.value", "%(kind)s %(value)s", kind=type(value).__name__, value=_shown(value)
    )


def _shown(value: object) -> str:
    return shown(value)
