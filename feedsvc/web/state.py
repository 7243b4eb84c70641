"""What the routes of one app share (:class:`WebState`, on ``app.state.web``), and the
two things a route reads off its request: that state and the client's address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.outbox import Backend
from feedsvc.messages import Texts
from feedsvc.newsletter.tokens import Tokens
from feedsvc.storage import Store
from feedsvc.templating import render
from feedsvc.web.metrics import Metrics
from feedsvc.web.ratelimit import RateLimiter
from feedsvc.web.served import ServedFeeds


@dataclass
class WebState:
    """What the routes share (on ``app.state.web``)."""

    settings: Settings
    store: Store
    clock: Clock
    backend: Backend | None
    tokens: Tokens
    secret: bytes  # for the CSRF tokens of forms
    env: Environment
    feeds: ServedFeeds
    metrics: Metrics
    subscribe_limit: RateLimiter
    secure_cookies: bool
    metrics_token: str | None = None  # see feedsvc.web.metrics.metrics_token_of

    @property
    def texts(self) -> Texts:
        """The catalogue's messages in the site's language."""
        return Texts(self.settings.site.language)

    def page(self, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        """A page from ``templates/``, with what every page shows."""
        full = {"site": self.settings.site, "feeds": self.feed_links(), **context}
        return HTMLResponse(render(self.env, name, full), status_code=status)

    def feed_links(self) -> list[dict[str, str]]:
        labels = {"feed.xml": "RSS", "atom.xml": "Atom", "feed.json": "JSON Feed"}
        return [
            {
                "href": "/" + feed.path,
                "type": feed.content_type.split(";")[0],
                "label": labels[feed.path],
            }
            # time.monotonic, not the clock: only the stat throttle's interval.
            for feed in self.feeds.feeds(time.monotonic())
        ]


def state_of(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
