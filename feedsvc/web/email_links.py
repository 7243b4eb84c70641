"""The pages behind the links in emails: confirm, unsubscribe (with RFC 8058 one-click),
preferences. The token in the URL names the subscriber; a forged or expired one gets the
same "bad link" page, a confirm link from before the address's last unsubscribe a page
saying so. Opening a link (GET, HEAD) never changes anything: mail scanners open links.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc.delivery.sender import ONE_CLICK
from feedsvc.errors import BadInput, TokenError
from feedsvc.models import Subscriber, SubscriberStatus
from feedsvc.newsletter.confirmations import confirm_binding
from feedsvc.newsletter.subscribers import mask_address
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage.subscriptions import (
    change_preferences,
    confirm,
    subscriber_by_id,
    unsubscribe,
    unsubscribe_times,
)
from feedsvc.web.csrf import csrf_ok
from feedsvc.web.error_pages import error_page
from feedsvc.web.forms import (
    EXPIRED_FORM,
    FORM_TYPES,
    Preferences,
    check_categories,
    media_type,
    preferences_from,
    read_form,
)
from feedsvc.web.pages import current_categories, form_page, notice
from feedsvc.web.state import WebState, client_ip, state_of

# What subscribers do, for the site owner: addresses masked (k***@example.kr).
log = logging.getLogger("feedsvc.subscribers")

_BAD_LINK = "링크가 올바르지 않거나 만료되었습니다. 받은 메일의 링크를 그대로 열어 주세요."


def _holder(web: WebState, purpose: Purpose, token: str) -> Subscriber | None:
    """The subscriber a valid unsubscribe or preferences token names, or None (forged,
    wrong purpose, erased subscriber, or an id now held by another address)."""
    try:
        subject = web.tokens.read(purpose, token)
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
_STALE_LINK = (
    "구독을 해지하기 전에 보낸 링크라 더 이상 쓸 수 없습니다. 다시 구독하시려면 "
    "가장 최근에 받은 확인 메일의 링크를 열어 주세요."
)
# What a confirm token can do now: "ask" (the button confirms), "already" (active),
# "stale" (this address's link from before its last unsubscribe), "bad" (anything else).
Standing = tuple[str, Subscriber | None]


def _confirm_standing(web: WebState, conn: Connection, token: str) -> Standing:
    """Where the confirm ``token`` stands, changing nothing.

    A confirm token is made for :func:`confirm_binding` — the address and the time it last
    unsubscribed — so an unsubscribe retires every link sent before it, though a later
    sign-up sends a new one (issue 14, item 7)."""
    max_age = web.settings.security.confirm_max_age
    try:
        subject = web.tokens.read(Purpose.CONFIRM, token, max_age=max_age)
    except TokenError:
        return "bad", None
    subscriber = subscriber_by_id(conn, subject.subscriber_id)
    if subscriber is None:
        return "bad", None

    def made_for(unsubscribed: datetime | None) -> bool:
        return web.tokens.is_for(subject, confirm_binding(subscriber.email, unsubscribed))

    status = subscriber.status
    if made_for(subscriber.unsubscribed):
        if status is SubscriberStatus.ACTIVE:
            return "already", subscriber
        if status is SubscriberStatus.PENDING or (
            status is SubscriberStatus.UNSUBSCRIBED and subscriber.unsubscribed is not None
        ):
            return "ask", subscriber
        return "bad", None  # bounced or complained: stays stopped
    # An older link of this address (before an unsubscribe), or none of its links at all.
    older = made_for(None) or any(made_for(at) for at in unsubscribe_times(conn, subscriber.id))
    if not older:
        return "bad", None
    return ("already" if status is SubscriberStatus.ACTIVE else "stale"), subscriber


def _confirm_standing_now(web: WebState, token: str) -> Standing:
    with web.store.read() as conn:
        return _confirm_standing(web, conn, token)


def _confirm(web: WebState, token: str, ip: str | None) -> str:
    """Confirm when the token allows it; "confirmed", or the standing that stopped it."""
    with web.store.write() as conn:
        outcome, subscriber = _confirm_standing(web, conn, token)
        if outcome != "ask" or subscriber is None:
            return outcome
        confirm(conn, subscriber, now=web.clock.now(), ip=ip)
    log.info("confirmed: %s", mask_address(subscriber.email))
    return "confirmed"


def _refused(web: WebState, outcome: str) -> Response:
    return error_page(web, 400, _STALE_LINK if outcome == "stale" else _BAD_LINK)


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
    outcome, subscriber = await run_in_threadpool(_confirm_standing_now, web, token)
    if outcome == "already":
        return _confirmed_notice(web, outcome)
    if outcome != "ask" or subscriber is None:
        return _refused(web, outcome)
    response = web.page(
        "confirm_page.html.j2", {"email": subscriber.email, "action": f"/confirm/{token}"}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def confirm_post(request: Request) -> Response:
    """The button: confirms. No cookie or CSRF field is needed (as for the one-click
    unsubscribe): the token in the URL is the credential, the request borrows no ambient
    authority a cross-site page could abuse, and browsers without cookies still work."""
    web = state_of(request)
    outcome = await run_in_threadpool(
        _confirm, web, request.path_params["token"], client_ip(request)
    )
    if outcome not in ("confirmed", "already"):
        return _refused(web, outcome)
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
        changed = unsubscribe(conn, current, now=web.clock.now(), ip=ip, via="one-click")
    if changed:
        log.info("unsubscribed: %s (one-click link)", mask_address(current.email))
    return changed


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
        changed = change_preferences(
            conn,
            current,
            frequency=wanted.frequency,
            categories=wanted.categories,
            timezone=wanted.timezone,
            now=web.clock.now(),
            ip=ip,
        )
    if changed:
        log.info("preferences changed: %s (%s)", mask_address(current.email), ", ".join(changed))
    return changed


def routes() -> list[Route]:
    return [
        Route("/confirm/{token}", confirm_page, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", confirm_post, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/preferences/{token}", preferences_page, methods=["GET", "HEAD", "POST"]),
    ]
