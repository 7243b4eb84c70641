"""``{% link %}`` and ``{% post_url %}`` between posts: what a post names and the table
the build makes of what may be named (light: the build imports it on every run, Liquid
site or not; the Liquid pass itself is in :mod:`feedsvc.content.liquid`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from feedsvc.models import Message, Problem, Severity

LinkKind = Literal["link", "post_url"]


@dataclass(frozen=True, slots=True)
class LinkRef:
    """A ``{% link %}`` or ``{% post_url %}`` in a post: what it names, and where."""

    kind: LinkKind
    target: str
    line: int


def link_table(posts: Iterable[tuple[str, str]], prefix: str) -> dict[str, str]:
    """Source paths and URLs → what ``{% link %}`` and ``{% post_url %}`` may name.

    ``prefix``: the content folder below the Jekyll site's root ("_posts/" when content.dir
    is the _posts folder itself). A link names the file from the site's root; post_url
    names it below ``_posts/`` without its extension (``2013-05-06-name`` or, in a
    subfolder, ``news/2013-05-06-name``), or by its bare name as Jekyll still allows."""
    table: dict[str, str] = {}
    bare: dict[str, str] = {}
    for source, url in sorted(posts):
        full = prefix + source
        table["link:" + full] = url
        table.setdefault("link:" + source, url)
        below = full.rpartition("_posts/")[2]
        stem = below.rpartition(".")[0] or below
        table["post_url:" + stem] = url
        bare.setdefault("post_url:" + stem.rpartition("/")[2], url)
    for key, url in bare.items():
        table.setdefault(key, url)
    return table


def link_key(ref: LinkRef) -> str:
    """The key ``ref`` is looked up by in :func:`link_table`'s mapping."""
    target = ref.target.strip().strip("'\"").lstrip("/")
    while target.startswith("./"):
        target = target[2:]
    return f"{ref.kind}:{target}"


def unknown_links(path: str, refs: Iterable[LinkRef], links: Mapping[str, str]) -> list[Problem]:
    """A warning for each link of the post at ``path`` that names no post."""
    return [
        Problem.of(path, _unknown_link(ref), ref.line, Severity.WARNING)
        for ref in refs
        if link_key(ref) not in links
    ]


def _unknown_link(ref: LinkRef) -> Message:
    tag = "{% " + ref.kind + " " + short(ref.target) + " %}"
    if ref.kind == "link":
        return Message.of(
            "content.unknown_link",
            "'%(tag)s' names no published post: the link around it is taken out, its text "
            "kept (elsewhere the tag gives nothing); name a file below the site's root, e.g. "
            "{%% link _posts/2024-01-02-name.md %%}",
            tag=tag,
        )
    return Message.of(
        "content.unknown_post_url",
        "'%(tag)s' names no published post: the link around it is taken out, its text kept "
        "(elsewhere the tag gives nothing); name a post under _posts/, e.g. "
        "{%% post_url 2024-01-02-name %%}",
        tag=tag,
    )


def short(text: str, limit: int = 60) -> str:
    """A token as a one-line message quotes it: whitespace runs as one space, cut."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
