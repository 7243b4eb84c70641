"""The daemon's jobs: rebuilds, future posts going live, digests, sends, and the watcher.

    watchfiles event ─┐
    rescan (interval) ─┼─▶ request_rebuild ─▶ build loop ─▶ Builder.build (a thread)
    publish (date job) ┘                                   │ feeds changed → on_feeds
                                                           │ next_publish  → publish job
                                                           └ posts announced → request_cycle
    digests (every minute) ─▶ request_cycle ─▶ cycle loop ─▶ create_due_digests, render,
                                                             confirmations, deliveries

Requests only set an event; one loop per kind of work does it, so a burst of file events
is one build and a build never overlaps another. Each step is also a plain coroutine
(:meth:`Jobs.rebuild`, :meth:`Jobs.cycle`) that tests call with a :class:`FixedClock`.

Catch-up needs no bookkeeping here: the first cycle at start asks the planner what is due
*now*, which is the latest missed period of each subscriber (one digest, not one per
missed day), unless it ended more than ``digest.max_lateness`` ago (skipped, logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedsvc.bounces.reading import read_bounces
from feedsvc.bounces.report import InboxReport
from feedsvc.build.builder import Builder
from feedsvc.build.report import BuildReport
from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending
from feedsvc.delivery.outbox import Backend
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.newsletter.confirmations import send_pending_confirmations
from feedsvc.newsletter.jobs import (
    DueDigests,
    Renderer,
    create_due_digests,
    render_pending,
    send_outbox,
)
from feedsvc.storage import Store

log = logging.getLogger("feedsvc.scheduler")

RESCAN_EVERY = timedelta(minutes=5)  # the safety net under the watcher
CYCLE_EVERY = timedelta(minutes=1)  # digest creation and retry sweeps
WATCH_DEBOUNCE_MS = 20  # editors write a file in a few syscalls; one build for them all


@dataclass
class CycleReport:
    """What one digest-and-send cycle did."""

    due: DueDigests | None = None
    rendered: int = 0
    confirmations: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


@dataclass
class Jobs:
    """The work of the daemon for one site and store.

    ``backend`` is the file backend (outbox), or None to send over SMTP with a pool;
    ``confirmations`` sends single confirmation emails (either backend). ``stop`` ends
    SMTP sending between messages: those in flight finish.
    """

    settings: Settings
    store: Store
    clock: Clock
    builder: Builder
    renderer: Renderer
    backend: Backend | None
    confirmations: Backend
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    on_feeds: Callable[[list[str]], None] | None = None
    on_next_publish: Callable[[datetime | None], None] | None = None
    last_build: BuildReport | None = None
    # Whether this instance leads (builds, creates and renders digests); every instance
    # sends. Only one leads when several share a PostgreSQL store (feedsvc.daemon.leadership).
    leading: bool = True

    def __post_init__(self) -> None:
        self._rebuild_wanted = asyncio.Event()
        self._cycle_wanted = asyncio.Event()
        self._bounces_wanted = asyncio.Event()
        # What the next requested build must look at: the paths a watcher reported, or
        # the whole folder (at start, on the periodic rescan, after a failed build).
        self._changed: set[str] = set()
        self._walk = True

    # --- requests (cheap, from anywhere on the loop) ---------------------------------

    def request_rebuild(self, paths: Iterable[str] | None = None) -> None:
        """Ask for a build; ``paths`` are the files a watcher saw change (None: look at
        the whole folder)."""
        if paths is None:
            self._walk = True
        else:
            self._changed.update(paths)
        self._rebuild_wanted.set()

    def request_cycle(self) -> None:
        self._cycle_wanted.set()

    def request_bounces(self) -> None:
        self._bounces_wanted.set()

    # --- the work --------------------------------------------------------------------

    async def rebuild(self, changed: Collection[str] | None = None) -> BuildReport:
        """One incremental build (in a thread), then what follows from it. ``changed``:
        the only paths that may have changed since the last build (None: walk the folder)."""
        if changed is None:  # the walk sees whatever was reported until now
            self._changed, self._walk = set(), False
        report = await asyncio.to_thread(self.builder.build, changed=changed)
        self.last_build = report
        seconds = sum(report.timings.values())
        if report.feeds_written or report.announced or report.problems:
            log.info(
                "build: %d published, %d feed files written, %d new for digests, "
                "%d problems (%.0f ms)",
                report.published,
                len(report.feeds_written),
                len(report.announced),
                len(report.problems),
                seconds * 1000,
            )
        for problem in report.problems:
            log.warning("%s", problem)
        if report.feeds_written and self.on_feeds is not None:
            self.on_feeds(report.feeds_written)
        if self.on_next_publish is not None:
            self.on_next_publish(report.next_publish)
        if report.announced:
            self.request_cycle()  # immediate subscribers hear of it now, not in a minute
        return report

    async def cycle(self) -> CycleReport:
        """Create the digests due now, render them, send confirmations and every due
        delivery (new ones and retries)."""
        report = CycleReport()
        now = self.clock.now()
        if self.leading:
            report.due = await asyncio.to_thread(create_due_digests, self.store, self.settings, now)
            created = report.due.created
            if created is not None and created.deliveries:
                log.info("digests: %d deliveries created", created.deliveries)
            rendered = await asyncio.to_thread(render_pending, self.store, self.renderer, now)
            report.rendered = rendered.rendered
        if self.stop.is_set():
            return report
        confirmations = await asyncio.to_thread(
            send_pending_confirmations, self.store, self.confirmations, self.clock
        )
        report.confirmations = confirmations.sent
        if self.backend is not None:
            sent = await asyncio.to_thread(
                send_outbox, self.store, self.backend, self.clock, self.settings
            )
            report.sent, report.retried, report.failed = sent.sent, sent.retried, sent.failed
        else:
            smtp = await deliver_pending(
                self.store,
                SmtpOptions.from_settings(self.settings),
                self.clock,
                Pace.from_settings(self.settings),
                stop=self.stop,
            )
            _log_smtp(smtp)
            report.sent, report.retried, report.failed = smtp.sent, smtp.retried, smtp.failed
        if report.sent or report.retried or report.failed:
            log.info("sent %d, retrying %d, failed %d", report.sent, report.retried, report.failed)
        return report

    async def read_bounces(self) -> InboxReport | None:
        """Read the bounce inbox folder and mailbox (bounces.inbox_dir, bounces.mailbox),
        those configured; every instance may (each message is applied once, whoever reads
        it)."""
        bounces = self.settings.bounces
        if bounces.inbox_dir is None and bounces.mailbox.protocol is None:
            return None
        report = await asyncio.to_thread(read_bounces, self.settings, self.store, self.clock.now)
        for problem in report.problems:
            log.warning("bounces: %s", problem)
        return report

    # --- the loops (one task each; requests coalesce) --------------------------------

    async def bounce_loop(self) -> None:
        await self._loop(self._bounces_wanted, self.read_bounces, "bounce inbox")

    async def build_loop(self) -> None:
        await self._loop(self._rebuild_wanted, self._requested_rebuild, "build")

    async def _requested_rebuild(self) -> BuildReport | None:
        if not self.leading:  # the leader builds; this one walks the folder if it leads
            self._changed, self._walk = set(), True
            return None
        changed = None if self._walk else frozenset(self._changed)
        self._changed = set()
        try:
            return await self.rebuild(changed)
        except BaseException:
            self._walk = True  # the paths of this build were not all looked at
            raise

    async def cycle_loop(self) -> None:
        await self._loop(self._cycle_wanted, self.cycle, "digest cycle")

    async def _loop(
        self, wanted: asyncio.Event, work: Callable[[], Awaitable[object]], name: str
    ) -> None:
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            while not self.stop.is_set():
                waiting = asyncio.ensure_future(wanted.wait())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if self.stop.is_set():
                    return
                wanted.clear()
                try:
                    await work()
                except Exception:
                    # One failed run must not end the daemon; the next request retries.
                    log.exception("%s failed", name)
        finally:
            stopping.cancel()


def _log_smtp(report: SendReport) -> None:
    for error, count in report.errors.most_common(5):
        log.warning("%d × %s", count, error)
    if report.paused is not None:
        log.error("sending paused: %s", report.paused)


async def watch_content(folder: Path, jobs: Jobs, *, debounce_ms: int = WATCH_DEBOUNCE_MS) -> None:
    """Ask for a rebuild whenever something below ``folder`` changes, until ``jobs.stop``."""
    from watchfiles import awatch

    folder.mkdir(parents=True, exist_ok=True)
    async for changes in awatch(
        folder, debounce=debounce_ms, step=10, stop_event=jobs.stop, recursive=True
    ):
        jobs.request_rebuild(path for _change, path in changes)


class _After(BaseTrigger):  # type: ignore[misc]  # apscheduler has no type hints
    """Fires once, ``delay`` after APScheduler takes the job, in APScheduler's own time.

    APScheduler wakes up by the system's wall clock, which is not the daemon's (a pinned
    or test clock may be years away): the daemon's clock says how long is left, and the
    scheduler counts that from its own "now", so feedsvc itself never reads the time.
    """

    def __init__(self, delay: timedelta) -> None:
        self.delay = delay

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return now + self.delay if previous_fire_time is None else None

    def __str__(self) -> str:
        return f"after {self.delay}"


class JobSchedule:
    """The APScheduler jobs: rescan, digest cycle, and the date job of the next post.

    The publish job fires when the daemon's clock says the post is due: it is placed
    "how long the clock says is left" after now (:class:`_After`), so a pinned or test
    clock still fires it on time.
    """

    def __init__(
        self,
        jobs: Jobs,
        *,
        rescan_every: timedelta = RESCAN_EVERY,
        cycle_every: timedelta = CYCLE_EVERY,
    ) -> None:
        self.jobs = jobs
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.rescan_every = rescan_every
        self.cycle_every = cycle_every
        self.publish_at: datetime | None = None  # in the daemon's clock

    def start(self) -> None:
        self.scheduler.add_job(
            self.jobs.request_rebuild,
            IntervalTrigger(seconds=self.rescan_every.total_seconds(), timezone=UTC),
            id="rescan",
            name="content rescan",
            coalesce=True,
        )
        self.scheduler.add_job(
            self.jobs.request_cycle,
            IntervalTrigger(seconds=self.cycle_every.total_seconds(), timezone=UTC),
            id="digests",
            name="digests and retries",
            coalesce=True,
        )
        bounces = self.jobs.settings.bounces
        if bounces.inbox_dir is not None or bounces.mailbox.protocol is not None:
            self.scheduler.add_job(
                self.jobs.request_bounces,
                IntervalTrigger(seconds=bounces.interval.total_seconds(), timezone=UTC),
                id="bounces",
                name="bounces",
                coalesce=True,
            )
            self.jobs.request_bounces()  # at start, too
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def schedule_publish(self, when: datetime | None) -> None:
        """Rebuild when the next future-dated post goes live (None: there is none)."""
        self.publish_at = when
        with contextlib.suppress(LookupError):  # JobLookupError: nothing was scheduled
            self.scheduler.remove_job("publish")
        if when is None:
            return
        left = max(when - self.jobs.clock.now(), timedelta(0))
        self.scheduler.add_job(
            self.jobs.request_rebuild,
            _After(left),
            id="publish",
            name=f"publish the post dated {when.isoformat()}",
            misfire_grace_time=None,  # late is better than never
        )
        log.info("next post goes live at %s", when.isoformat())

    def next_runs(self) -> dict[str, datetime]:
        """Job name → next run (wall clock), for logs and status."""
        runs: dict[str, datetime] = {}
        for job in self.scheduler.get_jobs():
            if job.next_run_time is not None:
                runs[job.name] = job.next_run_time
        return runs
