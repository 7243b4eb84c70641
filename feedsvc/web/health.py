"""``GET /healthz``: whether the store answers a read and takes a write."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc.storage.health import check_writable
from feedsvc.web.state import state_of

log = logging.getLogger("feedsvc.web")


async def healthz(request: Request) -> Response:
    """200 when the store answers and takes writes (a sender can record what it sends);
    503 with a short reason otherwise."""
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


def routes() -> list[Route]:
    return [Route("/healthz", healthz, methods=["GET", "HEAD"])]
