"""The posts some feed shows, rendered: reused where a kept or stored render still fits,
the rest rendered in worker processes when there are many (the main process takes a share).

A big build's renders and feeds share one pool of worker processes (:func:`tail_pool`),
forked once the plan is known, with everything imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from feedsvc.batches import Batches, worker_pool
from feedsvc.config import Settings
from feedsvc.feed_cache import RenderCache
from feedsvc.models import Post, PostMeta, Problem
from feedsvc.reading import render_batch
from feedsvc.storage import Store
from feedsvc.storage.posts import Render, load_renders

# Below this many posts, worker processes cost more than they save (a render is ~0.5 ms;
# forking the pool costs ~20 ms). Feeds likewise, from FEEDS_THRESHOLD (~5 ms a feed).
RENDER_THRESHOLD = 64
FEEDS_THRESHOLD = 8


@contextmanager
def tail_pool(workers: int, posts: int, feeds: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for a big build's renders, posts then feeds; None for a small one.
    One core fewer than ``workers``: the main process renders its share."""
    if workers < 2 or (posts < RENDER_THRESHOLD and feeds < FEEDS_THRESHOLD):
        yield None
        return
    pool = worker_pool(workers - 1)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass
class Rendering:
    posts: dict[str, Post]  # by id: the kept and stored renders that still fit
    todo: list[tuple[PostMeta, str]]  # the rest, with their files' paths
    batches: Batches[Settings, Any, Any]


def start_render(
    settings: Settings,
    store: Store,
    kept: RenderCache,
    metas: Sequence[PostMeta],
    keys: dict[str, str],
    broken_paths: set[str],
    *,
    reuse: bool,
    pool: ProcessPoolExecutor | None,
    workers: int,
    stored: bool = True,
) -> Rendering:
    """Posts whose kept or stored render still fits (``keys``: each source's render key),
    and the renders started for the rest. ``stored``: whether the store may hold renders
    (not on a new store's first build)."""
    posts: dict[str, Post] = {}
    rest = []
    for meta in metas:
        post = kept.get(meta, keys[meta.source]) if reuse else None
        if post is not None:
            posts[meta.id] = post
        else:
            rest.append(meta)
    found: dict[str, Render] = {}
    if stored:
        with store.read() as conn:
            found = load_renders(conn, [m.source for m in rest])
    todo: list[tuple[PostMeta, str]] = []
    for meta in rest:
        render = found.get(meta.source)
        if render is not None and (
            meta.source in broken_paths or (reuse and render.render_key == keys[meta.source])
        ):
            posts[meta.id] = Post(meta, render.html, render.summary)
        elif meta.source not in broken_paths:
            todo.append((meta, str(settings.content_dir / meta.source)))
    batches = Batches(
        render_batch,
        settings,
        todo,
        workers=workers,
        threshold=RENDER_THRESHOLD,
        main_share=1 / workers if pool is not None else 0.0,
        pool=pool,
    )
    return Rendering(posts, todo, batches)


def finish_render(
    rendering: Rendering, key: Callable[[PostMeta], str], problems: list[Problem]
) -> list[Render]:
    """Collect the renders into ``rendering.posts``; the new ones, for the store."""
    renders: list[Render] = []
    for (meta, _), (post, found) in zip(rendering.todo, rendering.batches.collect(), strict=True):
        problems.extend(found)
        if post is None:
            continue
        rendering.posts[meta.id] = post
        renders.append(Render(meta.source, post.html, post.summary, key(meta)))
    return renders
