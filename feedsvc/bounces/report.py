"""What a read of the bounce inbox or mailbox did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from feedsvc.models import SignalKind, SignalOutcome
from feedsvc.storage.inbound_signals import SignalCounts

# Gmail's and Yahoo's bulk-sender rules: keep spam complaints under 0.3 %; warn well before.
COMPLAINT_WARNING = 0.001
SIGNAL_DAYS = 30  # the period `bounces list` and `status` count over


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


def signal_lines(counts: SignalCounts, days: int = SIGNAL_DAYS) -> tuple[list[str], str | None]:
    """The lines `bounces list` and `status` print about signals of the last ``days``
    days, and a warning when complaints are over COMPLAINT_WARNING of messages sent."""
    parts = [f"{counts.by_kind.get(kind, 0)} {kind.value.replace('_', ' ')}" for kind in SignalKind]
    lines = [f"bounces and complaints, last {days} days: " + ", ".join(parts)
             + f"; {counts.unmatched} unmatched"]  # fmt: skip
    rate = counts.complaint_rate
    if rate is None:
        lines.append("complaint rate: no message sent in that time")
        return lines, None
    lines.append(f"complaint rate: {rate:.3%} of {counts.delivered} messages sent")
    if rate <= COMPLAINT_WARNING:
        return lines, None
    return lines, (
        f"complaints are {rate:.2%} of messages sent (over 0.1 %); Gmail and Yahoo refuse "
        "bulk mail above 0.3 %: check who is subscribed and how they joined"
    )
