"""Token buckets per key (the client's network for ``POST /subscribe``: see
:func:`client_key`), in memory.

A bucket (:class:`feedsvc.delivery.pacing.TokenBucket`, the one bucket arithmetic of
feedsvc) holds up to ``burst`` tokens and gains ``rate`` per second; each request takes
one. Times come from the caller (``time.monotonic`` in the app: a rate limit counts
durations, not dates), so tests move time by hand. Buckets
that are full again are dropped when the table grows, so a flood of addresses cannot
grow it without bound. One process, one table: several instances each limit on their own,
which is fine for a limit meant to stop scripts, not to count exactly.
"""

from __future__ import annotations

import ipaddress
import math

from feedsvc.delivery.pacing import TokenBucket

IPV6_PREFIX = 64


def client_key(ip: str | None) -> str:
    """The bucket of a client address: an IPv4 address as it is, an IPv6 one by its /64
    (a host or a home line usually holds a whole /64, so its /128s are free to pick),
    an IPv4-mapped IPv6 address as its IPv4 address, and "-" when there is none."""
    if not ip:
        return "-"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # not an IP (a unix socket path): its own bucket
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class RateLimiter:
    """``allow(key, now)``: True and one token taken, or False with the wait in ``retry_after``.

    One :class:`~feedsvc.delivery.pacing.TokenBucket` per key, made full on the key's first
    request.
    """

    def __init__(self, *, burst: int, per_second: float, max_keys: int = 100_000) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second above 0")
        self.burst = burst
        self.per_second = per_second
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str, now: float) -> bool:
        """Take a token for ``key`` at ``now`` (seconds); False when none is left."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = TokenBucket(self.per_second, float(self.burst), now)
        return bucket.take(now) == 0.0

    def retry_after(self, key: str, now: float) -> int:
        """Whole seconds until ``key`` has a token again (0 when it has one now)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0
        return math.ceil(bucket.wait(now))

    def _sweep(self, now: float) -> None:
        full = [key for key, bucket in self._buckets.items() if bucket.level(now) >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: forget the oldest half
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].at)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]
