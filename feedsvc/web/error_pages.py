"""Error pages: every error the app answers is a page in the site's look and language
(Starlette's own reason phrases are replaced by the catalogue's), with no trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from feedsvc.web.state import WebState, state_of

# The statuses with their own title and text in the catalogue (error.<status>.title,
# error.<status>.body); any other reads 400's.
STATUSES = (400, 403, 404, 405, 413, 415, 429, 500)


def error_page(web: WebState, status: int, detail: str | None = None) -> HTMLResponse:
    """The error page of ``status``: ``detail`` (already in the site's language) or the
    catalogue's text for the status."""
    known = status if status in STATUSES else 400
    texts = web.texts
    return web.page(
        "error.html.j2",
        {
            "title": texts(f"error.{known}.title"),
            "message": detail or texts(f"error.{known}.body"),
            "status": status,
        },
        status=status,
    )


def _starlette_phrase(status: int, detail: str) -> bool:
    """Whether ``detail`` is Starlette's own reason phrase for ``status`` (what an
    HTTPException raised without a detail carries), not a message of ours."""
    try:
        default: str = HTTPException(status_code=status).detail
    except ValueError:  # a status with no phrase
        return False
    return detail == default


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    web = state_of(request)
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
    if detail is not None and _starlette_phrase(exc.status_code, detail):
        detail = None  # Starlette's own reason phrase ("Not Found"): show ours
    response = error_page(web, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """The app's exception handlers: an :class:`HTTPException` becomes :func:`http_error`'s
    page (anything else is :class:`feedsvc.web.middleware.CatchErrors`'s)."""
    return {HTTPException: http_error}
