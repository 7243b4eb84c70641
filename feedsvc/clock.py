"""The one source of the current time; tests pass a ``FixedClock``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time. ``FEEDSVC_NOW`` (ISO 8601 with zone) pins it, for demos and tests."""

    def now(self) -> datetime:
        pinned = os.environ.get("FEEDSVC_NOW")
        if pinned:
            moment = datetime.fromisoformat(pinned)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    moment: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment = self.moment + delta
