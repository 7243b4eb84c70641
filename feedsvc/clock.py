"""The one source of the current time; tests pass a ``FixedClock``.

Only this module reads the system's date and time. Everything that needs "now" is given
a :class:`Clock` (the builder, the daemon's jobs, the web app, the senders), and so are
the libraries that would read it themselves: itsdangerous's timestamped signers
(:class:`feedsvc.newsletter.tokens.ClockTimestampSigner`) and the daemon's APScheduler
date job (:class:`feedsvc.daemon.scheduler.JobSchedule`). Durations and rate limits use
``time.monotonic`` (or the event loop's time), which measures, never dates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

NOW_ENV = "FEEDSVC_NOW"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time. ``FEEDSVC_NOW`` (ISO 8601 with zone) pins it, for demos and tests.

    The variable is read once, when the clock is made (each command makes its own), not on
    every :meth:`now`.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        pinned = (os.environ if environ is None else environ).get(NOW_ENV)
        self.pinned = _pinned_moment(pinned) if pinned else None

    def now(self) -> datetime:
        if self.pinned is not None:
            return self.pinned
        return datetime.now(UTC)


def _pinned_moment(text: str) -> datetime:
    """``FEEDSVC_NOW`` as a UTC moment (a value without a zone is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    moment: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment = self.moment + delta
