"""What the subscriber's pages show besides their own content: the site's recent posts
and categories beside a form (with its CSRF cookie), the time zones to choose from,
one-message notices, and the one script (the preferences page's time zone guess).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feedsvc.newsletter.categories import SiteCategories, site_categories
from feedsvc.newsletter.labels import date_label
from feedsvc.storage.digests import live_metas
from feedsvc.web.csrf import csrf_pair, with_csrf
from feedsvc.web.forms import MAX_CATEGORIES
from feedsvc.web.state import WebState

RECENT_POSTS = 10
TIMEZONE_SCRIPT = "/_feedsvc/timezone.js"
_SCRIPT_FILE = Path(__file__).with_name("static") / "timezone.js"
FREQUENCIES = ("immediate", "daily", "weekly")
# The regions of the IANA zones a list offers; the older aliases (US/Pacific, Etc/GMT+9,
# Japan, …) are still accepted when typed or already chosen, but not listed.
ZONE_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
ZoneGroups = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


@functools.lru_cache(maxsize=1)
def zone_groups() -> ZoneGroups:
    """Every listed time zone as (region, ((name, label), …)), regions and names sorted;
    the label is the name without its region, spaced: ``Argentina/Buenos Aires``. UTC
    closes the list, in a group of its own."""
    names = sorted(available_timezones())
    groups: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for region in ZONE_REGIONS:
        members = [name for name in names if name.startswith(region + "/")]
        groups.append(
            (region, tuple((name, name.partition("/")[2].replace("_", " ")) for name in members))
        )
    groups.append(("UTC", (("UTC", "UTC"),)))
    return tuple(groups)


def site_context(web: WebState) -> dict[str, Any]:
    """The recent posts, the categories to choose from (one spelling per category, as
    digests match them) and the frequencies (reads the store)."""
    with web.store.read() as conn:
        metas = live_metas(conn, web.clock.now())
    site = SiteCategories.from_metas(metas)
    zone = ZoneInfo(web.settings.site.timezone)
    language = web.settings.site.language
    posts = [
        {
            "title": meta.title,
            "url": meta.url,
            "date": date_label(meta.published.astimezone(zone), language),
            "iso": meta.published.isoformat(),
            "excerpt": meta.excerpt or "",
            "categories": meta.categories,
        }
        for meta in metas[:RECENT_POSTS]
    ]
    return {
        "posts": posts,
        "categories": list(site.names[:MAX_CATEGORIES]),
        "site_categories": site,
        "frequencies": {name: web.texts(f"frequency.{name}") for name in FREQUENCIES},
        "zones": zone_groups(),
    }


def current_categories(web: WebState) -> SiteCategories:
    """The categories of the posts live now (reads the store), to check a form against."""
    with web.store.read() as conn:
        return site_categories(conn, web.clock.now())


async def form_page(
    web: WebState, request: Request, name: str, context: Mapping[str, Any], status: int = 200
) -> Response:
    """A page with a form: :func:`site_context`, ``context`` and a CSRF field and cookie."""
    full = await run_in_threadpool(site_context, web)
    nonce, field = csrf_pair(web, request)
    full.update({"csrf": field, **context})
    return with_csrf(web, web.page(name, full, status), nonce)


def notice(web: WebState, title: str, message: str, note: str) -> HTMLResponse:
    """A page that says one thing: what happened, and what the subscriber may do next."""
    return web.page("notice.html.j2", {"title": title, "message": message, "note": note})


@functools.lru_cache(maxsize=1)
def _script() -> bytes:
    return _SCRIPT_FILE.read_bytes()


async def timezone_script(request: Request) -> Response:
    """The preferences page's optional script (a progressive enhancement)."""
    return Response(
        _script(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def routes() -> list[Route]:
    return [Route(TIMEZONE_SCRIPT, timezone_script, methods=["GET", "HEAD"])]
