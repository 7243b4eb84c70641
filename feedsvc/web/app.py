"""The Starlette app: feeds, pages, subscription, health and metrics.

    SecurityHeaders ─▶ CatchErrors ─▶ BodyLimit ─▶ Starlette router
      CSP, nosniff,     500 page,      413 past       /, /subscribe, /confirm/…,
      frame-ancestors   no traces      max_body       /unsubscribe/…, /preferences/…,
                                                      /healthz, /metrics, feeds

``/metrics`` is for the operator only: with ``server.metrics_token`` (or the variable
``server.metrics_token_env`` names) a request must bear it; without one, only a loopback
peer that sent no proxy header gets it (:func:`metrics`).

The middlewares are plain ASGI (no per-request task or body copying), so serving a feed
from memory stays cheap. ``create_app`` takes everything it needs — settings, store,
clock, delivery backend — and keeps no global state.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc.clock import Clock
from feedsvc.config import Settings, check_metrics_token
from feedsvc.delivery.outbox import Backend
from feedsvc.errors import ConfigError
from feedsvc.newsletter.tokens import Tokens, load_secrets
from feedsvc.storage import Store
from feedsvc.templating import environment, render
from feedsvc.web.metrics import CONTENT_TYPE as METRICS_TYPE
from feedsvc.web.metrics import Metrics
from feedsvc.web.ratelimit import RateLimiter
from feedsvc.web.served import FeedFile, ServedFeeds, is_feed_path

log = logging.getLogger("feedsvc.web")

MAX_BODY = 16 * 1024
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
FEED_CACHE_CONTROL = "public, max-age=300"
SUBSCRIBE_BURST = 10
SUBSCRIBE_PER_SECOND = 1 / 30


@dataclass
class WebState:
    """What the routes share (on ``app.state.web``)."""

    settings: Settings
    store: Store
    clock: Clock
    backend: Backend | None
    tokens: Tokens
    secret: bytes  # for the CSRF tokens of forms
    env: Environment
    feeds: ServedFeeds
    metrics: Metrics
    subscribe_limit: RateLimiter
    secure_cookies: bool
    metrics_token: str | None = None  # see metrics_token_of

    def page(self, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        """A page from ``templates/``, with what every page shows."""
        full = {"site": self.settings.site, "feeds": self.feed_links(), **context}
        return HTMLResponse(render(self.env, name, full), status_code=status)

    def feed_links(self) -> list[dict[str, str]]:
        labels = {"feed.xml": "RSS", "atom.xml": "Atom", "feed.json": "JSON Feed"}
        return [
            {
                "href": "/" + feed.path,
                "type": feed.content_type.split(";")[0],
                "label": labels[feed.path],
            }
            # time.monotonic, not the clock: only the stat throttle's interval.
            for feed in self.feeds.feeds(time.monotonic())
        ]


def state_of(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- error pages ---------------------------------------------------------------------

_REASONS = {
    400: ("잘못된 요청입니다", "요청을 처리할 수 없습니다. 링크나 입력한 내용을 확인해 주세요."),
    403: ("요청을 확인할 수 없습니다", "페이지를 새로 고친 뒤 다시 시도해 주세요."),
    404: ("페이지를 찾을 수 없습니다", "주소가 바뀌었거나 없는 페이지입니다."),
    405: ("허용되지 않는 방법입니다", "이 주소는 그 방법으로 요청할 수 없습니다."),
    413: ("요청이 너무 큽니다", "보낸 내용이 너무 깁니다. 줄여서 다시 보내 주세요."),
    415: ("지원하지 않는 형식입니다", "양식이나 JSON으로 보내 주세요."),
    429: ("요청이 너무 많습니다", "잠시 뒤에 다시 시도해 주세요."),
    500: (
        "일시적인 오류가 났습니다",
        "잠시 뒤에 다시 시도해 주세요. 문제가 계속되면 운영자에게 알려 주세요.",
    ),
}


def error_page(web: WebState, status: int, detail: str | None = None) -> HTMLResponse:
    title, body = _REASONS.get(status, _REASONS[400])
    return web.page(
        "error.html.j2",
        {"title": title, "message": detail or body, "status": status},
        status=status,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    web = state_of(request)
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
    if detail is not None and not any("가" <= ch <= "힣" for ch in detail):
        detail = None  # Starlette's own English reason phrases: show ours
    response = error_page(web, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# --- plain ASGI middlewares ----------------------------------------------------------


class SecurityHeaders:
    """Adds CSP, nosniff and frame protection to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


# Control flow within this module (caught in BodyLimit), so not in feedsvc.errors.
class _BodyTooLarge(Exception):
    """A request body past the limit (raised while reading it)."""


class BodyLimit:
    """Refuses bodies over ``limit`` bytes: by Content-Length at once, else while reading."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    raise _BodyTooLarge
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        await self.app(scope, counted, send)


class CatchErrors:
    """Turns any exception into a plain error page (413 for big bodies, else 500): the
    traceback goes to the log, never to the client."""

    def __init__(self, app: ASGIApp, web: Callable[[], WebState]) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except _BodyTooLarge:
            if not started:
                await error_page(self.web(), 413)(scope, receive, send)
        except Exception:
            log.exception("error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_page(self.web(), 500)(scope, receive, send)


# --- feeds ---------------------------------------------------------------------------


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _not_modified(request: Request, feed: FeedFile) -> bool:
    given = request.headers.get("if-none-match")
    if given is not None:
        return _etag_matches(given, feed.etag)
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return feed.last_modified <= moment


async def serve_feed(request: Request) -> Response:
    """A feed file from memory, conditional GET, gzip, HEAD."""
    path = request.path_params["path"]
    web = state_of(request)
    # time.monotonic, not the clock: only the stat throttle's interval.
    feed = web.feeds.get(path, time.monotonic()) if is_feed_path(path) else None
    if feed is None:
        raise HTTPException(404)
    headers = {
        "ETag": feed.etag,
        "Last-Modified": feed.last_modified_header,
        "Cache-Control": FEED_CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, feed):
        return Response(status_code=304, headers=headers)
    body = feed.body
    if feed.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = feed.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, headers=headers, media_type=feed.content_type)


# --- operations ----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """200 when the store answers and takes writes (a sender can record what it sends);
    503 with a short reason otherwise."""
    from feedsvc.storage.health import check_writable

    web = state_of(request)

    def ping() -> None:
        with web.store.read() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except SQLAlchemyError as exc:
        log.warning("health check: the store is not reachable: %s", exc)
        return JSONResponse({"status": "error", "store": "unreachable"}, status_code=503)
    try:
        await run_in_threadpool(check_writable, web.store)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("health check: the store does not take writes: %s", exc)
        return JSONResponse(
            {"status": "error", "store": "not writable"},
            status_code=503,
            headers={"Cache-Control": "no-store"},
        )
    return JSONResponse({"status": "ok", "store": "ok"}, headers={"Cache-Control": "no-store"})


# Headers a reverse proxy adds: a request carrying one came through a proxy, so its
# loopback peer address says nothing about who asked.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def metrics_token_of(settings: Settings) -> str | None:
    """The bearer token for /metrics: ``$<server.metrics_token_env>`` when set (a secret
    is better kept out of config.yaml), else ``server.metrics_token``; None for none."""
    server = settings.server
    from_env = os.environ.get(server.metrics_token_env, "")
    if not from_env:
        return server.metrics_token
    try:
        return check_metrics_token(from_env)
    except ValueError as exc:
        raise ConfigError(
            settings.source,
            [
                f"server.metrics_token_env = {server.metrics_token_env!r}: the environment "
                f"variable holds a token that is not usable: {exc}"
            ],
        ) from None


def is_local_peer(request: Request) -> bool:
    """True when the TCP peer is a loopback address and no proxy header came with the
    request (behind a proxy on the same machine every request comes from 127.0.0.1)."""
    if request.client is None or any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False  # not an IP (a Unix socket, a test client's name)
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


def _bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def metrics(request: Request) -> Response:
    """Prometheus text, only for whoever may read it: with ``server.metrics_token`` set,
    a request bearing it (from anywhere; 401 otherwise); without one, a loopback peer that
    sent no proxy header (403 otherwise)."""
    web = state_of(request)
    refused = {"Cache-Control": "no-store"}
    if web.metrics_token is not None:
        if not _bearer_ok(request, web.metrics_token):
            return PlainTextResponse(
                "401: /metrics needs the header Authorization: Bearer <server.metrics_token>.\n",
                status_code=401,
                headers={**refused, "WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    elif not is_local_peer(request):
        return PlainTextResponse(
            "403: /metrics is served to loopback clients that are not behind a proxy; set "
            "server.metrics_token (or the environment variable server.metrics_token_env "
            "names) to scrape it from elsewhere.\n",
            status_code=403,
            headers=refused,
        )
    body = await run_in_threadpool(web.metrics.render)
    return PlainTextResponse(body, media_type=METRICS_TYPE, headers={"Cache-Control": "no-store"})


# --- the app -------------------------------------------------------------------------


def create_app(
    settings: Settings,
    store: Store,
    clock: Clock,
    backend: Backend | None,
    *,
    tokens: Tokens | None = None,
    max_body: int = MAX_BODY,
    subscribe_limit: RateLimiter | None = None,
    feed_check_every: float = 1.0,
) -> Starlette:
    """The web app for one site. ``backend`` sends confirmation emails (None: they are
    queued in the store and sent by whoever runs :func:`send_pending_confirmations`)."""
    from feedsvc.web.subscription import routes as subscription_routes

    keys = load_secrets(settings, store=store)  # oldest first: the newest signs
    web = WebState(
        settings=settings,
        store=store,
        clock=clock,
        backend=backend,
        tokens=tokens if tokens is not None else Tokens(keys, clock=clock),
        secret=keys[-1],
        env=environment(settings),
        feeds=ServedFeeds(settings.output_dir, check_every=feed_check_every),
        metrics=Metrics(store, clock),
        subscribe_limit=subscribe_limit
        or RateLimiter(burst=SUBSCRIBE_BURST, per_second=SUBSCRIBE_PER_SECOND),
        secure_cookies=settings.server.public_url.startswith("https://"),
        metrics_token=metrics_token_of(settings),
    )
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error
    }
    app = Starlette(
        routes=[
            *subscription_routes(),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/{path:path}", serve_feed, methods=["GET", "HEAD"]),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(CatchErrors, web=lambda: web),
            Middleware(BodyLimit, limit=max_body),
        ],
        exception_handlers=handlers,
    )
    app.state.web = web
    return app
