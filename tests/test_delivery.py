"""The retry schedule and the token bucket (pure), and the `deliveries` commands."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from feedsvc.pacing import RetryPolicy, TokenBucket

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
    bucket = TokenBucket(10, burst=2, now=lambda: moment[0])
    assert [bucket.wait_for_one() for _ in range(2)] == [0.0, 0.0]
    assert abs(bucket.wait_for_one() - 0.1) < 1e-9
    moment[0] += 0.1
    assert bucket.wait_for_one() == 0.0


def test_take_paces_messages_to_the_rate() -> None:
    async def run() -> float:
        bucket = TokenBucket(200, burst=1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(21):
            await bucket.take()
        return loop.time() - start

    assert asyncio.run(run()) >= 0.09
