"""Sending the outbox: claims, a pool of SMTP connections, the rate limit, retries.

    claim (short write txn) → queue → N connections (each reused) → outcomes → record (txn)

One task claims batches of due rows with a lease and commits; ``delivery.concurrency``
workers, each owning one :class:`~feedsvc.smtp.SmtpConnection`, take messages from the
queue, one token each from the process-wide bucket (``delivery.rate``), and talk SMTP with
no transaction open; a flusher writes their outcomes in batches. The store is only ever
touched from a thread (``asyncio.to_thread``), one call at a time.

If the process dies, the rows it held stay ``sending`` until their lease runs out, then
any sender takes them again with the same bytes: nothing is lost, and only messages that
were in flight can arrive twice, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.pacing import RetryPolicy, TokenBucket
from feedsvc.smtp import Attempt, SendingPaused, SmtpConnection, SmtpOptions, Verdict
from feedsvc.storage import Store
from feedsvc.storage.deliveries import Claim, Outcome, Result, claim_due, record_outcomes

log = logging.getLogger("feedsvc.delivery")

LEASE = timedelta(minutes=5)
MAX_BATCH = 500
FLUSH_EVERY = 0.2  # seconds between writes of outcomes
FLUSH_SIZE = 1000


@dataclass
class SendReport:
    """What one run of :func:`deliver_pending` did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    released: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    paused: str | None = None

    @property
    def done(self) -> int:
        return self.sent + self.retried + self.failed


@dataclass(frozen=True, slots=True)
class Pace:
    """How hard to push: connections, messages a second, batch size, lease, patience."""

    concurrency: int = 8
    rate: float = 100.0
    lease: timedelta = LEASE
    bounce_limit: int = 1
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def batch(self) -> int:
        # A batch should take seconds to send (well inside the lease), not minutes.
        return max(self.concurrency * 2, min(MAX_BATCH, int(self.rate * 5)))

    @classmethod
    def from_settings(cls, settings: Settings) -> Pace:
        d = settings.delivery
        return cls(
            concurrency=d.concurrency,
            rate=d.rate,
            bounce_limit=d.bounce_limit,
            policy=RetryPolicy(max_age=d.max_age),
        )


def outcome_of(claim: Claim, attempt: Attempt, now: datetime, policy: RetryPolicy) -> Outcome:
    """The row's next state after ``attempt``."""
    m = claim.message
    if attempt.verdict is Verdict.SENT:
        return Outcome(m.delivery_id, m.subscriber_id, Result.SENT, attempt.code, attempt.reply)
    error = f"{m.email}: {attempt.summary}"
    if attempt.verdict is Verdict.PERMANENT:
        return Outcome(
            m.delivery_id, m.subscriber_id, Result.FAILED, attempt.code, attempt.reply, error
        )
    at = policy.next_attempt(m.attempts, claim.queued_at, now)
    if at is None:
        error = f"{error} (gave up: still failing after delivery.max_age = {policy.max_age})"
        return Outcome(
            m.delivery_id, m.subscriber_id, Result.FAILED, attempt.code, attempt.reply, error
        )
    return Outcome(
        m.delivery_id, m.subscriber_id, Result.RETRY, attempt.code, attempt.reply, error, at
    )


def _released(claim: Claim, reason: str) -> Outcome:
    m = claim.message
    return Outcome(m.delivery_id, m.subscriber_id, Result.RELEASED, error=reason)


class _Run:
    def __init__(
        self,
        store: Store,
        options: SmtpOptions,
        clock: Clock,
        pace: Pace,
        on_progress: Callable[[SendReport], None] | None,
        stop: asyncio.Event | None,
    ) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.pace = pace
        self.on_progress = on_progress
        self.stop = stop if stop is not None else asyncio.Event()
        self.report = SendReport()
        self.queue: asyncio.Queue[Claim | None] = asyncio.Queue(maxsize=pace.batch)
        self.outcomes: list[Outcome] = []
        self.bucket = TokenBucket(pace.rate)
        self.db = asyncio.Lock()
        self.flushed = asyncio.Event()

    def halted(self) -> bool:
        return self.report.paused is not None or self.stop.is_set()

    def _halt_reason(self) -> str:
        return self.report.paused or "sending stopped before this message was tried"

    async def claim(self) -> list[Claim]:
        def work() -> list[Claim]:
            with self.store.write() as conn:
                return claim_due(
                    conn, self.clock.now(), limit=self.pace.batch, lease=self.pace.lease
                )

        async with self.db:
            return await asyncio.to_thread(work)

    async def flush(self) -> None:
        batch, self.outcomes = self.outcomes, []
        if not batch:
            return

        def work(outcomes: Sequence[Outcome]) -> list[int]:
            with self.store.write() as conn:
                return record_outcomes(
                    conn, outcomes, self.clock.now(), bounce_limit=self.pace.bounce_limit
                )

        async with self.db:
            bounced = await asyncio.to_thread(work, batch)
        self.report.bounced += len(bounced)
        if self.on_progress is not None:
            self.on_progress(self.report)

    def note(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        r = self.report
        if outcome.result is Result.SENT:
            r.sent += 1
        elif outcome.result is Result.RETRY:
            r.retried += 1
        elif outcome.result is Result.FAILED:
            r.failed += 1
        else:
            r.released += 1
        if outcome.error and outcome.result is not Result.RELEASED:
            r.errors[outcome.error.partition(": ")[2] or outcome.error] += 1

    async def worker(self, connection: SmtpConnection) -> None:
        try:
            while (claim := await self.queue.get()) is not None:
                if self.halted():
                    self.note(_released(claim, self._halt_reason()))
                    continue
                await self.bucket.take()
                try:
                    attempt = await connection.send(claim.message)
                except SendingPaused as exc:
                    if self.report.paused is None:
                        self.report.paused = str(exc)
                        log.error("%s", exc)
                    self.note(_released(claim, str(exc)))
                    continue
                except Exception as exc:
                    # A bug, not a reply: keep the row (due again at once) and say so.
                    log.exception("sending delivery %d failed", claim.message.delivery_id)
                    self.note(_released(claim, f"internal error: {exc!r}"))
                    continue
                self.note(outcome_of(claim, attempt, self.clock.now(), self.pace.policy))
        finally:
            await connection.quit()

    async def flusher(self) -> None:
        while not self.flushed.is_set():
            # A timeout is the normal case here: it is time to write what is done.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flushed.wait(), FLUSH_EVERY)
            await self.flush()

    async def run(self) -> SendReport:
        workers = [
            asyncio.create_task(self.worker(SmtpConnection(self.options)))
            for _ in range(self.pace.concurrency)
        ]
        flusher = asyncio.create_task(self.flusher())
        try:
            while not self.halted():
                claims = await self.claim()
                if not claims:
                    break
                for index, claim in enumerate(claims):
                    if self.halted():
                        for left in claims[index:]:
                            self.note(_released(left, self._halt_reason()))
                        break
                    await self.queue.put(claim)
        finally:
            for _ in workers:
                await self.queue.put(None)
            await asyncio.gather(*workers, return_exceptions=True)
            self.flushed.set()
            await flusher
            await self.flush()
        return self.report


async def deliver_pending(
    store: Store,
    options: SmtpOptions,
    clock: Clock,
    pace: Pace,
    *,
    on_progress: Callable[[SendReport], None] | None = None,
    stop: asyncio.Event | None = None,
) -> SendReport:
    """Send every due row over ``pace.concurrency`` pooled connections until none is due,
    sending is paused (authentication or TLS: ``report.paused`` says why) or ``stop`` is
    set (the messages in flight finish; the rest are released for the next run)."""
    return await _Run(store, options, clock, pace, on_progress, stop).run()


def send_due(
    store: Store,
    settings: Settings,
    clock: Clock,
    *,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """:func:`deliver_pending` with ``delivery.*`` from ``settings`` (blocking)."""
    options = SmtpOptions.from_settings(settings)
    return asyncio.run(
        deliver_pending(
            store, options, clock, Pace.from_settings(settings), on_progress=on_progress
        )
    )
