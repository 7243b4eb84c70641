"""A minimal page for each post, when the daemon is the site (``Settings.serves_site``:
``site.url`` is at the origin of ``server.public_url``, as after ``feedsvc init``). Home-page
titles and the digests' "read on" links point at ``site.url``; without these pages they
would answer 404 on a daemon that is its own site.

The page shows what the store keeps of the post's last good build — title, date in the
site's zone, the rendered HTML (sanitised as for email) — and links to the feeds and the
subscribe form. Every path that names no post (and no feed) is still a 404.
"""

from __future__ import annotations

import time
from functools import partial
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc.models import Post
from feedsvc.newsletter.views import post_view
from feedsvc.storage.digests import live_metas, load_posts
from feedsvc.web.served import ServedFeeds, is_feed_path, serve_feed
from feedsvc.web.state import WebState, state_of

POST_CACHE_CONTROL = "public, max-age=60"


def url_path(url: str) -> str:
    """The decoded path of a post's URL, as a request for it arrives (``scope["path"]``)."""
    return unquote(urlsplit(url).path) or "/"


def post_at(web: WebState, path: str) -> Post | None:
    """The live post whose URL has ``path`` (with or without its trailing slash), or None
    (reads the store)."""
    wanted = {path, path + "/"} if not path.endswith("/") else {path}
    now = web.clock.now()
    with web.store.read() as conn:
        for meta in live_metas(conn, now):
            if url_path(meta.url) in wanted:
                return load_posts(conn, [meta.id], now).get(meta.id)
    return None


async def serve_post_or_feed(feeds: ServedFeeds, request: Request) -> Response:
    """A feed file when the path names one, else the post page at that path, else 404."""
    path = request.path_params["path"]
    if is_feed_path(path) and feeds.get(path, time.monotonic()) is not None:
        return await serve_feed(feeds, request)
    web = state_of(request)
    post = await run_in_threadpool(post_at, web, "/" + path)
    if post is None:
        raise HTTPException(404)
    site = web.settings.site
    view = post_view(post, ZoneInfo(site.timezone), site.language)
    response = web.page("post.html.j2", {"title": view.title, "post": view})
    response.headers["Cache-Control"] = POST_CACHE_CONTROL
    return response


def routes(feeds: ServedFeeds) -> list[Route]:
    """Every path no other route takes (last in the app's routes): feeds, then posts."""
    endpoint = partial(serve_post_or_feed, feeds)
    return [Route("/{path:path}", endpoint, methods=["GET", "HEAD"], name="serve_post_or_feed")]
