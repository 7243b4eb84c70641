"""Signed double-submit CSRF tokens for the subscriber's forms: a random cookie, and the
same value signed (with a timestamp) in a hidden field. A cross-site page can post the
form but cannot read the cookie to make a field that matches it.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from feedsvc.newsletter.tokens import ClockTimestampSigner
from feedsvc.web.state import WebState

CSRF_COOKIE = "feedsvc_csrf"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 2 * 24 * 3600


def _csrf_signer(web: WebState) -> ClockTimestampSigner:
    """Signs with the app's clock: a form's age is counted in the app's time."""
    return ClockTimestampSigner(web.secret, salt="feedsvc.csrf", clock=web.clock)


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
