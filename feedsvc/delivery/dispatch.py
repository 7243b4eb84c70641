"""Sending the outbox: claims, a pool of SMTP connections, the rate limit, retries.

    keeper: record + renew + claim (one short write txn a turn) → queue
        → N connections (each reused) → outcomes → keeper

One task, the keeper, is the only one to touch the store, from a thread
(``asyncio.to_thread``): each turn is one short write transaction that records the
outcomes done, renews the leases held when it is time, and claims due rows (with a
lease) into the room that made. ``delivery.concurrency`` workers, each owning one
:class:`~feedsvc.delivery.smtp.SmtpConnection`, take messages from the queue, one token each from
the process-wide :class:`~feedsvc.delivery.pacing.Throttle` (``delivery.rate``), and talk
SMTP with no transaction open. A
worker that finds the next message already waiting hands it to its connection with the
current one, so that its envelope can be pipelined with the current message's final dot.

A run holds at most :attr:`Pace.window` rows (claimed, outcome not yet recorded): what its
connections can carry (:data:`PIPELINE_DEPTH` each), and no more than the rate sends in
:data:`AHEAD` seconds. It claims again as outcomes are recorded, and renews the lease of
the rows it holds every third of ``delivery.lease``, so the lease can be short however
slowly a message goes out; a row whose lease another sender took after all (this process
stalled) is left to it.

Other processes may send from the same store at the same time (`delivery.workers`,
:mod:`feedsvc.delivery.workers`; a daemon and a command): claims keep them apart.

If the process dies, only the rows it held stay ``sending``, until their lease runs out
(30 s by default); then any sender takes them again with the same bytes. Every other row
goes out on the next run at once: nothing is lost, and only messages that were in flight
can arrive twice, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.pacing import RetryPolicy, Throttle
from feedsvc.delivery.smtp import Attempt, SmtpConnection, SmtpOptions, Verdict
from feedsvc.errors import SendingPaused
from feedsvc.storage import Store
from feedsvc.storage.delivery_claims import Claim, claim_due, renew_leases
from feedsvc.storage.delivery_outcomes import (
    BOUNCE_NOTE,
    NOT_A_BOUNCE,
    PAUSED,
    DeliveryOutcome,
    Result,
    record_outcomes,
)

log = logging.getLogger("feedsvc.delivery")
T = TypeVar("T")

LEASE = timedelta(seconds=30)  # delivery.lease
# Rows a connection may hold in the sender's pipeline (claimed → queued → on the wire →
# outcome waiting to be recorded). On the wire there are only ever two: the message, and
# the next one whose envelope rides with its final dot. The rest cover the time a claim
# or a record takes when the store is slow (another process writing; this process's
# event loop keeping the store's thread waiting for the GIL): without a rate limit, 8
# connections hold 512 rows, a fraction of a second's sending, and keep bench/send.py's
# throughput (smaller pipelines left connections idle). With delivery.rate, AHEAD binds.
PIPELINE_DEPTH = 64
AHEAD = 2.0  # seconds of sending at delivery.rate a run may hold
FLUSH_EVERY = 0.2  # seconds between writes of outcomes, at the latest
RENEWALS = 3  # lease renewals per delivery.lease: two may be late before a row is lost
STEPS = 4  # a run claims (and records) a quarter of its window at a time
RECHECK = 1.0  # seconds between claims that look for expired leases and retries first
IDLE = 0.05  # seconds between looks for rows while more are being rendered
UNRECORDED_STEPS = 2  # steps of outcomes a run may have waiting to be recorded


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
    """How hard to push: connections, messages a second, rows held, lease, patience."""

    concurrency: int = 8
    rate: float = 100.0
    lease: timedelta = LEASE
    bounce_limit: int = 1
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def window(self) -> int:
        """Rows a run holds at most (claimed, outcome not yet recorded): what its
        connections can have on the wire, and no more than the rate sends in ``AHEAD``
        seconds. After a crash these are all that wait for their lease to run out."""
        return max(1, min(self.concurrency * PIPELINE_DEPTH, math.ceil(self.rate * AHEAD)))

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


def outcome_of(
    claim: Claim, attempt: Attempt, now: datetime, policy: RetryPolicy
) -> DeliveryOutcome:
    """The row's next state after ``attempt``."""
    m = claim.message
    if attempt.verdict is Verdict.SENT:
        return DeliveryOutcome(
            m.delivery_id, m.subscriber_id, Result.SENT, attempt.code, attempt.reply
        )
    error = f"{m.email}: {attempt.summary}"
    if attempt.verdict is Verdict.PERMANENT:
        bounce = attempt.bounce and attempt.code is not None
        return DeliveryOutcome(
            m.delivery_id,
            m.subscriber_id,
            Result.FAILED,
            attempt.code,
            attempt.reply,
            error + (BOUNCE_NOTE if bounce else NOT_A_BOUNCE),
            bounce=bounce,
        )
    at = policy.next_attempt(m.attempts, claim.queued_at, now)
    if at is None:
        error = f"{error} (gave up: still failing after delivery.max_age = {policy.max_age})"
        return DeliveryOutcome(
            m.delivery_id, m.subscriber_id, Result.FAILED, attempt.code, attempt.reply, error
        )
    return DeliveryOutcome(
        m.delivery_id, m.subscriber_id, Result.RETRY, attempt.code, attempt.reply, error, at
    )


def _released(claim: Claim, reason: str) -> DeliveryOutcome:
    m = claim.message
    return DeliveryOutcome(m.delivery_id, m.subscriber_id, Result.RELEASED, error=reason)


@dataclass(frozen=True, slots=True)
class _Turn:
    """What one store transaction of a run did."""

    bounced: list[int]
    claims: list[Claim]
    lost: set[int]


class _SendRun:
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
        self.window = pace.window
        # Claim and record in steps of a part of the window: a transaction carries a few
        # rows at least, and the connections keep the rest of the window meanwhile.
        self.step = max(1, self.window // STEPS)
        self.queue: asyncio.Queue[Claim | None] = asyncio.Queue()  # never above the window
        # Rows claimed whose outcome is not recorded yet: id → the attempts its claim left.
        # Only the keeper changes it.
        self.held: dict[int, int] = {}
        self.lost: set[int] = set()  # rows another sender took (their lease lapsed)
        self.outcomes: list[DeliveryOutcome] = []
        # Outcomes noted and not yet committed (those waiting, and the batch being
        # written). Workers start no message while UNRECORDED_STEPS steps of them wait: if
        # the store stops taking writes (slowly: a locked or failing disk), no more than
        # that goes out unrecorded, to be sent again after the lease.
        self.unrecorded = 0
        self.unrecorded_limit = UNRECORDED_STEPS * self.step
        self.recorded = asyncio.Condition()
        self.throttle = Throttle(pace.rate)
        self.wake = asyncio.Event()  # for the keeper: a step of outcomes is done, or all
        self.finished = asyncio.Event()  # the workers are done
        self.claiming = True
        self.checked = -math.inf  # when a claim last looked at expired leases first
        self.broken: BaseException | None = None  # the store failed: nothing more is sent

    def halted(self) -> bool:
        return self.report.paused is not None or self.stop.is_set() or self.broken is not None

    def _halt_reason(self) -> str:
        if self.report.paused is not None:
            return PAUSED + self.report.paused
        return "sending stopped before this message was tried"

    async def transact(self, batch: list[DeliveryOutcome], want: int, renew: bool) -> _Turn:
        """One write transaction: record ``batch``, renew the leases held (if ``renew``),
        claim up to ``want`` rows; in a thread."""
        moment = asyncio.get_running_loop().time()
        new_first = moment - self.checked < RECHECK
        if want and not new_first:
            self.checked = moment
        recorded = {o.delivery_id for o in batch}  # no longer ``sending`` once recorded
        held = {i: n for i, n in self.held.items() if i not in recorded} if renew else {}
        pace = self.pace

        def work() -> _Turn:
            with self.store.write() as conn:
                now = self.clock.now()
                bounced = (
                    record_outcomes(conn, batch, now, bounce_limit=pace.bounce_limit)
                    if batch
                    else []
                )
                lost = renew_leases(conn, held, now, lease=pace.lease) if held else set()
                claims = (
                    claim_due(conn, now, limit=want, lease=pace.lease, new_first=new_first)
                    if want
                    else []
                )
            return _Turn(bounced, claims, lost)

        return await asyncio.to_thread(work)

    def _settle(self, batch: list[DeliveryOutcome], turn: _Turn) -> None:
        for outcome in batch:
            self.held.pop(outcome.delivery_id, None)
        self.report.bounced += len(turn.bounced)
        if turn.lost:
            self._drop(turn.lost)
        for claim in turn.claims:
            self.held[claim.message.delivery_id] = claim.message.attempts
            self.queue.put_nowait(claim)
        if batch and self.on_progress is not None:
            self.on_progress(self.report)

    def _drop(self, lost: set[int]) -> None:
        """Rows another sender claimed once their lease lapsed (this process stalled):
        leave them to it, and never start those not handed to a connection yet."""
        log.warning(
            "%d claimed messages were taken over by another sender (this one did not renew "
            "their lease within delivery.lease = %s): it leaves them to that sender",
            len(lost),
            self.pace.lease,
        )
        self.lost |= lost
        for delivery_id in lost:
            self.held.pop(delivery_id, None)
        waiting = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        for claim in waiting:
            if claim is None or claim.message.delivery_id not in lost:
                self.queue.put_nowait(claim)

    def _end_claims(self) -> None:
        """No more claims: each worker ends once the queue before it is done."""
        if self.claiming:
            self.claiming = False
            for _ in range(self.pace.concurrency):
                self.queue.put_nowait(None)

    async def keeper(self) -> None:
        """The one task that touches the store. Each turn, one transaction records the
        outcomes done, renews the leases held when it is time, and claims into the room
        the window has; then it waits for a step of outcomes (or ``FLUSH_EVERY``)."""
        # The loop's monotonic time, not the clock: how often to renew is a duration.
        loop = asyncio.get_running_loop()
        every = self.pace.lease.total_seconds() / RENEWALS
        renew_at = loop.time() + every
        try:
            while not (self.finished.is_set() and not self.outcomes):
                if self.halted():
                    self._end_claims()
                batch, self.outcomes = self.outcomes, []
                room = self.window - len(self.held) + len(batch)
                want = room if self.claiming and room >= self.step else 0
                renew = loop.time() >= renew_at
                wait = FLUSH_EVERY
                if batch or want or renew:
                    turn = await self.transact(batch, want, renew)
                    renew_at = loop.time() + every if renew else renew_at
                    self._settle(batch, turn)
                    self.unrecorded -= len(batch)
                    await self._tell_workers()
                    if want and not turn.claims:
                        if self.more_coming is None or not self.more_coming():
                            self._end_claims()
                        wait = IDLE  # rows are still being rendered: look again soon
                if self.finished.is_set():
                    continue  # the workers are done: record what is left, then end
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min(wait, renew_at - loop.time()))
                self.wake.clear()
        except Exception as exc:
            log.error(
                "sending stops: the store failed to record what was sent (%s); the %d "
                "messages held stay claimed and go out again once their lease "
                "(delivery.lease = %s) runs out",
                exc,
                len(self.held),
                self.pace.lease,
            )
            self.broken = exc
            raise
        finally:
            self._end_claims()
            await self._tell_workers()

    async def _tell_workers(self) -> None:
        async with self.recorded:
            self.recorded.notify_all()

    async def _until_recorded(self) -> None:
        """Wait while too many outcomes wait to be recorded (or until sending halts)."""
        if self.unrecorded < self.unrecorded_limit:
            return
        self.wake.set()
        async with self.recorded:
            await self.recorded.wait_for(
                lambda: self.unrecorded < self.unrecorded_limit or self.halted()
            )

    def note(self, outcome: DeliveryOutcome) -> None:
        if outcome.delivery_id in self.lost and outcome.result is not Result.SENT:
            return  # the row is another sender's now: only a 250 is worth telling it
        self.outcomes.append(outcome)
        self.unrecorded += 1
        if len(self.outcomes) >= self.step:
            self.wake.set()
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
        return claim, self.throttle.try_take()

    async def worker(self, connection: SmtpConnection) -> None:
        try:
            claim = await self.queue.get()
            paid = False  # whether claim's token is taken already
            while claim is not None:
                await self._until_recorded()
                if self.halted():
                    self.note(_released(claim, self._halt_reason()))
                    claim, paid = await self.queue.get(), False
                    continue
                if not paid:
                    await self.throttle.take()
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

    async def run(self) -> SendReport:
        workers = [
            asyncio.create_task(self.worker(SmtpConnection(self.options)))
            for _ in range(self.pace.concurrency)
        ]
        keeper = asyncio.create_task(self.keeper())
        try:
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            self.finished.set()
            self.wake.set()
            await keeper  # records the last outcomes; raises the store's error, if any
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
    return await _SendRun(store, options, clock, pace, on_progress, stop, more_coming).run()


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
