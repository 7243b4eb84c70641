"""The categories a site has — those its published posts name — and the check of a
subscriber's categories against them. Pure (names in, names out), but for
:func:`site_categories`, which reads the live posts' categories from the store.

Names match as digests match them (:func:`feedsvc.newsletter.digests.category_keys`): by slug, so
``Smart City``, ``smart city`` and ``smart-city`` are one category, and so are ``부산``
and `` 부산 ``. A category no post has is *unknown*: a subscriber who picks only unknown
categories never receives anything, which is why the command line warns (or, with
``--strict``, refuses) and the web forms refuse. A site with no posts yet has no
categories to check against: :attr:`SiteCategories.empty`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection

from feedsvc.content.urls import slugify
from feedsvc.models import PostMeta
from feedsvc.newsletter.digests import category_keys
from feedsvc.storage.digests import live_metas

# A memo: an import checks the same few names on every row.
_key = lru_cache(maxsize=4096)(slugify)


@dataclass(frozen=True, slots=True)
class CategoryChoice:
    """One category checkbox: its name, whether it is ticked, whether a post has it."""

    name: str
    ticked: bool
    known: bool


@dataclass(frozen=True, slots=True)
class SiteCategories:
    """The site's categories as its posts spell them (first spelling seen, newest post
    first), one per slug."""

    names: tuple[str, ...]
    keys: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> SiteCategories:
        kept: dict[str, str] = {}
        for name in names:
            key = _key(name)
            if key and key not in kept:
                kept[key] = name
        return cls(tuple(kept.values()), frozenset(kept))

    @classmethod
    def from_metas(cls, metas: Iterable[PostMeta]) -> SiteCategories:
        """The categories of ``metas`` (the live posts, newest first)."""
        return cls.of(name for meta in metas for name in meta.categories)

    @property
    def empty(self) -> bool:
        """No post names a category (none is published yet): nothing to check against."""
        return not self.names

    def has(self, name: str) -> bool:
        key = _key(name)
        return bool(key) and key in self.keys

    def unknown(self, names: Iterable[str]) -> tuple[str, ...]:
        """Those of ``names`` no post has, in their order (all of them when :attr:`empty`:
        callers say so differently)."""
        return tuple(name for name in names if not self.has(name))

    def choices(self, chosen: Sequence[str], limit: int) -> list[CategoryChoice]:
        """A form's checkboxes: the site's categories (the first ``limit``, and those of
        ``chosen`` past them), ticked when ``chosen`` holds them in any spelling; then
        the ones of ``chosen`` no post has, ticked, so that saving keeps them unless
        the subscriber unticks them."""
        ticked = category_keys(tuple(chosen))
        shown = {_key(name): name for name in self.names[:limit]}
        for name in chosen:
            if self.has(name):
                shown.setdefault(_key(name), name)
        found = [CategoryChoice(name, key in ticked, known=True) for key, name in shown.items()]
        found += [CategoryChoice(name, True, known=False) for name in self.unknown(chosen)]
        return found


def quoted(names: Iterable[str]) -> str:
    """``'부산', '축제'``: names as a message shows them."""
    return ", ".join(repr(name) for name in names)


def site_categories(conn: Connection, now: datetime) -> SiteCategories:
    """The categories of the posts live at ``now`` (published, not drafts, as the last
    build left them: :func:`feedsvc.storage.digests.live_metas`)."""
    return SiteCategories.from_metas(live_metas(conn, now))
