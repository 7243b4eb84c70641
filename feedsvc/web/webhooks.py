"""``POST /webhooks/{ses,postmark,sendgrid,mailgun}``: email services report bounces and
complaints (feedsvc.bounces.webhooks). A route exists only for a provider configured in
``bounces.webhooks``; a request not signed with its secret gets 401 and changes nothing;
an event already received (the provider's retry) changes nothing either.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc.bounces.process import apply_events, policy_for
from feedsvc.bounces.sns import SnsVerifier
from feedsvc.bounces.webhooks import (
    MAX_WEBHOOK_BODY,
    WebhookEvent,
    mailgun_events,
    postmark_events,
    sendgrid_events,
    ses_events,
)
from feedsvc.config import Settings
from feedsvc.errors import ConfigError, WebhookError
from feedsvc.models import SignalOutcome
from feedsvc.web.state import state_of

log = logging.getLogger("feedsvc.web")

PREFIX = "/webhooks/"
Reader = Callable[[bytes, Mapping[str, str]], list[WebhookEvent]]


@dataclass(frozen=True)
class Webhooks:
    """The configured providers' readers, their secrets resolved at start."""

    readers: dict[str, Reader]
    sns: SnsVerifier | None = None

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str]) -> Webhooks:
        """ConfigError naming the key when a configured provider's secret is missing."""
        config = settings.bounces.webhooks
        readers: dict[str, Reader] = {}
        problems: list[str] = []
        if config.postmark.username:
            password = environ.get(config.postmark.password_env)
            if not password:
                problems.append(_missing("postmark.password_env", config.postmark.password_env))
            else:
                user = config.postmark.username
                readers["postmark"] = lambda b, h: postmark_events(b, h, user, password)
        if config.sendgrid.public_key:
            key = config.sendgrid.public_key
            readers["sendgrid"] = lambda b, h: sendgrid_events(b, h, key)
        if config.mailgun.signing_key_env:
            signing = environ.get(config.mailgun.signing_key_env)
            if not signing:
                problems.append(_missing("mailgun.signing_key_env", config.mailgun.signing_key_env))
            else:
                readers["mailgun"] = lambda b, h: mailgun_events(b, signing)
        if problems:
            raise ConfigError(settings.source, problems)
        sns = None
        if config.ses.topic_arns:
            sns = SnsVerifier(config.ses.topic_arns, config.ses.certificate_hosts)
        return cls(readers, sns)

    def routes(self) -> list[Route]:
        found = [
            Route(PREFIX + name, _handler(name, reader), methods=["POST"])
            for name, reader in sorted(self.readers.items())
        ]
        if self.sns is not None:
            found.append(Route(PREFIX + "ses", _ses_handler(self.sns), methods=["POST"]))
        return found


def _missing(key: str, variable: str) -> str:
    return (
        f"bounces.webhooks.{key} = {variable!r}: the environment variable is not set; "
        f"export {variable}=… with the secret from the provider's console"
    )


def _handler(name: str, reader: Reader) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            events = reader(body, dict(request.headers))
        except WebhookError as exc:
            return _refused(name, exc)
        return await _applied(request, events)

    return receive


def _ses_handler(sns: SnsVerifier) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            message = await run_in_threadpool(sns.message, body)
            kind = message.get("Type")
            if kind == "SubscriptionConfirmation":
                await run_in_threadpool(sns.confirm, message)
                log.info("webhook ses: subscribed to %s", message.get("TopicArn"))
                return JSONResponse({"confirmed": message.get("TopicArn")})
            if kind != "Notification":
                return JSONResponse({"ignored": kind})
            events = ses_events(message.get("MessageId", ""), message.get("Message", ""))
        except WebhookError as exc:
            return _refused("ses", exc)
        return await _applied(request, events)

    return receive


def _refused(name: str, exc: WebhookError) -> Response:
    log.warning("webhook %s: refused (%d): %s", name, exc.status, exc.reason)
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


async def _applied(request: Request, events: list[WebhookEvent]) -> Response:
    web = state_of(request)
    policy = policy_for(web.settings)

    def apply() -> Counter[SignalOutcome]:
        with web.store.write() as conn:
            return apply_events(conn, events, web.clock.now(), policy)

    outcomes = await run_in_threadpool(apply)
    if events:
        shown = ", ".join(f"{n} {o.value}" for o, n in sorted(outcomes.items()))
        log.info("webhook %s: %d event(s): %s", events[0].source, len(events), shown)
    return JSONResponse({"received": len(events)})


def webhook_limits() -> dict[str, int]:
    """Body limits above the app's default, by path prefix."""
    return {PREFIX: MAX_WEBHOOK_BODY}
