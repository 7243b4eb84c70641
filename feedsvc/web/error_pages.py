"""Error pages: every error the app answers is a page in the site's look, in Korean
(Starlette's own English reason phrases are replaced by ours), with no trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from feedsvc.web.state import WebState, state_of

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


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """The app's exception handlers: an :class:`HTTPException` becomes :func:`http_error`'s
    page (anything else is :class:`feedsvc.web.middleware.CatchErrors`'s)."""
    return {HTTPException: http_error}
