"""Pace and patience for sending: the token bucket, the process-wide throttle built on it,
and the retry schedule.

Retries follow Postfix's defaults: the first after ``delivery.min_backoff`` (5 minutes,
Postfix's ``minimal_backoff_time``), each later one twice as long, never more than
``delivery.max_backoff`` (1 hour) apart, every delay jittered by ±20% so that a burst of
failures does not come back as a burst; a row whose next try would fall after
``delivery.max_age`` (5 days) from when it was queued fails.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedsvc.config import Settings

MINIMAL_BACKOFF = timedelta(minutes=5)
MAXIMAL_BACKOFF = timedelta(hours=1)
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a temporarily failed message again, and when to give up."""

    max_age: timedelta = timedelta(days=5)
    minimal: timedelta = MINIMAL_BACKOFF
    maximal: timedelta = MAXIMAL_BACKOFF
    jitter: float = JITTER
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        d = settings.delivery
        return cls(max_age=d.max_age, minimal=d.min_backoff, maximal=d.max_backoff)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 = the first), jittered."""
        base = self.minimal * (1 << max(0, min(attempts - 1, 30)))
        base = min(base, self.maximal)
        factor: float = self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        return base * factor

    def next_attempt(self, attempts: int, queued_at: datetime, now: datetime) -> datetime | None:
        """When to try again, or None when that would be past ``max_age``: give up."""
        at = now + self.delay(attempts)
        return None if at > queued_at + self.max_age else at


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved, full when made.

    Only the arithmetic, with the moment given by the caller (seconds on a monotonic
    clock): the send pace (:class:`Throttle`, one per process) and the per-client
    subscribe limit (:class:`feedsvc.web.ratelimit.RateLimiter`, one per key) both count
    with it.
    """

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = now

    def level(self, now: float) -> float:
        """The tokens saved at ``now``, without taking one (a moment before ``at`` adds none)."""
        return min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)

    def wait(self, now: float) -> float:
        """The seconds from ``now`` until a token is at hand (0.0: one is), taking none."""
        return max(0.0, 1 - self.level(now)) / self.rate

    def take(self, now: float) -> float:
        """Take a token at ``now`` if there is one (0.0), else the seconds until there will be."""
        self.tokens = self.level(now)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Throttle:
    """``rate`` messages a second, at most ``burst`` at once; ``take()`` waits for a token.

    One throttle per process, shared by every connection, is ``delivery.rate``. Times are
    ``time.monotonic`` (a duration, not a date: the clock's ``now`` is not for this).
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self._now = now
        self.bucket = TokenBucket(rate, burst if burst is not None else max(1.0, rate / 10), now())
        self._lock = asyncio.Lock()

    def wait_for_one(self) -> float:
        """Take a token if there is one (0.0), else the seconds until there will be."""
        return self.bucket.take(self._now())

    def try_take(self) -> bool:
        """Take a token if one is at hand and nobody is waiting for one; never waits."""
        return not self._lock.locked() and self.wait_for_one() == 0.0

    async def take(self) -> None:
        if self.try_take():
            return
        # The lock keeps waiters in order: the first to wait is the first served.
        async with self._lock:
            while (wait := self.wait_for_one()) > 0:
                await asyncio.sleep(wait)
