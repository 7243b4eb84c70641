"""What a read of the bounce inbox or mailbox did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from feedsvc.models import SignalOutcome


@dataclass
class InboxReport:
    read: int = 0
    outcomes: Counter[SignalOutcome] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # "path: what to do"

    def add(self, other: InboxReport) -> None:
        self.read += other.read
        self.outcomes.update(other.outcomes)
        self.problems.extend(other.problems)

    def summary(self) -> str:
        """ "3 messages read: 1 bounced, 2 ignored"."""
        noun = "message" if self.read == 1 else "messages"
        done = ", ".join(f"{n} {o.value}" for o, n in sorted(self.outcomes.items()))
        return f"{self.read} {noun} read" + (f": {done}" if done else "")
