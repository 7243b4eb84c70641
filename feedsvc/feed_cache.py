"""What a builder that builds again (the daemon) keeps of its feeds and renders.

A save in the content folder changes one post; of a site's hundred-odd feeds, only those
holding that post need new bytes. ``FeedCache`` keeps each feed's bytes with the key of
what they were made from (its spec and its posts, whole) and renders only the feeds whose
key moved. ``RenderCache`` keeps the rendered posts the feeds show, so a build does not
read them back from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

from feedsvc.config import Settings
from feedsvc.models import Post, PostMeta

if TYPE_CHECKING:  # feeds (feedgen, lxml) is imported only when feeds are rendered
    from feedsvc.feed_plan import FeedSpec


# From this many feeds to render, a worker process (when given) takes half of them: a
# feed takes ~4 ms, sending it its posts ~0.1 ms.
PARALLEL_FEEDS = 8


class Feeds(NamedTuple):
    files: dict[str, bytes]  # every feed file's bytes, by path below the output folder
    fresh: list[str]  # the files rendered just now; the others are the last call's bytes
    rendered: int  # feeds (site, category, tag) rendered just now


class FeedCache:
    def __init__(self) -> None:
        self._feeds: dict[str, tuple[str, dict[str, bytes]]] = {}  # folder → (key, files)
        self._posts: dict[str, tuple[Post, bytes]] = {}  # post id → (post, its key part)

    def render(
        self,
        plan: Sequence[FeedSpec],
        posts: dict[str, Post],
        settings: Settings,
        pool: ProcessPoolExecutor | None = None,
    ) -> Feeds:
        """The plan's feed files; only feeds whose spec or posts changed are rendered (half
        of them in ``pool``'s worker process, when there are many)."""
        keys = {spec.path: self._feed_key(spec, posts) for spec in plan}
        stale = [s for s in plan if self._feeds.get(s.path, ("", {}))[0] != keys[s.path]]
        rendered = render_stale(stale, posts, settings, pool) if stale else {}
        by_folder: dict[str, dict[str, bytes]] = {}
        for name, data in rendered.items():
            folder = name.rpartition("/")[0]
            by_folder.setdefault(folder + "/" if folder else "", {})[name] = data
        files: dict[str, bytes] = {}
        feeds: dict[str, tuple[str, dict[str, bytes]]] = {}
        stale_paths = {s.path for s in stale}
        for spec in plan:
            reused = spec.path not in stale_paths
            own = self._feeds[spec.path][1] if reused else by_folder.get(spec.path, {})
            feeds[spec.path] = (keys[spec.path], own)
            files.update(own)
        self._feeds = feeds
        self._posts = {pid: self._posts[pid] for pid in posts if pid in self._posts}
        return Feeds(files, sorted(rendered), len(stale))

    def _feed_key(self, spec: FeedSpec, posts: dict[str, Post]) -> str:
        """What one feed's bytes are made of: its spec and its posts, whole."""
        digest = hashlib.sha256(repr(spec).encode())
        for post_id in spec.post_ids:
            digest.update(self._post_key(posts[post_id]))
        return digest.hexdigest()

    def _post_key(self, post: Post) -> bytes:
        known = self._posts.get(post.meta.id)
        if known is not None and known[0] is post:
            return known[1]
        digest = hashlib.sha256(repr(post.meta).encode())
        digest.update(post.summary.encode("utf-8", "surrogatepass"))
        digest.update(post.html.encode("utf-8", "surrogatepass"))
        key = digest.digest()
        self._posts[post.meta.id] = (post, key)
        return key


def render_stale(
    specs: Sequence[FeedSpec],
    posts: dict[str, Post],
    settings: Settings,
    pool: ProcessPoolExecutor | None,
) -> dict[str, bytes]:
    """``render_feeds`` of ``specs``; from ``PARALLEL_FEEDS`` feeds on, every other one goes
    to ``pool`` with the posts it shows, and this process renders the rest meanwhile."""
    from feedsvc.feeds import render_feeds

    if pool is None or len(specs) < PARALLEL_FEEDS:
        return render_feeds(specs, posts, settings)
    sent = list(specs[1::2])
    shown = {pid: posts[pid] for spec in sent for pid in spec.post_ids}
    away = pool.submit(render_feeds, sent, shown, settings)
    files = render_feeds(specs[::2], posts, settings)
    files.update(away.result())
    return files


class RenderCache:
    """Rendered posts by source path, with the render key they were made under."""

    def __init__(self) -> None:
        self._posts: dict[str, tuple[str, Post]] = {}

    def get(self, meta: PostMeta, render_key: str) -> Post | None:
        """The post rendered from these very metadata under this key, if kept."""
        known = self._posts.get(meta.source)
        if known is None or known[0] != render_key:
            return None
        post = known[1]
        return post if post.meta is meta or post.meta == meta else None

    def keep(self, posts: dict[str, tuple[str, Post]]) -> None:
        """Keep exactly these (source path → (render key, post)): a build's feed posts."""
        self._posts = posts
