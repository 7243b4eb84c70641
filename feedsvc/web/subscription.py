"""The subscriber's side: home page, sign-up, confirm, unsubscribe, preferences.

Forms carry a signed double-submit CSRF token (a random cookie, and the same value signed
in a hidden field); the RFC 8058 one-click ``POST /unsubscribe/{token}`` needs none —
the token in the URL is the credential, and a mail provider posts it with no cookie. JSON
sign-ups need none either: a cross-site page cannot send ``application/json`` without a
CORS preflight, which this app never grants.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, TimestampSigner
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc.confirmations import SignUp, request_confirmation, send_pending_confirmations
from feedsvc.errors import AddressError
from feedsvc.messages import ONE_CLICK, date_label
from feedsvc.models import Frequency, Subscriber, SubscriberStatus
from feedsvc.storage.confirmations import last_confirmation_at
from feedsvc.storage.digests import live_metas
from feedsvc.storage.subscriptions import (
    change_preferences,
    confirm,
    subscriber_by_id,
    unsubscribe,
)
from feedsvc.subscribers import (
    clean_name,
    normalise_address,
    parse_categories,
    parse_frequency,
    parse_timezone,
)
from feedsvc.tokens import Purpose, TokenError
from feedsvc.web.app import WebState, client_ip, error_page, state_of

log = logging.getLogger("feedsvc.web")

CSRF_COOKIE = "feedsvc_csrf"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 2 * 24 * 3600
HONEYPOT = "website"
RECENT_POSTS = 10
MAX_CATEGORIES = 50
FREQUENCY_LABELS = {
    "immediate": "새 글이 올라올 때마다",
    "daily": "하루에 한 번",
    "weekly": "일주일에 한 번",
}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BAD_LINK = "링크가 올바르지 않거나 만료되었습니다. 받은 메일의 링크를 그대로 열어 주세요."


# --- CSRF ----------------------------------------------------------------------------


def _csrf_signer(web: WebState) -> TimestampSigner:
    return TimestampSigner(web.secret, salt="feedsvc.csrf")


def csrf_pair(web: WebState, request: Request) -> tuple[str, str]:
    """(cookie value, form field value) for a page with a form."""
    nonce = request.cookies.get(CSRF_COOKIE) or ""
    if len(nonce) != 32 or not nonce.isalnum():
        nonce = secrets.token_hex(16)
    return nonce, _csrf_signer(web).sign(nonce).decode("ascii")


def csrf_ok(web: WebState, request: Request, form: FormData) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    field = form.get(CSRF_FIELD)
    if not nonce or not isinstance(field, str):
        return False
    try:
        signed = _csrf_signer(web).unsign(field, max_age=CSRF_MAX_AGE).decode("ascii")
    except BadSignature:
        return False
    return secrets.compare_digest(signed, nonce)


def with_csrf(web: WebState, response: Response, nonce: str) -> Response:
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=CSRF_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=web.secure_cookies,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=100)
    except HTTPException:
        raise HTTPException(400, "양식을 읽을 수 없습니다.") from None


# --- home and sign-up ----------------------------------------------------------------


def _home_context(web: WebState) -> dict[str, Any]:
    with web.store.read() as conn:
        metas = live_metas(conn, web.clock.now())
    categories: list[str] = []
    for meta in metas:
        categories.extend(c for c in meta.categories if c not in categories)
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
        "categories": categories[:MAX_CATEGORIES],
        "frequencies": FREQUENCY_LABELS,
    }


async def home(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    web = state_of(request)
    context = await run_in_threadpool(_home_context, web)
    nonce, field = csrf_pair(web, request)
    context.update({"csrf": field, "error": error, "honeypot": HONEYPOT})
    return with_csrf(web, web.page("index.html.j2", context, status), nonce)


async def index(request: Request) -> Response:
    return await home(request)


class BadInput(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _sign_up_from(fields: dict[str, Any], ip: str | None) -> SignUp:
    email = fields.get("email")
    if not isinstance(email, str) or not email.strip():
        raise BadInput("이메일 주소를 입력해 주세요.")
    try:
        address = normalise_address(email)
    except AddressError:
        raise BadInput("이메일 주소의 형식이 올바르지 않습니다. 다시 확인해 주세요.") from None
    name = fields.get("name") or ""
    frequency = fields.get("frequency") or ""
    categories = fields.get("categories") or []
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(name, str) or not isinstance(frequency, str):
        raise BadInput("이름과 받는 주기는 글자로 보내 주세요.")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise BadInput("분류는 글자의 목록으로 보내 주세요.")
    if len(categories) > MAX_CATEGORIES:
        raise BadInput(f"분류는 {MAX_CATEGORIES}개까지 고를 수 있습니다.")
    try:
        return SignUp(
            email=address,
            name=clean_name(name),
            frequency=parse_frequency(frequency),
            categories=parse_categories(categories),
            ip=ip,
        )
    except ValueError:
        raise BadInput("받는 주기, 이름 또는 분류가 올바르지 않습니다.") from None


async def subscribe(request: Request) -> Response:
    """POST /subscribe: the same answer for every valid address (no enumeration)."""
    web = state_of(request)
    ip = client_ip(request)
    wants_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    if not web.subscribe_limit.allow(ip or "-", time.monotonic()):
        web.metrics.subscribe_requests.labels("limited").inc()
        wait = str(max(1, web.subscribe_limit.retry_after(ip or "-", time.monotonic())))
        if wants_json:
            return JSONResponse(
                {"error": "요청이 너무 많습니다. 잠시 뒤에 다시 시도해 주세요."},
                status_code=429,
                headers={"Retry-After": wait},
            )
        response = error_page(web, 429)
        response.headers["Retry-After"] = wait
        return response
    fields: dict[str, Any]
    if wants_json:
        try:
            parsed = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "JSON을 읽을 수 없습니다."}, status_code=400)
        if not isinstance(parsed, dict):
            return JSONResponse({"error": "JSON 객체로 보내 주세요."}, status_code=400)
        fields = parsed
    elif request.headers.get("content-type", "").split(";")[0].strip() in _FORM_TYPES:
        form = await read_form(request)
        if not csrf_ok(web, request, form):
            return error_page(
                web, 403, "양식이 만료되었습니다. 페이지를 새로 고친 뒤 다시 보내 주세요."
            )
        fields = {key: form.get(key) for key in form if key != "categories"}
        fields["categories"] = [str(v) for v in form.getlist("categories")]
    else:
        raise HTTPException(415)
    if fields.get(HONEYPOT):
        # A bot filled the hidden field: answer as if all went well, do nothing.
        web.metrics.subscribe_requests.labels("honeypot").inc()
        return _accepted(web, wants_json, None)
    try:
        sign_up = _sign_up_from(fields, ip)
    except BadInput as exc:
        web.metrics.subscribe_requests.labels("invalid").inc()
        if wants_json:
            return JSONResponse({"error": exc.message}, status_code=400)
        return await home(request, error=exc.message, status=400)
    queued = await run_in_threadpool(
        request_confirmation, web.store, web.settings, web.tokens, web.env, sign_up, web.clock.now()
    )
    web.metrics.subscribe_requests.labels("queued" if queued else "quiet").inc()
    task = BackgroundTask(send_confirmations, web) if queued and web.backend else None
    return _accepted(web, wants_json, task)


def _accepted(web: WebState, wants_json: bool, task: BackgroundTask | None) -> Response:
    message = "확인 메일을 보냈습니다. 메일함에서 링크를 눌러 구독을 마쳐 주세요."
    if wants_json:
        return JSONResponse(
            {"status": "check-your-inbox", "message": message}, 202, background=task
        )
    response = web.page(
        "notice.html.j2",
        {
            "title": "메일함을 확인해 주세요",
            "message": message,
            "note": "메일이 보이지 않으면 스팸함도 확인해 주세요.",
        },
    )
    response.background = task
    return response


async def send_confirmations(web: WebState) -> None:
    """After the answer went out: hand the queued confirmation(s) to the backend."""
    assert web.backend is not None
    backend = web.backend
    with web.metrics.confirmation_send.time():
        await run_in_threadpool(send_pending_confirmations, web.store, backend, web.clock)


# --- token pages ---------------------------------------------------------------------


def _holder(web: WebState, purpose: Purpose, token: str) -> Subscriber | None:
    """The subscriber a valid token names, or None (forged, expired, wrong purpose,
    erased subscriber, or an id now held by another address)."""
    max_age = web.settings.security.confirm_max_age if purpose is Purpose.CONFIRM else None
    try:
        subject = web.tokens.read(purpose, token, max_age=max_age)
    except TokenError:
        return None
    with web.store.read() as conn:
        subscriber = subscriber_by_id(conn, subject.subscriber_id)
    if subscriber is None or not web.tokens.is_for(subject, subscriber.email):
        return None
    return subscriber


def _confirm(web: WebState, token: str, ip: str | None) -> str | None:
    """Confirm; the outcome ("confirmed", "already") or None for a bad link."""
    subscriber = _holder(web, Purpose.CONFIRM, token)
    if subscriber is None:
        return None
    now = web.clock.now()
    with web.store.write() as conn:
        current = subscriber_by_id(conn, subscriber.id)
        if current is None:
            return None
        if current.status is SubscriberStatus.ACTIVE:
            return "already"
        if current.status is SubscriberStatus.UNSUBSCRIBED:
            # Only a confirmation asked for after leaving brings an address back; an old
            # link from before the unsubscribe does not.
            asked = last_confirmation_at(conn, current.id)
            if asked is None or current.unsubscribed is None or asked <= current.unsubscribed:
                return None
        elif current.status is not SubscriberStatus.PENDING:
            return None  # bounced or complained: stays stopped
        confirm(conn, current, now=now, ip=ip)
    return "confirmed"


async def confirm_page(request: Request) -> Response:
    web = state_of(request)
    outcome = await run_in_threadpool(
        _confirm, web, request.path_params["token"], client_ip(request)
    )
    if outcome is None:
        return error_page(web, 400, _BAD_LINK)
    if outcome == "confirmed":
        web.metrics.page_changes.labels("confirmed").inc()
    return web.page(
        "notice.html.j2",
        {
            "title": "구독이 확인되었습니다" if outcome == "confirmed" else "이미 구독 중입니다",
            "message": "이제 새 글을 이메일로 받아 보실 수 있습니다.",
            "note": "받는 주기와 분류는 메일 아래의 ‘구독 설정 변경’에서 바꿀 수 있습니다.",
        },
    )


async def unsubscribe_page(request: Request) -> Response:
    """GET shows a button and changes nothing (mail scanners follow links)."""
    web = state_of(request)
    token = request.path_params["token"]
    subscriber = await run_in_threadpool(_holder, web, Purpose.UNSUBSCRIBE, token)
    if subscriber is None:
        return error_page(web, 400, _BAD_LINK)
    return web.page(
        "unsubscribe.html.j2",
        {
            "email": subscriber.email,
            "already": subscriber.status.stopped,
            "action": f"/unsubscribe/{token}",
            "one_click": ONE_CLICK.split("=", 1),
        },
    )


def _unsubscribe(web: WebState, token: str, ip: str | None) -> bool | None:
    subscriber = _holder(web, Purpose.UNSUBSCRIBE, token)
    if subscriber is None:
        return None
    with web.store.write() as conn:
        current = subscriber_by_id(conn, subscriber.id)
        if current is None:
            return None
        return unsubscribe(conn, current, now=web.clock.now(), ip=ip, via="one-click")


async def unsubscribe_post(request: Request) -> Response:
    """RFC 8058 one-click: no cookie, no CSRF token, 200 and no redirect, idempotent."""
    web = state_of(request)
    token = request.path_params["token"]
    if request.headers.get("content-type", "").split(";")[0].strip() not in _FORM_TYPES:
        return error_page(web, 400, "List-Unsubscribe=One-Click 양식으로 보내 주세요.")
    form = await read_form(request)
    key, value = ONE_CLICK.split("=", 1)
    if form.get(key) != value:
        return error_page(web, 400, "List-Unsubscribe=One-Click 값이 없습니다.")
    changed = await run_in_threadpool(_unsubscribe, web, token, client_ip(request))
    if changed is None:
        return error_page(web, 400, _BAD_LINK)
    if changed:
        web.metrics.page_changes.labels("unsubscribed").inc()
    return web.page(
        "notice.html.j2",
        {
            "title": "구독이 해지되었습니다",
            "message": "더 이상 이메일을 보내 드리지 않습니다. 그동안 읽어 주셔서 감사합니다.",
            "note": "마음이 바뀌시면 언제든 사이트에서 다시 구독하실 수 있습니다.",
        },
    )


async def preferences_page(request: Request) -> Response:
    web = state_of(request)
    token = request.path_params["token"]
    subscriber = await run_in_threadpool(_holder, web, Purpose.PREFERENCES, token)
    if subscriber is None:
        return error_page(web, 400, _BAD_LINK)
    saved: list[str] | None = None
    error: str | None = None
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        if not csrf_ok(web, request, form):
            return error_page(
                web, 403, "양식이 만료되었습니다. 페이지를 새로 고친 뒤 다시 보내 주세요."
            )
        try:
            frequency = parse_frequency(str(form.get("frequency") or ""))
            categories = parse_categories([str(v) for v in form.getlist("categories")])
            timezone = parse_timezone(str(form.get("timezone") or ""))
            if len(categories) > MAX_CATEGORIES:
                raise ValueError("too many categories")
        except ValueError:
            error, status = "받는 주기, 분류 또는 시간대가 올바르지 않습니다.", 400
        else:
            saved = await run_in_threadpool(
                _save_preferences,
                web,
                subscriber,
                frequency,
                categories,
                timezone,
                client_ip(request),
            )
            if saved:
                web.metrics.page_changes.labels("preferences").inc()
            refreshed = await run_in_threadpool(_holder, web, Purpose.PREFERENCES, token)
            subscriber = refreshed or subscriber
    context = await run_in_threadpool(_home_context, web)
    nonce, field = csrf_pair(web, request)
    context.update(
        {
            "subscriber": subscriber,
            "csrf": field,
            "saved": saved,
            "error": error,
            "action": f"/preferences/{token}",
        }
    )
    return with_csrf(web, web.page("preferences.html.j2", context, status), nonce)


def _save_preferences(
    web: WebState,
    subscriber: Subscriber,
    frequency: Frequency,
    categories: tuple[str, ...],
    timezone: str | None,
    ip: str | None,
) -> list[str]:
    with web.store.write() as conn:
        current = subscriber_by_id(conn, subscriber.id) or subscriber
        return change_preferences(
            conn,
            current,
            frequency=frequency,
            categories=categories,
            timezone=timezone,
            now=web.clock.now(),
            ip=ip,
        )


def routes() -> list[Route]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/preferences/{token}", preferences_page, methods=["GET", "HEAD", "POST"]),
    ]
