"""One source file → what the build needs to know about it; run in worker processes.

Reading, hashing, parsing and the metadata of a file happen here, where the file is; only
plain values travel back to the main process: the metadata's JSON for the store and its
flat fields to rebuild the PostMeta (pickling 10,000 PostMeta objects costs more than
rebuilding them from plain values). Rendering a post's body works the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from feedsvc.config import ParseOptions, PostRenderOptions
from feedsvc.content.posts import ParsedSource, parse_source, to_meta
from feedsvc.content.sources import SourceFile, asset_size, cannot_read
from feedsvc.errors import ContentError
from feedsvc.models import (
    MetaFields,
    Post,
    PostMeta,
    Problem,
    meta_fields,
    meta_from_dict,
    meta_from_fields,
    meta_json_from_fields,
)

if TYPE_CHECKING:
    from feedsvc.content.links import LinkRef


@dataclass(slots=True)  # not frozen: 10,000 are made and unpickled per cold build
class SourceReading:
    """What a parse worker learned about one file.

    ``meta_json`` (the store's cached form of the metadata) and ``meta_fields`` (the same,
    flat, for :func:`decoded_meta`) when the file parsed and its date is known; ``parsed``
    when it parsed but waits for its first-seen date (only the store knows it);
    ``problem`` when it cannot be a post; none of them when its bytes hash as cached.
    ``warnings``: what a post's author should know (the post is published);
    ``own_id``: whether its front matter sets its id; ``links``: the posts its body's
    Liquid links to (checked once the build knows which posts are live).
    """

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    meta_json: str = ""
    parsed: ParsedSource | None = None
    problem: Problem | None = None
    meta_fields: MetaFields | None = None
    warnings: tuple[Problem, ...] = ()
    own_id: bool = False
    links: tuple[LinkRef, ...] = ()

    def __reduce__(self) -> tuple[type[SourceReading], tuple[object, ...]]:
        # Pickled as constructor arguments: loading the default state of a frozen slots
        # dataclass runs a Python loop over fields(), 2.5 µs a file in the main process.
        return (
            SourceReading,
            (
                self.path,
                self.size,
                self.mtime_ns,
                self.content_hash,
                self.meta_json,
                self.parsed,
                self.problem,
                self.meta_fields,
                self.warnings,
                self.own_id,
                self.links,
            ),
        )


def content_hash(data: bytes) -> str:
    # SHA-256 runs on the CPU's SHA extensions here: twice as fast as BLAKE2 on posts.
    return hashlib.sha256(data).hexdigest()[:32]


class AssetSizes:
    """Sizes of local files behind asset URLs, looked up once per URL."""

    def __init__(self, options: ParseOptions) -> None:
        self.assets_dir = Path(options.assets_dir)
        self.site_url = options.site_url
        self.sizes: dict[str, int | None] = {}
        self.folders: dict[str, bool] = {}

    def __call__(self, url: str) -> int | None:
        if url not in self.sizes:
            self.sizes[url] = asset_size(self.assets_dir, self.site_url, url, self.folders)
        return self.sizes[url]


def read_source(abspath: str, size: int) -> bytes:
    """The whole file, ``size`` being what a scan saw (it may have changed since).

    Three system calls (open, read, close) where ``open().read()`` makes nine: ~5 µs a
    file, which a cold build pays 10,000 times on a big site. A read of a regular file
    that gives less than it was asked for has reached the end.
    """
    fd = os.open(abspath, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) > size:  # it grew since the scan
            parts = [data]
            more = data
            while more:
                more = os.read(fd, 1 << 16)
                parts.append(more)
            data = b"".join(parts)
    finally:
        os.close(fd)
    return data


def parse_one(
    options: ParseOptions, sizes: AssetSizes, file: SourceFile, known_hash: str | None
) -> SourceReading:
    try:
        data = read_source(file.abspath, file.size)
    except OSError as exc:
        problem = Problem.of(file.path, cannot_read(exc))
        return SourceReading(file.path, file.size, file.mtime_ns, "", problem=problem)
    digest = content_hash(data)
    # The file may change between scan and read: record the size actually read.
    size = len(data)
    if digest == known_hash:
        return SourceReading(file.path, size, file.mtime_ns, digest)
    try:
        parsed = parse_source(file.path, data, options)
        links: tuple[LinkRef, ...] = ()
        if options.liquid.enabled and ("{%" in parsed.body or "{{" in parsed.body):
            # Imported on a Liquid site's first such body: no other site pays for it.
            from feedsvc.content.liquid import check_body

            found = check_body(parsed, options.liquid)
            parsed.warnings += tuple(found.problems)
            links = tuple(found.links)
        if parsed.date is None or options.id_style == "tag":
            # Its date or id waits for its first sighting, which only the store knows.
            # The body is re-read for the few posts that get rendered; don't ship it back.
            bare = replace(parsed, body="", page=None)
            return SourceReading(
                file.path,
                size,
                file.mtime_ns,
                digest,
                parsed=bare,
                warnings=parsed.warnings,
                links=links,
            )
        meta = to_meta(parsed, options, first_seen=None, asset_size=sizes)
    except ContentError as exc:
        problem = Problem(file.path, exc.reason, exc.line, message=exc.message)
        return SourceReading(file.path, size, file.mtime_ns, digest, problem=problem)
    fields = meta_fields(meta)
    json_text = meta_json_from_fields(fields)
    return SourceReading(
        file.path,
        size,
        file.mtime_ns,
        digest,
        json_text,
        None,
        None,
        fields,
        parsed.warnings,
        parsed.id is not None,
        links,
    )


def decoded_meta(reading: SourceReading) -> PostMeta | None:
    """The PostMeta of a parsed file, as the store's JSON of it would give it back."""
    if reading.meta_fields is not None:
        return meta_from_fields(reading.meta_fields)
    return meta_from_dict(json.loads(reading.meta_json)) if reading.meta_json else None


def meta_json_of(meta: PostMeta) -> str:
    """The store's JSON of ``meta``: ``json.dumps(meta_to_dict(meta), ensure_ascii=False)``."""
    return meta_json_from_fields(meta_fields(meta))


def parse_batch(
    options: ParseOptions, batch: Sequence[tuple[SourceFile, str | None]]
) -> list[SourceReading]:
    sizes = AssetSizes(options)
    return [parse_one(options, sizes, file, known) for file, known in batch]


def render_one(
    options: PostRenderOptions, meta: PostMeta, abspath: str
) -> tuple[Post | None, list[Problem]]:
    """The post rendered from its file, or None and why not. Its Liquid's warnings were
    reported when the file was parsed (parse_one), not again here."""
    try:
        with open(abspath, "rb") as handle:
            data = handle.read()
        parsed = parse_source(meta.source, data, options.parse)
    except OSError as exc:
        return None, [Problem.of(meta.source, cannot_read(exc))]
    except ContentError as exc:
        return None, [Problem(meta.source, exc.reason, exc.line, message=exc.message)]
    from feedsvc.content.markup import render_post

    try:
        return render_post(parsed, meta, options.markup, options.links), []
    except ContentError as exc:  # markup too deep or too big to render safely
        return None, [Problem(meta.source, exc.reason, exc.line, message=exc.message)]


def render_batch(
    options: PostRenderOptions, batch: Sequence[tuple[PostMeta, str]]
) -> list[tuple[Post | None, list[Problem]]]:
    return [render_one(options, meta, path) for meta, path in batch]
