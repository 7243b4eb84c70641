"""One source file → what the build needs to know about it; run in worker processes.

Reading, hashing, parsing and the metadata of a file happen here, where the file is; only
plain strings travel back to the main process (pickling 10,000 PostMeta objects costs
more than rebuilding them from JSON). Rendering a post's body works the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from feedsvc.config import Settings
from feedsvc.content import ParsedSource, parse_source, to_meta
from feedsvc.errors import ContentError
from feedsvc.models import Post, PostMeta, Problem, meta_from_dict, meta_to_dict
from feedsvc.sources import SourceFile, asset_size


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a parse worker learned about one file.

    ``meta_json`` (the store's cached form of the metadata) when the file parsed and its
    date is known; ``parsed`` when it parsed but waits for its first-seen date (only the
    store knows it); ``problem`` when it cannot be a post; none of them when its bytes
    hash as cached. Plain strings cross the process boundary: pickling 10,000 PostMeta
    objects costs more than rebuilding them from JSON.
    """

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    meta_json: str = ""
    parsed: ParsedSource | None = None
    problem: Problem | None = None


def content_hash(data: bytes) -> str:
    # SHA-256 runs on the CPU's SHA extensions here: twice as fast as BLAKE2 on posts.
    return hashlib.sha256(data).hexdigest()[:32]


class AssetSizes:
    """Sizes of local files behind asset URLs, looked up once per URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sizes: dict[str, int | None] = {}

    def __call__(self, url: str) -> int | None:
        if url not in self.sizes:
            self.sizes[url] = asset_size(self.settings.assets_dir, self.settings.site.url, url)
        return self.sizes[url]


def parse_one(
    settings: Settings, sizes: AssetSizes, file: SourceFile, known_hash: str | None
) -> Outcome:
    try:
        with open(file.abspath, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        problem = Problem(file.path, f"cannot read: {exc.strerror}")
        return Outcome(file.path, file.size, file.mtime_ns, "", problem=problem)
    digest = content_hash(data)
    # The file may change between scan and read: record the size actually read.
    size = len(data)
    if digest == known_hash:
        return Outcome(file.path, size, file.mtime_ns, digest)
    try:
        parsed = parse_source(file.path, data, settings)
        if parsed.date is None:
            # The body is re-read for the few posts that get rendered; don't ship it back.
            bare = replace(parsed, body="")
            return Outcome(file.path, size, file.mtime_ns, digest, parsed=bare)
        meta = to_meta(parsed, settings, first_seen=None, asset_size=sizes)
    except ContentError as exc:
        problem = Problem(file.path, exc.reason, exc.line)
        return Outcome(file.path, size, file.mtime_ns, digest, problem=problem)
    return Outcome(file.path, size, file.mtime_ns, digest, meta_json=meta_json_of(meta))


def import_renderers() -> None:
    """Import what renders posts and feeds (lxml, cmark, feedgen: ~0.1 s)."""
    import feedsvc.feeds
    import feedsvc.markup  # noqa: F401


def decoded_meta(outcome: Outcome) -> PostMeta | None:
    return meta_from_dict(json.loads(outcome.meta_json)) if outcome.meta_json else None


def meta_json_of(meta: PostMeta) -> str:
    return json.dumps(meta_to_dict(meta), ensure_ascii=False)


def parse_batch(
    settings: Settings, batch: Sequence[tuple[SourceFile, str | None]]
) -> list[Outcome]:
    sizes = AssetSizes(settings)
    return [parse_one(settings, sizes, file, known) for file, known in batch]


def render_one(
    settings: Settings, meta: PostMeta, abspath: str
) -> tuple[Post | None, list[Problem]]:
    try:
        with open(abspath, "rb") as handle:
            data = handle.read()
        parsed = parse_source(meta.source, data, settings)
    except OSError as exc:
        return None, [Problem(meta.source, f"cannot read: {exc.strerror}")]
    except ContentError as exc:
        return None, [Problem(meta.source, exc.reason, exc.line)]
    from feedsvc.markup import render_post

    return render_post(parsed, meta, settings)


def render_batch(
    settings: Settings, batch: Sequence[tuple[PostMeta, str]]
) -> list[tuple[Post | None, list[Problem]]]:
    return [render_one(settings, meta, path) for meta, path in batch]
