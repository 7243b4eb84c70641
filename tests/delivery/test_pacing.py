"""The retry schedule, the token bucket and the delivery settings (pure)."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feedsvc.config import settings_from_mapping
from feedsvc.delivery.dispatch import AHEAD, PIPELINE_DEPTH, Pace
from feedsvc.delivery.pacing import RetryPolicy, Throttle, TokenBucket
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.errors import ConfigError

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def test_backoff_starts_at_five_minutes_and_doubles_to_an_hour() -> None:
    policy = RetryPolicy(jitter=0.0)
    waits = [policy.delay(n) for n in range(1, 8)]
    assert [w.total_seconds() / 60 for w in waits] == [5, 10, 20, 40, 60, 60, 60]


def test_jitter_stays_within_twenty_percent() -> None:
    policy = RetryPolicy(rng=random.Random(7))
    for attempts in range(1, 10):
        base = min(timedelta(minutes=5) * 2 ** (attempts - 1), timedelta(hours=1))
        delay = policy.delay(attempts)
        assert base * 0.8 <= delay <= base * 1.2


def test_a_retry_past_max_age_gives_up() -> None:
    policy = RetryPolicy(max_age=timedelta(days=5), jitter=0.0)
    queued = NOW - timedelta(days=5) + timedelta(minutes=30)
    assert policy.next_attempt(1, queued, NOW) == NOW + timedelta(minutes=5)
    assert policy.next_attempt(6, queued, NOW) is None


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    moment = [0.0]
    bucket = Throttle(10, burst=2, now=lambda: moment[0])
    assert [bucket.wait_for_one() for _ in range(2)] == [0.0, 0.0]
    assert abs(bucket.wait_for_one() - 0.1) < 1e-9
    moment[0] += 0.1
    assert bucket.wait_for_one() == 0.0


def test_one_bucket_arithmetic_for_the_throttle_and_the_subscribe_limit() -> None:
    from feedsvc.web.ratelimit import RateLimiter

    bucket = TokenBucket(0.5, 2.0, now=100.0)
    assert [bucket.take(100.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.wait(100.0) == bucket.take(100.0) == 2.0  # 1 token at 0.5 a second
    assert bucket.level(99.0) == 0.0  # a moment before the last adds nothing
    assert bucket.level(110.0) == 2.0  # never above the burst
    limiter = RateLimiter(burst=2, per_second=0.5, max_keys=2)
    assert [limiter.allow("a", 100.0) for _ in range(3)] == [True, True, False]
    assert limiter.retry_after("a", 100.0) == 2 and limiter.retry_after("b", 100.0) == 0
    assert limiter.allow("b", 103.0) and limiter.allow("c", 104.0)  # "a" full again: dropped
    assert limiter.retry_after("a", 104.0) == 0 and set(limiter._buckets) == {"b", "c"}


def test_take_paces_messages_to_the_rate() -> None:
    async def run() -> float:
        bucket = Throttle(200, burst=1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(21):
            await bucket.take()
        return loop.time() - start

    assert asyncio.run(run()) >= 0.09


@pytest.mark.parametrize(
    ("concurrency", "rate", "window"),
    [
        (8, 100, 200),  # the defaults: two seconds at the rate, below 8 connections' share
        (4, 100, 200),
        (8, 1_000_000, 8 * PIPELINE_DEPTH),  # no real rate limit: the connections bound it
        (1, 1_000_000, PIPELINE_DEPTH),
        (8, 10, 20),
        (2, 0.2, 1),  # a message every five seconds: one row at a time
    ],
)
def test_a_run_holds_no_more_than_its_connections_and_a_few_seconds_at_the_rate_allow(
    concurrency: int, rate: float, window: int
) -> None:
    pace = Pace(concurrency=concurrency, rate=rate)
    assert pace.window == window
    assert pace.window <= concurrency * PIPELINE_DEPTH
    assert pace.window <= max(1, rate * AHEAD)


def test_the_window_splits_with_the_rate_between_sender_processes() -> None:
    settings = settings_from_mapping({"delivery": {"rate": 100, "workers": 2}})
    assert Pace.from_settings(settings, share=2).window == 100  # each sends 50 a second


def test_the_retry_schedule_lease_and_connection_limit_come_from_delivery_settings() -> None:
    settings = settings_from_mapping(
        {
            "delivery": {
                "min_backoff": "1m",
                "max_backoff": "10m",
                "lease": "2m",
                "messages_per_connection": 50,
                "rate": 90,
                "workers": 3,
            }
        }
    )
    pace = Pace.from_settings(settings, share=settings.delivery.workers)
    assert (pace.lease, pace.rate) == (timedelta(minutes=2), 30)
    policy = RetryPolicy.from_settings(settings)
    waits = [replace(policy, jitter=0.0).delay(n) for n in range(1, 6)]
    assert [w.total_seconds() / 60 for w in waits] == [1, 2, 4, 8, 10]
    assert SmtpOptions.from_settings(settings).max_per_connection == 50


def test_the_defaults_are_postfix_like_one_process_and_a_short_lease() -> None:
    d = settings_from_mapping({}).delivery
    assert (d.min_backoff, d.max_backoff) == (timedelta(minutes=5), timedelta(hours=1))
    assert (d.lease, d.messages_per_connection, d.workers) == (timedelta(seconds=30), 500, 1)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"min_backoff": "10m", "max_backoff": "5m"}, "delivery.max_backoff = '5m'"),
        ({"lease": "0s"}, "delivery.lease = '0s': expected a duration above zero"),
        ({"lease": "2s"}, "delivery.lease = '2s': expected at least 5s"),
        ({"lease": "soon"}, "delivery.lease = 'soon': expected a duration"),
        ({"workers": 0}, "delivery.workers = 0"),
        ({"messages_per_connection": 0}, "delivery.messages_per_connection = 0"),
    ],
)
def test_bad_delivery_settings_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_mapping({"delivery": raw})
