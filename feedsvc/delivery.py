"""Sending the outbox: claims, a pool of SMTP connections, the rate limit, retries.

    claim (short write txn) → queue → N connections (each reused) → outcomes → record (txn)

One task claims batches of due rows with a lease and commits; ``delivery.concurrency``
workers, each owning one :class:`~feedsvc.smtp.SmtpConnection`, take messages from the
queue, one token each from the process-wide bucket (``delivery.rate``), and talk SMTP with
no transaction open; a flusher writes their outcomes in batches. The store is only ever
touched from a thread (``asyncio.to_thread``), one call at a time. A worker that finds the
next message already waiting hands it to its connection with the current one, so that
its envelope can be pipelined with the current message's final dot.

Other processes may send from the same store at the same time (`delivery.workers`,
:mod:`feedsvc.delivery_workers`; a daemon and a command): claims keep them apart.

If the process dies, the rows it held stay ``sending`` until their lease runs out, then
any sender takes them again with the same bytes: nothing is lost, and only messages that
were in flight can arrive twice, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.pacing import RetryPolicy, TokenBucket
from feedsvc.smtp import Attempt, SendingPaused, SmtpConnection, SmtpOptions, Verdict
from feedsvc.storage import Store
from feedsvc.storage.delivery_claims import Claim, claim_due
from feedsvc.storage.delivery_outcomes import PAUSED, Outcome, Result, record_outcomes

log = logging.getLogger("feedsvc.delivery")
T = TypeVar("T")

LEASE = timedelta(minutes=5)  # delivery.lease
MAX_BATCH = 500
FLUSH_EVERY = 0.2  # seconds between writes of outcomes
IDLE = 0.05  # seconds between looks for rows while more are being rendered


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
    # What went wrong beside the replies (a sender process that died).
    problems: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.sent + self.retried + self.failed

    def add(self, other: SendReport) -> None:
        """Count ``other``'s run (another process's) in this one."""
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.bounced += other.bounced
        self.released += other.released
        self.errors.update(other.errors)
        self.paused = self.paused or other.paused
        self.problems += other.problems


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
    def from_settings(cls, settings: Settings, *, share: int = 1) -> Pace:
        """``delivery.*``; ``share``: how many processes split ``delivery.rate``."""
        d = settings.delivery
        return cls(
            concurrency=d.concurrency,
            rate=d.rate / share,
            lease=d.lease,
            bounce_limit=d.bounce_limit,
            policy=RetryPolicy.from_settings(settings),
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
        more_coming: Callable[[], bool] | None = None,
    ) -> None:
        self.more_coming = more_coming
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
        if self.report.paused is not None:
            return PAUSED + self.report.paused
        return "sending stopped before this message was tried"

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

    def _next_at_hand(self) -> tuple[Claim | None, bool]:
        """The next message for this connection if one is waiting already (else None),
        and whether its token is taken: then its envelope can go out with this message."""
        if self.queue.empty() or self.halted():
            return None, False
        claim = self.queue.get_nowait()
        if claim is None:  # the end: let the next get() see it
            self.queue.put_nowait(None)
            return None, False
        return claim, self.bucket.try_take()

    async def worker(self, connection: SmtpConnection) -> None:
        try:
            claim = await self.queue.get()
            paid = False  # whether claim's token is taken already
            while claim is not None:
                if self.halted():
                    self.note(_released(claim, self._halt_reason()))
                    claim, paid = await self.queue.get(), False
                    continue
                if not paid:
                    await self.bucket.take()
                after, after_paid = self._next_at_hand()
                await self.attempt(connection, claim, after if after_paid else None)
                if after is None:
                    claim, paid = await self.queue.get(), False
                else:
                    claim, paid = after, after_paid
        finally:
            await connection.quit()

    async def attempt(self, connection: SmtpConnection, claim: Claim, then: Claim | None) -> None:
        """Send one claimed message and note its outcome (``then``: the next one on this
        connection, whose envelope may go out with it)."""
        try:
            attempt = await connection.send(claim.message, None if then is None else then.message)
        except SendingPaused as exc:
            if self.report.paused is None:
                self.report.paused = str(exc)
                log.error("%s", exc)
            self.note(_released(claim, PAUSED + str(exc)))
            return
        except Exception as exc:
            # A bug, not a reply: keep the row (due again at once), start the connection
            # afresh, and say so.
            log.exception("sending delivery %d failed", claim.message.delivery_id)
            connection.close()
            self.note(_released(claim, f"internal error: {exc!r}"))
            return
        self.note(outcome_of(claim, attempt, self.clock.now(), self.pace.policy))

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
                    if self.more_coming is None or not self.more_coming():
                        break
                    # Rows are still being rendered (by another process): look again soon.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), IDLE)
                    continue
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
    more_coming: Callable[[], bool] | None = None,
) -> SendReport:
    """Send every due row over ``pace.concurrency`` pooled connections until none is due,
    sending is paused (authentication or TLS: ``report.paused`` says why) or ``stop`` is
    set (the messages in flight finish; the rest are released for the next run).

    ``more_coming``: while it says so, no row due means "not yet" (another process is
    still rendering): look again every ``IDLE`` seconds instead of returning.
    """
    return await _Run(store, options, clock, pace, on_progress, stop, more_coming).run()


def send_due(
    store: Store,
    settings: Settings,
    clock: Clock,
    *,
    on_progress: Callable[[SendReport], None] | None = None,
    share: int = 1,
) -> SendReport:
    """:func:`deliver_pending` with ``delivery.*`` from ``settings`` (blocking);
    ``share``: how many processes are sending (they split ``delivery.rate``)."""
    options = SmtpOptions.from_settings(settings)
    pace = Pace.from_settings(settings, share=share)
    return run_loop(deliver_pending(store, options, clock, pace, on_progress=on_progress))


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed (a few percent less CPU a message),
    else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(main)
    return uvloop.run(main)
