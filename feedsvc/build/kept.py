"""What a builder that builds again (the daemon) keeps of its feeds and renders.

A save in the content folder changes one post; of a site's hundred-odd feeds, only those
holding that post need new bytes. ``KeptFeeds`` keeps each feed's bytes with the key of
what they were made from (its spec and its posts, whole) and renders only the feeds whose
key moved. ``KeptRenders`` keeps the rendered posts the feeds show, so a build does not
read them back from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from feedsvc.config import Settings
from feedsvc.models import Post, PostMeta

if TYPE_CHECKING:  # feeds (feedgen, lxml) is imported only when feeds are rendered
    from feedsvc.feeds.plan import FeedSpec


class Feeds(NamedTuple):
    files: dict[str, bytes]  # every feed file's bytes, by path below the output folder
    fresh: list[str]  # the files rendered just now; the others are the last call's bytes
    rendered: int  # feeds (site, category, tag) rendered just now


class KeptFeeds:
    def __init__(self) -> None:
        self._feeds: dict[str, tuple[str, dict[str, bytes]]] = {}  # folder → (key, files)
        self._posts: dict[str, tuple[Post, bytes]] = {}  # post id → (post, its key part)

    def render(self, plan: Sequence[FeedSpec], posts: dict[str, Post], settings: Settings) -> Feeds:
        """The plan's feed files; only feeds whose spec or posts changed are rendered."""
        from feedsvc.feeds.render import render_feeds

        keys = {spec.path: self._feed_key(spec, posts) for spec in plan}
        stale = [s for s in plan if self._feeds.get(s.path, ("", {}))[0] != keys[s.path]]
        rendered = render_feeds(stale, posts, settings.feed_options) if stale else {}
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

    @property
    def empty(self) -> bool:
        """True before the first render (no feed kept to compare with)."""
        return not self._feeds

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


class KeptRenders:
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
