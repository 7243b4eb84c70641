"""Prometheus metrics for ``GET /metrics`` (prometheus-client, text format).

Each app has its own registry (no process-wide state, so tests and several apps in one
process do not mix). Counts come from the store at scrape time — posts, subscribers by
status, deliveries and confirmations by status, digests created and sent, the last
build's duration — so they survive restarts, and every
instance on one database reports the same numbers. Timings measured in this process
(confirmation sends, HTTP requests by route) are histograms.

``/metrics`` is for the operator only: with ``server.metrics_token`` (or the variable
``server.metrics_token_env`` names) a request must bear it; without one, only a loopback
peer that sent no proxy header gets it (:func:`serve_metrics`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from feedsvc.clock import Clock
from feedsvc.config import Settings, check_metrics_token
from feedsvc.errors import ConfigError
from feedsvc.storage import Store
from feedsvc.storage.confirmations import confirmation_counts
from feedsvc.storage.deliveries import delivery_counts, recent_send_timings
from feedsvc.storage.digests import digest_counts, live_metas
from feedsvc.storage.posts import last_build
from feedsvc.storage.schema import posts
from feedsvc.storage.subscribers import count_by_status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    """Gauges read from the store at each scrape."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.store.read() as conn:
            sources = conn.execute(select(func.count()).select_from(posts)).scalar_one()
            live = len(live_metas(conn, self.clock.now()))
            by_status = count_by_status(conn)
            deliveries = delivery_counts(conn)
            confirmations = confirmation_counts(conn)
            build = last_build(conn)
            timings = recent_send_timings(conn)
            digest_totals = digest_counts(conn)
        yield GaugeMetricFamily("feedsvc_posts", "Published posts (live now).", value=live)
        yield GaugeMetricFamily("feedsvc_source_files", "Source files known.", value=sources)
        family = GaugeMetricFamily(
            "feedsvc_subscribers", "Subscribers by status.", labels=["status"]
        )
        for status, count in by_status.items():
            family.add_metric([status.value], count)
        yield family
        family = GaugeMetricFamily("feedsvc_deliveries", "Deliveries by status.", labels=["status"])
        for delivery_status, count in deliveries.items():
            family.add_metric([delivery_status.value], count)
        yield family
        family = GaugeMetricFamily(
            "feedsvc_confirmations", "Confirmation emails by status.", labels=["status"]
        )
        for name, count in confirmations.items():
            family.add_metric([name], count)
        yield family
        created = GaugeMetricFamily(
            "feedsvc_digests", "Digests created, by frequency.", labels=["frequency"]
        )
        sent = GaugeMetricFamily(
            "feedsvc_digests_sent",
            "Digests sent to at least one subscriber, by frequency.",
            labels=["frequency"],
        )
        for frequency, (made, went) in digest_totals.items():
            created.add_metric([frequency], made)
            sent.add_metric([frequency], went)
        yield created
        yield sent
        yield from _send_timing_families(timings)
        if build is not None:
            seconds = (build.finished_at - build.started_at).total_seconds()
            yield GaugeMetricFamily(
                "feedsvc_last_build_duration_seconds", "How long the last build took.", seconds
            )
            yield GaugeMetricFamily(
                "feedsvc_last_build_timestamp_seconds",
                "When the last build finished (Unix time).",
                build.finished_at.timestamp(),
            )


QUANTILES = (0.5, 0.9, 0.99)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _send_timing_families(timings: list[tuple[float, float]]) -> Iterator[GaugeMetricFamily]:
    """Quantiles of the latest sent deliveries' timings (the sender may be another process,
    so they come from the store rather than from an in-process histogram)."""
    if not timings:
        return
    described = (
        ("feedsvc_delivery_send_seconds", "Claim to the server's 250, latest sent messages."),
        ("feedsvc_delivery_wait_seconds", "Digest created to the server's 250, latest sent."),
    )
    for index, (name, doc) in enumerate(described):
        values = [pair[index] for pair in timings]
        family = GaugeMetricFamily(name, doc, labels=["quantile"])
        for q in QUANTILES:
            family.add_metric([str(q)], _quantile(values, q))
        yield family


class Metrics:
    """The registry of one app, and the instruments the web layer updates."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(StoreCollector(store, clock))
        self.confirmation_send = Histogram(
            "feedsvc_confirmation_send_seconds",
            "Time to hand pending confirmation emails to the backend.",
            registry=self.registry,
        )
        self.subscribe_requests = Counter(
            "feedsvc_subscribe_requests",
            # One "accepted" for every valid address, new or known: an outcome per
            # subscription state would tell a scraper whether an address is subscribed.
            "POST /subscribe by outcome (accepted, invalid, honeypot, limited).",
            ["outcome"],
            registry=self.registry,
        )
        self.page_changes = Counter(
            "feedsvc_subscriber_changes",
            "Subscriber changes made on the web, by kind.",
            ["kind"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


# --- the route -------------------------------------------------------------------------

# Headers a reverse proxy adds: a request carrying one came through a proxy, so its
# loopback peer address says nothing about who asked.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def metrics_token_of(settings: Settings) -> str | None:
    """The bearer token for /metrics: ``$<server.metrics_token_env>`` when set (a secret
    is better kept out of config.yaml), else ``server.metrics_token``; None for none."""
    server = settings.server
    from_env = os.environ.get(server.metrics_token_env, "")
    if not from_env:
        return server.metrics_token
    try:
        return check_metrics_token(from_env)
    except ValueError as exc:
        raise ConfigError(
            settings.source,
            [
                f"server.metrics_token_env = {server.metrics_token_env!r}: the environment "
                f"variable holds a token that is not usable: {exc}"
            ],
        ) from None


def is_local_peer(request: Request) -> bool:
    """True when the TCP peer is a loopback address and no proxy header came with the
    request (behind a proxy on the same machine every request comes from 127.0.0.1)."""
    if request.client is None or any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False  # not an IP (a Unix socket, a test client's name)
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


def _bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def serve_metrics(metrics: Metrics, token: str | None, request: Request) -> Response:
    """Prometheus text, only for whoever may read it: with ``server.metrics_token`` set,
    a request bearing it (from anywhere; 401 otherwise); without one, a loopback peer that
    sent no proxy header (403 otherwise)."""
    refused = {"Cache-Control": "no-store"}
    if token is not None:
        if not _bearer_ok(request, token):
            return PlainTextResponse(
                "401: /metrics needs the header Authorization: Bearer <server.metrics_token>.\n",
                status_code=401,
                headers={**refused, "WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    elif not is_local_peer(request):
        return PlainTextResponse(
            "403: /metrics is served to loopback clients that are not behind a proxy; set "
            "server.metrics_token (or the environment variable server.metrics_token_env "
            "names) to scrape it from elsewhere.\n",
            status_code=403,
            headers=refused,
        )
    body = await run_in_threadpool(metrics.render)
    return PlainTextResponse(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def routes(metrics: Metrics, token: str | None) -> list[Route]:
    """``GET /metrics`` of ``metrics``, guarded by ``token`` (see :func:`metrics_token_of`)."""
    endpoint = partial(serve_metrics, metrics, token)
    return [Route("/metrics", endpoint, methods=["GET"], name="metrics")]
