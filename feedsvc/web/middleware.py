"""The app's plain ASGI middlewares, outermost first:

    AccessLog ─▶ SecurityHeaders ─▶ CatchErrors ─▶ BodyLimit ─▶ Starlette router
    (when         CSP, nosniff,     500 page,      413 past
    server.       frame-ancestors   no traces      max_body
    access_log)

Plain ASGI (no per-request task or body copying), so serving a feed from memory stays
cheap.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc.web.error_pages import error_page
from feedsvc.web.state import WebState

log = logging.getLogger("feedsvc.web")
access_log = logging.getLogger("feedsvc.access")

MAX_BODY = 16 * 1024
# Scripts: only files from the app itself (the one is /_feedsvc/timezone.js), never inline;
# everything else the app serves is HTML, XML or JSON, which nosniff keeps from running.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


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

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY, larger: dict[str, int] | None = None
    ) -> None:
        """``larger``: path prefix → its own limit (the webhooks' batches of events)."""
        self.app = app
        self.default = limit
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((n for p, n in self.larger.items() if path.startswith(p)), self.default)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    raise _BodyTooLarge
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
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


# The token of an email link is a credential: a log line shows its route, not the token.
_TOKEN_PATH = re.compile(r"^/(confirm|unsubscribe|preferences)/[^/]+")


def loggable_path(path: str) -> str:
    """``path`` as an access log line shows it: the token of an email link is hidden."""
    return _TOKEN_PATH.sub(r"/\1/…", path)


class AccessLog:
    """One line per request on the ``feedsvc.access`` logger: client, method, path (tokens
    hidden, no query string), status, bytes and milliseconds. Only on when
    ``server.access_log`` is true."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, sent = 0, 0

        async def counted(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            client = scope.get("client")
            access_log.info(
                '%s "%s %s" %s %d %.1f ms',
                client[0] if client else "-",
                scope.get("method", "-"),
                loggable_path(scope.get("path", "")),
                status or "-",
                sent,
                (time.perf_counter() - started) * 1000,
            )
