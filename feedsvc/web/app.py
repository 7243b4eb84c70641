"""The Starlette app: feeds, pages, subscription, health and metrics.

    SecurityHeaders ─▶ CatchErrors ─▶ BodyLimit ─▶ Starlette router
      CSP, nosniff,     500 page,      413 past       /, /subscribe, /confirm/…,
      frame-ancestors   no traces      max_body       /unsubscribe/…, /preferences/…,
                                                      /_feedsvc/timezone.js,
                                                      /healthz, /metrics, feeds

This module only puts the app together; each concept has its module: the shared state
(:mod:`~feedsvc.web.state`), error pages (:mod:`~feedsvc.web.error_pages`), the middlewares
(:mod:`~feedsvc.web.middleware`), and the routes of :mod:`~feedsvc.web.subscription`,
:mod:`~feedsvc.web.email_links`, :mod:`~feedsvc.web.health`, :mod:`~feedsvc.web.metrics`
and :mod:`~feedsvc.web.served` (the feeds, last: they take every other path), or, when the
daemon is the site, :mod:`~feedsvc.web.post_page` (the feeds, then the posts' pages).
``create_app`` takes everything it needs — settings, store, clock, delivery backend — and
keeps no global state.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.outbox import Backend
from feedsvc.newsletter.tokens import Tokens, load_secrets
from feedsvc.storage import Store
from feedsvc.templating import environment
from feedsvc.web import email_links, health, metrics, pages, post_page, served, subscription
from feedsvc.web.error_pages import exception_handlers
from feedsvc.web.middleware import MAX_BODY, AccessLog, BodyLimit, CatchErrors, SecurityHeaders
from feedsvc.web.ratelimit import RateLimiter
from feedsvc.web.state import WebState
from feedsvc.web.webhooks import Webhooks, webhook_limits


def create_app(
    settings: Settings,
    store: Store,
    clock: Clock,
    backend: Backend | None,
    *,
    tokens: Tokens | None = None,
    max_body: int = MAX_BODY,
    subscribe_limit: RateLimiter | None = None,
    feed_check_every: float = 1.0,
) -> Starlette:
    """The web app for one site. ``backend`` sends confirmation emails (None: they are
    queued in the store and sent by whoever runs :func:`send_pending_confirmations`)."""
    keys = load_secrets(settings, store=store)  # oldest first: the newest signs
    web = WebState(
        settings=settings,
        store=store,
        clock=clock,
        backend=backend,
        tokens=tokens if tokens is not None else Tokens(keys, clock=clock),
        secret=keys[-1],
        env=environment(settings),
        feeds=served.ServedFeeds(settings.output_dir, check_every=feed_check_every),
        metrics=metrics.Metrics(store, clock),
        subscribe_limit=subscribe_limit
        or RateLimiter(
            burst=subscription.SUBSCRIBE_BURST, per_second=subscription.SUBSCRIBE_PER_SECOND
        ),
        secure_cookies=settings.server.public_url.startswith("https://"),
        metrics_token=metrics.metrics_token_of(settings),
    )
    app = Starlette(
        routes=[
            *subscription.routes(),
            *email_links.routes(),
            *pages.routes(),
            *health.routes(),
            *metrics.routes(web.metrics, web.metrics_token),
            # They take every other path (GET, HEAD); the webhooks' POSTs still reach theirs.
            *(post_page.routes(web.feeds) if settings.serves_site else served.routes(web.feeds)),
            *Webhooks.from_settings(settings, os.environ).routes(),
        ],
        middleware=[
            *([Middleware(AccessLog)] if settings.server.access_log else []),
            Middleware(SecurityHeaders),
            Middleware(CatchErrors, web=lambda: web),
            Middleware(BodyLimit, limit=max_body, larger=webhook_limits()),
        ],
        exception_handlers=exception_handlers(),
    )
    app.state.web = web
    return app
