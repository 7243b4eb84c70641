"""Pace and patience for sending: the process-wide token bucket and the retry schedule.

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
    """``rate`` tokens a second, at most ``burst`` saved; ``take()`` waits for one.

    One bucket per process, shared by every connection, is ``delivery.rate``.
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._now = now
        self._tokens = self.burst
        self._at = now()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        moment = self._now()
        self._tokens = min(self.burst, self._tokens + (moment - self._at) * self.rate)
        self._at = moment

    def wait_for_one(self) -> float:
        """Take a token if there is one (0.0), else the seconds until there will be."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

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
