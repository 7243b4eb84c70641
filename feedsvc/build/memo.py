"""What a builder remembers between builds, and the check that a build has nothing to do.

``feedsvc build`` on an unchanged site reads no post: the last build's record says which
files it saw (size, mtime) and which feed files it left; when all of that still holds,
the feeds are right as they are. The daemon's builder also keeps the last build's source
rows, scan and settled files (``Memo``), valid while the store's last build is its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from feedsvc import __version__
from feedsvc.config import Settings
from feedsvc.content.sources import Scan
from feedsvc.models import PostMeta
from feedsvc.storage.posts import BuildRecord, Render, SourceRow, load_stats

if TYPE_CHECKING:  # the settle machinery is imported by builds that parse
    from feedsvc.build.settle import Settled


def settings_fingerprint(settings: Settings) -> str:
    """Hash of everything a parse or render depends on besides the file's bytes."""
    relevant = {
        "version": __version__,
        "hash": "sha256",
        "site": settings.site.model_dump(mode="json"),
        "content": settings.content.model_dump(mode="json"),
        "assets": str(settings.assets_dir),
    }
    if settings.feeds.id_style != "permalink":  # ids are made with the metadata
        relevant["ids"] = settings.feeds.id_style
    liquid = settings.liquid_options
    if liquid.enabled:  # on by detection, with the _config.yml's site.* variables
        relevant["liquid"] = repr((dict(liquid.site_vars), liquid.link_prefix))
    blob = json.dumps(relevant, sort_keys=True).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


# Raised when what a stored render holds changes, so that the renders stored before are
# made again: 2, its HTML sanitised for feeds with absolute URLs (1: absolute URLs only).
RENDER_FORMAT = 2


def render_basis(settings: Settings, fingerprint: str) -> str:
    """What a post's render depends on besides its file's bytes (and, with Liquid on, the
    URLs its links name): the settings' fingerprint, the render format, and the hosts
    whose iframes feeds keep."""
    return f"{fingerprint}:render{RENDER_FORMAT}:{','.join(settings.feeds.iframe_hosts)}"


def outputs_key(settings: Settings, fingerprint: str) -> str:
    """What the feed files depend on besides the posts: content and feed settings."""
    feeds = settings.feeds.model_dump(mode="json")
    blob = json.dumps([fingerprint, feeds, str(settings.output_dir)], sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


@dataclass
class Memo:
    """What the last build of this Builder left in the store, kept between builds (the
    daemon builds again and again): the source rows and their decoded metadata. Valid only
    while the store's last build record is the one this Builder wrote."""

    record: BuildRecord
    sources: dict[str, SourceRow]
    metas: dict[str, tuple[str, PostMeta]] = field(default_factory=dict)  # path → (json, meta)
    scan: Scan | None = None  # the content folder as that build saw it
    settled: Settled | None = None  # what that build made of each file
    announced: frozenset[str] = frozenset()  # post ids the store knows as announced


def remember(
    record: BuildRecord,
    cached: dict[str, SourceRow],
    rows: list[SourceRow],
    gone: list[str],
    renders: list[Render],
    metas: dict[str, tuple[str, PostMeta]],
) -> Memo:
    """The store's source rows as this build left them, for the builder's next build."""
    sources = cached
    for row in rows:
        sources[row.source_path] = row
    for path in gone:
        sources.pop(path, None)
    for render in renders:
        rendered = sources.get(render.source_path)
        if rendered is not None:
            sources[render.source_path] = replace(rendered, render_key=render.render_key)
    for path in gone:
        metas.pop(path, None)
    return Memo(record, sources, metas)


def nothing_changed(
    settings: Settings,
    fingerprint: str,
    scan: Scan,
    conn: Connection,
    last: BuildRecord | None,
    now: datetime,
    memo: Memo | None,
) -> bool:
    """True when the last build's feeds are still exactly right, without reading posts.

    Same settings, the same files with the same size and mtime, no scheduled post
    come due, and every feed file still as that build left it.
    """
    if last is None or last.outputs is None:
        return False
    if memo is not None and scan.touched:  # a watcher's paths: one changed file says no
        for path in scan.touched:
            row, file = memo.sources.get(path), scan.find(path)
            if (row is None) != (file is None) or (
                row is not None
                and file is not None
                and (row.size, row.mtime_ns, row.fingerprint)
                != (file.size, file.mtime_ns, fingerprint)
            ):
                return False
    if last.next_publish is not None and last.next_publish <= now:
        return False
    outputs = json.loads(last.outputs)
    if outputs.get("key") != outputs_key(settings, fingerprint):
        return False
    if not {p.path for p in scan.problems} <= {p.path for p in last.problems}:
        return False
    if memo is not None:  # the rows as this builder's last build left them
        stats = {p: (r.size, r.mtime_ns, r.fingerprint) for p, r in memo.sources.items()}
    else:
        stats = load_stats(conn)
    if len(stats) != len(scan.files):
        return False
    for file in scan.files:
        if stats.get(file.path) != (file.size, file.mtime_ns, fingerprint):
            return False
    for rel, (size, mtime_ns) in outputs["files"].items():
        try:
            info = (settings.output_dir / rel).stat()
        except OSError:
            return False
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            return False
    return True
