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
    FORM_TYPES,
    Preferences,
    PreferencesForm,
    check_categories,
    media_type,
    preferences_from,
    read_form,
)
from feedsvc.web.pages import current_categories, form_page, notice
from feedsvc.web.state import WebState, client_ip, state_of

# What subscribers do, for the site owner: addresses masked (k***@example.kr).
log = logging.getLogger("feedsvc.subscribers")


def _bad_link(web: WebState) -> Response:
    return error_page(web, 400, web.texts("error.bad_link"))


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
    if outcome == "stale":
        return error_page(web, 400, web.texts("error.stale_link"))
    return _bad_link(web)


def _confirmed_notice(web: WebState, outcome: str) -> Response:
    texts = web.texts
    return notice(
        web,
        texts("notice.confirmed") if outcome == "confirmed" else texts("notice.already"),
        texts("notice.confirmed_message"),
        texts("notice.confirmed_note"),
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
        return _bad_link(web)
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
    texts = web.texts
    if media_type(request) not in FORM_TYPES:
        return error_page(web, 400, texts("error.one_click_form"))
    form = await read_form(request, texts)
    key, value = ONE_CLICK.split("=", 1)
    if form.get(key) != value:
        return error_page(web, 400, texts("error.one_click_value"))
    changed = await run_in_threadpool(_unsubscribe, web, token, client_ip(request))
    if changed is None:
        return _bad_link(web)
    if changed:
        web.metrics.page_changes.labels("unsubscribed").inc()
    return notice(
        web,
        texts("notice.unsubscribed"),
        texts("notice.unsubscribed_message"),
        texts("notice.unsubscribed_note"),
    )


# --- preferences -----------------------------------------------------------------------------


def _shown(subscriber: Subscriber) -> PreferencesForm:
    """The preferences form as the subscriber's stored values fill it."""
    return PreferencesForm(
        subscriber.frequency.value, subscriber.categories, subscriber.timezone or ""
    )


async def preferences_page(request: Request) -> Response:
    """GET shows the subscriber's preferences; POST saves them, or shows the form again as
    it was sent with an error naming the field."""
    web = state_of(request)
    token = request.path_params["token"]
    subscriber = await run_in_threadpool(_holder, web, Purpose.PREFERENCES, token)
    if subscriber is None:
        return _bad_link(web)
    texts = web.texts
    saved: list[str] | None = None
    error: BadInput | None = None
    shown = _shown(subscriber)
    if request.method == "POST":
        form = await read_form(request, texts)
        if not csrf_ok(web, request, form):
            return error_page(web, 403, texts("error.form_expired"))
        sent = PreferencesForm.of(form)
        try:
            wanted = preferences_from(sent, texts)
            check_categories(
                wanted.categories,
                await run_in_threadpool(current_categories, web),
                texts,
                kept=subscriber.categories,
            )
        except BadInput as exc:
            error, shown = exc, sent
        else:
            saved = await run_in_threadpool(
                _save_preferences, web, subscriber, wanted, client_ip(request)
            )
            if saved:
                web.metrics.page_changes.labels("preferences").inc()
            refreshed = await run_in_threadpool(_holder, web, Purpose.PREFERENCES, token)
            subscriber = refreshed or subscriber
            shown = _shown(subscriber)
    context = {
        "subscriber": subscriber,
        "form": shown,
        "saved": saved,
        "error": None if error is None else error.message,
        "error_field": None if error is None else error.field,
        "action": f"/preferences/{token}",
        "send_time": web.settings.digest.send_time,
        "unsubscribe_url": "/unsubscribe/"
        + web.tokens.make(Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email),
    }
    status = 200 if error is None else 400
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
