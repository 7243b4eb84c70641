"""A minimal page for each post, when the daemon is the site (``Settings.serves_site``:
``site.url`` is at the origin of ``server.public_url``, as after ``feedsvc init``). Home-page
titles and the digests' "read on" links point at ``site.url``; without these pages they
would answer 404 on a daemon that is its own site.

The page shows what the store keeps of the post's last good build — title, date in the
site's zone, the rendered HTML (sanitised as for email) — and links to the feeds and the
subscribe form. Every path that names no post (and no feed) is still a 404.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc.models import Post
from feedsvc.newsletter.views import post_view
from feedsvc.storage.digests import live_metas, load_posts
from feedsvc.storage.schema import builds
from feedsvc.web.served import ServedFeeds, is_feed_path, serve_feed
from feedsvc.web.state import WebState, state_of

POST_CACHE_CONTROL = "public, max-age=60"


def url_path(url: str) -> str:
    """The decoded path of a post's URL, as a request for it arrives (``scope["path"]``)."""
    return unquote(urlsplit(url).path) or "/"


REREAD_AFTER = timedelta(minutes=1)  # a miss reads the posts again at most this often


@dataclass
class PostIndex:
    """Which post each URL path names, read from the store again after each build (and,
    for a path it does not know, at most once a minute): a request for a made-up path
    costs one small query, not a read of every post."""

    build_id: int | None = None
    read_at: datetime | None = None
    paths: dict[str, str] = field(default_factory=dict)  # URL path → post id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post_id(self, conn: Connection, path: str, now: datetime) -> str | None:
        build_id = conn.execute(select(func.max(builds.c.id))).scalar()
        with self.lock:
            found = self.paths.get(path) if build_id == self.build_id else None
            stale = self.read_at is None or now - self.read_at >= REREAD_AFTER
            if found is None and (build_id != self.build_id or stale):
                self.paths = {url_path(meta.url): meta.id for meta in live_metas(conn, now)}
                self.build_id, self.read_at = build_id, now
                found = self.paths.get(path)
            return found


def post_at(web: WebState, index: PostIndex, path: str) -> Post | None:
    """The live post whose URL has ``path`` (with or without its trailing slash), or None
    (reads the store)."""
    now = web.clock.now()
    with web.store.read() as conn:
        post_id = index.post_id(conn, path, now)
        if post_id is None and not path.endswith("/"):
            post_id = index.post_id(conn, path + "/", now)
        if post_id is None:
            return None
        return load_posts(conn, [post_id], now).get(post_id)


async def serve_post_or_feed(feeds: ServedFeeds, index: PostIndex, request: Request) -> Response:
    """A feed file when the path names one, else the post page at that path, else 404."""
    path = request.path_params["path"]
    if is_feed_path(path) and feeds.get(path, time.monotonic()) is not None:
        return await serve_feed(feeds, request)
    web = state_of(request)
    post = await run_in_threadpool(post_at, web, index, "/" + path)
    if post is None:
        raise HTTPException(404)
    site = web.settings.site
    view = post_view(post, ZoneInfo(site.timezone), site.language)
    response = web.page("post.html.j2", {"title": view.title, "post": view})
    response.headers["Cache-Control"] = POST_CACHE_CONTROL
    return response


def routes(feeds: ServedFeeds) -> list[Route]:
    """Every path no other route takes (last in the app's routes): feeds, then posts."""
    endpoint = partial(serve_post_or_feed, feeds, PostIndex())
    return [Route("/{path:path}", endpoint, methods=["GET", "HEAD"], name="serve_post_or_feed")]
