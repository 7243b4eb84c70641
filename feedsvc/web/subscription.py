"""The subscriber's side: the home page and sign-up (``POST /subscribe``, rate limited per
client network). The pages behind the links in emails are :mod:`feedsvc.web.email_links`.

Forms carry a signed double-submit CSRF token (:mod:`feedsvc.web.csrf`); the RFC 8058
one-click ``POST /unsubscribe/{token}`` needs none — the token in the URL is the
credential, and a mail provider posts it with no cookie. JSON sign-ups need none either: a
cross-site page cannot send ``application/json`` without a CORS preflight, which this app
never grants.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc.errors import BadInput
from feedsvc.newsletter.confirmations import (
    SignUp,
    request_confirmation,
    send_pending_confirmations,
)
from feedsvc.newsletter.subscribers import mask_address
from feedsvc.web.csrf import csrf_ok
from feedsvc.web.error_pages import error_page
from feedsvc.web.forms import (
    FORM_TYPES,
    HONEYPOT,
    check_categories,
    form_fields,
    json_fields,
    media_type,
    read_form,
    sign_up_from,
)
from feedsvc.web.pages import current_categories, form_page, notice
from feedsvc.web.ratelimit import client_key
from feedsvc.web.state import WebState, client_ip, state_of

log = logging.getLogger("feedsvc.web")
sign_ups = logging.getLogger("feedsvc.subscribers")  # addresses masked: k***@example.kr

# The production limit of POST /subscribe, per client network: 10 at once, then one
# every 30 seconds.
SUBSCRIBE_BURST = 10
SUBSCRIBE_PER_SECOND = 1 / 30


async def home(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    web = state_of(request)
    context = {"error": error, "honeypot": HONEYPOT}
    return await form_page(web, request, "index.html.j2", context, status)


async def index(request: Request) -> Response:
    return await home(request)


async def subscribe(request: Request) -> Response:
    """POST /subscribe: the same answer for every valid address (no enumeration)."""
    web = state_of(request)
    ip = client_ip(request)
    wants_json = media_type(request) == "application/json"
    texts = web.texts
    bucket = client_key(ip)
    # time.monotonic, not the clock: a rate limit counts seconds between requests.
    if not web.subscribe_limit.allow(bucket, time.monotonic()):
        web.metrics.subscribe_requests.labels("limited").inc()
        wait = str(max(1, web.subscribe_limit.retry_after(bucket, time.monotonic())))
        if wants_json:
            return JSONResponse(
                {"error": texts("error.too_many")},
                status_code=429,
                headers={"Retry-After": wait},
            )
        response = error_page(web, 429)
        response.headers["Retry-After"] = wait
        return response
    fields: dict[str, Any]
    if wants_json:
        try:
            fields = json_fields(await request.body(), texts)
        except BadInput as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
    elif media_type(request) in FORM_TYPES:
        form = await read_form(request, texts)
        if not csrf_ok(web, request, form):
            return error_page(web, 403, texts("error.form_expired"))
        fields = form_fields(form)
    else:
        raise HTTPException(415)
    if fields.get(HONEYPOT):
        # A bot filled the hidden field: answer as if all went well, do nothing.
        web.metrics.subscribe_requests.labels("honeypot").inc()
        return _accepted(web, wants_json, None)
    try:
        sign_up = sign_up_from(fields, ip, texts)
        if sign_up.categories:
            site = await run_in_threadpool(current_categories, web)
            check_categories(sign_up.categories, site, texts)
    except BadInput as exc:
        web.metrics.subscribe_requests.labels("invalid").inc()
        if wants_json:
            answer = {"error": exc.message}
            if exc.field is not None:
                answer["field"] = exc.field
            return JSONResponse(answer, status_code=400)
        return await home(request, error=exc.message, status=400)
    # The answer goes out first, and the same for every address: whether it is new, pending
    # or active shows neither in the answer, nor in its timing, nor in /metrics.
    web.metrics.subscribe_requests.labels("accepted").inc()
    task = BackgroundTask(record_sign_up, web, sign_up, web.clock.now())
    return _accepted(web, wants_json, task)


def _accepted(web: WebState, wants_json: bool, task: BackgroundTask | None) -> Response:
    texts = web.texts
    message = texts("notice.check_inbox_message")
    if wants_json:
        return JSONResponse(
            {"status": "check-your-inbox", "message": message}, 202, background=task
        )
    response = notice(web, texts("notice.check_inbox"), message, texts("notice.check_inbox_note"))
    response.background = task
    return response


async def record_sign_up(web: WebState, sign_up: SignUp, now: datetime) -> None:
    """After the answer went out: record the sign-up, queue a confirmation when one is due
    (:func:`request_confirmation`) and hand it to the backend."""
    try:
        queued = await run_in_threadpool(
            request_confirmation, web.store, web.settings, web.tokens, web.env, sign_up, now
        )
    except SQLAlchemyError as exc:
        # The subscriber was already told to check the inbox; the log says what was lost.
        log.error(
            "a sign-up from the web was not recorded: the store failed (%s); the person must "
            "sign up again once the store works (see /healthz and feedsvc status)",
            exc,
        )
        return
    sign_ups.info(
        "sign-up: %s (%s)",
        mask_address(sign_up.email),
        "confirmation email queued"
        if queued
        else "no new confirmation email: one went out recently, or the address is subscribed "
        "or refused",
    )
    if queued and web.backend is not None:
        await send_confirmations(web)


async def send_confirmations(web: WebState) -> None:
    """After the answer went out: hand the queued confirmation(s) to the backend."""
    assert web.backend is not None
    backend = web.backend
    with web.metrics.confirmation_send.time():
        await run_in_threadpool(send_pending_confirmations, web.store, backend, web.clock)


def routes() -> list[Route]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe, methods=["POST"]),
    ]
