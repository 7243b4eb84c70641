"""The posts some feed shows, rendered: reused where a kept or stored render still fits,
the rest rendered in worker processes when there are many (the main process takes a share).

A big build's renders and feeds share one pool of worker processes (:func:`tail_pool`),
forked once the plan is known, with everything imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from feedsvc.build.kept import KeptRenders
from feedsvc.build.parallel import Batches, worker_pool
from feedsvc.config import PostRenderOptions, Settings
from feedsvc.content.reading import render_batch
from feedsvc.content.sanitise import sanitise_feed_html
from feedsvc.feeds.output import Staged, discard, publish, stage_feed_files
from feedsvc.models import Post, PostMeta, Problem
from feedsvc.storage import Store
from feedsvc.storage.posts import Render, load_renders

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from feedsvc.feeds.plan import FeedSpec

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
    batches: Batches[PostRenderOptions, Any, Any] | None  # rendering them (None: render_split will)


def start_render(
    settings: Settings,
    options: PostRenderOptions,
    store: Store,
    kept: KeptRenders,
    metas: Sequence[PostMeta],
    keys: dict[str, str],
    broken_paths: set[str],
    *,
    reuse: bool,
    pool: ProcessPoolExecutor | None,
    workers: int,
    stored: bool = True,
    begin: bool = True,
) -> Rendering:
    """Posts whose kept or stored render still fits (``keys``: each source's render key),
    and the renders started for the rest with ``options`` (``begin``; else
    :func:`render_split` does them).
    ``stored``: whether the store may hold renders (not on a new store's first build)."""
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
        if render is not None and reuse and render.render_key == keys[meta.source]:
            posts[meta.id] = Post(meta, render.html, render.summary)
        elif render is not None and meta.source in broken_paths:
            # A file broken now keeps its last good render, which may be older than the
            # feed sanitising at render time: sanitised here (again, if not).
            posts[meta.id] = Post(meta, _feed_ready(render.html, meta, options), render.summary)
        elif meta.source not in broken_paths:
            todo.append((meta, str(settings.content_dir / meta.source)))
    if not begin:
        return Rendering(posts, todo, None)
    batches = Batches(
        render_batch,
        options,
        todo,
        workers=workers,
        threshold=RENDER_THRESHOLD,
        main_share=1 / workers if pool is not None else 0.0,
        pool=pool,
    )
    return Rendering(posts, todo, batches)


def _feed_ready(html: str, meta: PostMeta, options: PostRenderOptions) -> str:
    markup = options.markup
    return sanitise_feed_html(
        html, markup.iframe_hosts, base_url=meta.url, site_url=markup.site_url
    )


def finish_render(
    rendering: Rendering, key: Callable[[PostMeta], str], problems: list[Problem]
) -> list[Render]:
    """Collect the renders into ``rendering.posts``; the new ones, for the store."""
    renders: list[Render] = []
    assert rendering.batches is not None
    for (meta, _), (post, found) in zip(rendering.todo, rendering.batches.collect(), strict=True):
        problems.extend(found)
        if post is None:
            continue
        rendering.posts[meta.id] = post
        renders.append(Render(meta.source, post.html, post.summary, key(meta)))
    return renders


def render_split(
    settings: Settings,
    options: PostRenderOptions,
    plan: Sequence[FeedSpec],
    rendering: Rendering,
    pool: ProcessPoolExecutor,
    key: Callable[[PostMeta], str],
    problems: list[Problem],
) -> tuple[list[str], list[str], list[Render]]:
    """Every feed of ``plan`` with the posts it shows, half of the feeds here and half in
    ``pool``'s worker, each side rendering the posts of its own feeds (a post that both
    show is rendered on both sides) and staging its feed files: nothing waits for the
    other side but the end, when both sides' files are renamed into place.
    ``rendering.posts`` gets the new renders. Returns the feed files (paths below the
    output folder), those written, and the new renders."""
    todo = {meta.id: (meta, path) for meta, path in rendering.todo}
    halves = [_half(specs, rendering.posts, todo) for specs in _split(plan)]
    far = pool.submit(render_group, settings, options, *halves[1])
    try:
        names, near_staged, near = render_group(settings, options, *halves[0])
    except BaseException:
        with suppress(Exception):  # the far half's files are not published either
            discard(far.result()[1])
        raise
    try:
        far_names, far_staged, far_new = far.result()
    except BaseException:
        discard(near_staged)
        raise
    # Both halves staged: only now is anything renamed, so a full disk leaves the
    # previous build's complete set of feeds.
    written = sorted(publish(near_staged, far_staged))
    names += far_names
    renders: dict[str, Render] = {}
    seen: set[str] = set()
    for meta, post, found in near + far_new:
        if meta.source in seen:
            continue  # rendered on both sides: the same either way
        seen.add(meta.source)
        problems.extend(found)
        if post is not None:
            rendering.posts[meta.id] = post
            renders[meta.source] = Render(meta.source, post.html, post.summary, key(meta))
    return sorted(names), sorted(written), list(renders.values())


Half = tuple[list["FeedSpec"], dict[str, Post], list[tuple[PostMeta, str]]]
Rendered = list[tuple[PostMeta, Post | None, list[Problem]]]


def _split(plan: Sequence[FeedSpec]) -> tuple[list[FeedSpec], list[FeedSpec]]:
    """The feeds in two halves of about as many posts, a feed going where more of its
    posts already are (posts in both halves are rendered twice); the smaller first."""
    halves: tuple[list[FeedSpec], list[FeedSpec]] = ([], [])
    shown: tuple[set[str], set[str]] = (set(), set())
    for spec in sorted(plan, key=lambda s: -len(s.post_ids)):
        ids = set(spec.post_ids)
        grows = [len(ids - shown[0]), len(ids - shown[1])]  # posts each half would add
        sizes = [len(shown[0]) + grows[0], len(shown[1]) + grows[1]]
        # The half it adds less to, unless that half would outgrow the other by a feed.
        side = 0 if grows[0] <= grows[1] else 1
        if sizes[side] > sizes[1 - side] + len(ids) // 2:
            side = 1 - side
        halves[side].append(spec)
        shown[side].update(ids)
    # The smaller half first: it is this process's, which also sends the other away.
    return halves if len(shown[0]) <= len(shown[1]) else (halves[1], halves[0])


def _half(
    specs: list[FeedSpec], done: dict[str, Post], todo: dict[str, tuple[PostMeta, str]]
) -> Half:
    """Feeds with the posts already rendered that they show, and the ones to render."""
    shown = {pid for spec in specs for pid in spec.post_ids}
    return (
        specs,
        {pid: done[pid] for pid in shown if pid in done},
        [todo[pid] for pid in sorted(shown) if pid in todo],
    )


def render_group(
    settings: Settings,
    options: PostRenderOptions,
    specs: list[FeedSpec],
    done: dict[str, Post],
    todo: list[tuple[PostMeta, str]],
) -> tuple[list[str], Staged, Rendered]:
    """``todo`` rendered, then the feeds of ``specs`` from them and ``done`` (a post that
    failed to render is left out, as the build does), staged in the output folder but not
    renamed into place: the files' paths, the staged changed ones, and the renders."""
    from feedsvc.feeds.render import render_feeds

    posts = dict(done)
    new: Rendered = []
    rendered = render_batch(options, todo)
    for (meta, _), (post, found) in zip(todo, rendered, strict=True):
        new.append((meta, post, found))
        if post is not None:
            posts[meta.id] = post
    shown = [replace(s, post_ids=tuple(i for i in s.post_ids if i in posts)) for s in specs]
    files = render_feeds(shown, posts, settings.feed_options)
    staged = stage_feed_files(settings.output_dir, files, only=files.keys())
    return list(files), staged, new
