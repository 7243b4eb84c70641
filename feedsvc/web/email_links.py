"""The pages behind the links in emails: confirm, unsubscribe (with RFC 8058 one-click),
preferences. The token in the URL names the subscriber; a forged, expired or stale one
gets the same "bad link" page.
"""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from feedsvc.models import Subscriber, SubscriberStatus
from feedsvc.sender import ONE_CLICK
from feedsvc.storage.confirmations import last_confirmation_at
from feedsvc.storage.subscriptions import (
    change_preferences,
    confirm,
    subscriber_by_id,
    unsubscribe,
)
from feedsvc.tokens import Purpose, TokenError
from feedsvc.web.app import WebState, client_ip, error_page, state_of
from feedsvc.web.csrf import csrf_ok
from feedsvc.web.forms import (
    EXPIRED_FORM,
    FORM_TYPES,
    BadInput,
    Preferences,
    check_categories,
    media_type,
    preferences_from,
    read_form,
)
from feedsvc.web.pages import current_categories, form_page, notice

_BAD_LINK = "링크가 올바르지 않거나 만료되었습니다. 받은 메일의 링크를 그대로 열어 주세요."


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


# --- confirm ---------------------------------------------------------------------------------

_CONFIRMED = "구독이 확인되었습니다"
_ALREADY = "이미 구독 중입니다"


def _askable(conn: Connection, subscriber: Subscriber) -> bool:
    """True when ``subscriber`` may be confirmed now: pending, or unsubscribed and asked
    again after leaving (an old link from before the unsubscribe does not bring it back).
    Bounced or complained addresses stay stopped."""
    if subscriber.status is SubscriberStatus.PENDING:
        return True
    if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
        asked = last_confirmation_at(conn, subscriber.id)
        return not (
            asked is None or subscriber.unsubscribed is None or asked <= subscriber.unsubscribed
        )
    return False


def _confirm_standing(web: WebState, token: str) -> tuple[str, Subscriber] | None:
    """What the button would do, changing nothing: ("ask", …) or ("already", …); None for
    a bad link."""
    subscriber = _holder(web, Purpose.CONFIRM, token)
    if subscriber is None:
        return None
    if subscriber.status is SubscriberStatus.ACTIVE:
        return "already", subscriber
    with web.store.read() as conn:
        return ("ask", subscriber) if _askable(conn, subscriber) else None


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
        if not _askable(conn, current):
            return None
        confirm(conn, current, now=now, ip=ip)
    return "confirmed"


def _confirmed_notice(web: WebState, outcome: str) -> Response:
    return notice(
        web,
        _CONFIRMED if outcome == "confirmed" else _ALREADY,
        "이제 새 글을 이메일로 받아 보실 수 있습니다.",
        "받는 주기와 분류는 메일 아래의 ‘구독 설정 변경’에서 바꿀 수 있습니다.",
    )


async def confirm_page(request: Request) -> Response:
    """GET (and HEAD) shows a button and changes nothing: mail link scanners open links
    by themselves. Only the button's POST (:func:`confirm_post`) confirms."""
    web = state_of(request)
    token = request.path_params["token"]
    standing = await run_in_threadpool(_confirm_standing, web, token)
    if standing is None:
        return error_page(web, 400, _BAD_LINK)
    outcome, subscriber = standing
    if outcome == "already":
        return _confirmed_notice(web, outcome)
    response = web.page(
        "confirm_page.html.j2", {"email": subscriber.email, "action": f"/confirm/{token}"}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def confirm_post(request: Request) -> Response:
    """The button: confirms. No cookie or CSRF field is needed (as for the one-click
    unsubscribe): the token in the URL is the credential and the request borrows no
    ambient authority a cross-site page could abuse, and browsers without cookies can
    still confirm."""
    web = state_of(request)
    outcome = await run_in_threadpool(
        _confirm, web, request.path_params["token"], client_ip(request)
    )
    if outcome is None:
        return error_page(web, 400, _BAD_LINK)
    if outcome == "confirmed":
        web.metrics.page_changes.labels("confirmed").inc()
    return _confirmed_notice(web, outcome)


# --- unsubscribe -----------------------------------------------------------------------------


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
    if media_type(request) not in FORM_TYPES:
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
    return notice(
        web,
        "구독이 해지되었습니다",
        "더 이상 이메일을 보내 드리지 않습니다. 그동안 읽어 주셔서 감사합니다.",
        "마음이 바뀌시면 언제든 사이트에서 다시 구독하실 수 있습니다.",
    )


# --- preferences -----------------------------------------------------------------------------


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
            return error_page(web, 403, EXPIRED_FORM)
        try:
            wanted = preferences_from(form)
            check_categories(
                wanted.categories,
                await run_in_threadpool(current_categories, web),
                kept=subscriber.categories,
            )
        except BadInput as exc:
            error, status = exc.message, 400
        else:
            saved = await run_in_threadpool(
                _save_preferences, web, subscriber, wanted, client_ip(request)
            )
            if saved:
                web.metrics.page_changes.labels("preferences").inc()
            refreshed = await run_in_threadpool(_holder, web, Purpose.PREFERENCES, token)
            subscriber = refreshed or subscriber
    context = {
        "subscriber": subscriber,
        "saved": saved,
        "error": error,
        "action": f"/preferences/{token}",
    }
    return await form_page(web, request, "preferences.html.j2", context, status)


def _save_preferences(
    web: WebState, subscriber: Subscriber, wanted: Preferences, ip: str | None
) -> list[str]:
    with web.store.write() as conn:
        current = subscriber_by_id(conn, subscriber.id) or subscriber
        return change_preferences(
            conn,
            current,
            frequency=wanted.frequency,
            categories=wanted.categories,
            timezone=wanted.timezone,
            now=web.clock.now(),
            ip=ip,
        )
