"""What a read of the bounce inbox or mailbox did, and what bounces and complaints came
back lately, as the command line says it (in ``texts``' language)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from feedsvc.messages import Texts
from feedsvc.models import Message, SignalKind, SignalOutcome
from feedsvc.storage.inbound_signals import SignalCounts

# Gmail's and Yahoo's bulk-sender rules: keep spam complaints under 0.3 %; warn well before.
COMPLAINT_WARNING = 0.001
SIGNAL_DAYS = 30  # the period `bounces list` and `status` count over


@dataclass
class InboxReport:
    read: int = 0
    outcomes: Counter[SignalOutcome] = field(default_factory=Counter)
    problems: list[Message] = field(default_factory=list)  # "path: what to do"

    def add(self, other: InboxReport) -> None:
        self.read += other.read
        self.outcomes.update(other.outcomes)
        self.problems.extend(other.problems)

    def summary(self, texts: Texts) -> str:
        """ "3 messages read: 1 bounced, 2 ignored"."""
        read = texts.plural("cli.bounces.read", self.read)
        if not self.outcomes:
            return read
        done = ", ".join(
            texts(f"cli.signal_outcome.{outcome.value}", count=f"{n:,}")
            for outcome, n in sorted(self.outcomes.items())
        )
        return texts("cli.bounces.read_outcomes", read=read, outcomes=done)


def signal_lines(
    texts: Texts, counts: SignalCounts, days: int = SIGNAL_DAYS
) -> tuple[list[str], str | None]:
    """The lines `bounces list` and `status` print about signals of the last ``days``
    days, and a warning when complaints are over COMPLAINT_WARNING of messages sent."""
    kinds = {kind.value: f"{counts.by_kind.get(kind, 0):,}" for kind in SignalKind}
    lines = [
        texts("cli.bounces.signals", days=f"{days:,}", unmatched=f"{counts.unmatched:,}", **kinds)
    ]
    rate = counts.complaint_rate
    if rate is None:
        lines.append(texts("cli.bounces.no_rate"))
        return lines, None
    lines.append(texts("cli.bounces.rate", rate=f"{rate:.3%}", sent=f"{counts.delivered:,}"))
    if rate <= COMPLAINT_WARNING:
        return lines, None
    return lines, texts("cli.bounces.rate_warning", rate=f"{rate:.2%}")
