"""Prometheus metrics for ``GET /metrics`` (prometheus-client, text format).

Each app has its own registry (no process-wide state, so tests and several apps in one
process do not mix). Counts come from the store at scrape time — posts, subscribers by
status, deliveries and confirmations by status, the last build's duration — so every
instance on one database reports the same numbers. Timings measured in this process
(confirmation sends, HTTP requests by route) are histograms.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from feedsvc.clock import Clock
from feedsvc.storage import Store
from feedsvc.storage.confirmations import confirmation_counts
from feedsvc.storage.deliveries import delivery_counts, recent_send_timings
from feedsvc.storage.digests import live_metas
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
