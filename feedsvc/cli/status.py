"""What `feedsvc status` shows, read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from feedsvc.bounces.report import SIGNAL_DAYS, signal_lines
from feedsvc.cli.words import number, problem_text, when_label
from feedsvc.clock import Clock, SystemClock
from feedsvc.config import Settings
from feedsvc.messages import Texts
from feedsvc.models import Frequency, SubscriberStatus
from feedsvc.newsletter.digests import next_send
from feedsvc.storage import Store
from feedsvc.storage.announcements import ArchivePost, archive_posts
from feedsvc.storage.deliveries import DeliveryCounts, delivery_summary
from feedsvc.storage.inbound_signals import SignalCounts, signal_counts
from feedsvc.storage.posts import BuildRecord, last_build
from feedsvc.storage.schema import posts
from feedsvc.storage.schema import subscribers as subscriber_rows
from feedsvc.storage.subscribers import count_by_status


@dataclass(frozen=True, slots=True)
class DigestRun:
    """When the daemon next sends the digests of one frequency in one zone."""

    frequency: Frequency
    zone: str  # the subscribers' zone (the site's when they chose none)
    at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    site: str
    store: str
    sources: int
    broken: int
    last_build: BuildRecord | None
    subscribers: dict[SubscriberStatus, int]
    deliveries: DeliveryCounts | None = None
    # The daemon's next digest runs, soonest first.
    next_runs: tuple[DigestRun, ...] = ()
    # Back-dated posts that went live and are not mailed, newest first.
    archive: tuple[ArchivePost, ...] = ()
    zone: str = "UTC"  # site.timezone: times are shown in it
    at: datetime | None = None  # when the status was read (relative times count from it)
    signals: SignalCounts | None = None  # bounces and complaints of the last 30 days

    def when(self, texts: Texts, moment: datetime) -> str:
        """``moment`` in the site's zone, with how far it is from when this was read."""
        return when_label(texts, moment, self.zone, self.at or moment)


ARCHIVE_SHOWN = 10  # archive posts named one by one; the rest counted


def next_digest_runs(conn: Connection, settings: Settings, now: datetime) -> tuple[DigestRun, ...]:
    """When the next daily and weekly digests go out, per time zone of active subscribers."""
    schedule = settings.digest_schedule
    pairs = conn.execute(
        select(subscriber_rows.c.frequency, subscriber_rows.c.timezone)
        .where(subscriber_rows.c.status == SubscriberStatus.ACTIVE.value)
        .distinct()
    ).all()
    runs: set[DigestRun] = set()
    for frequency, zone_name in pairs:
        kind = Frequency(frequency)
        if kind is Frequency.IMMEDIATE:
            continue  # sent within a minute of each new post
        zone_shown = zone_name or settings.site.timezone
        runs.add(DigestRun(kind, zone_shown, next_send(kind, zone_name, now, schedule)))
    return tuple(sorted(runs, key=lambda run: (run.at, run.frequency.value, run.zone)))


def collect_status(settings: Settings, store: Store, clock: Clock | None = None) -> Status:
    with store.read() as conn:
        sources = conn.execute(select(func.count()).select_from(posts)).scalar_one()
        broken = conn.execute(
            select(func.count()).select_from(posts).where(posts.c.problem.is_not(None))
        ).scalar_one()
        build = last_build(conn)
        subscribers = count_by_status(conn)
        sending = delivery_summary(conn)
        at = (clock or SystemClock()).now()
        runs = next_digest_runs(conn, settings, at)
        archive = tuple(archive_posts(conn))
        signals = signal_counts(conn, at - timedelta(days=SIGNAL_DAYS))
    url = store.engine.url.render_as_string(hide_password=True)
    return Status(
        settings.site.title,
        url,
        sources,
        broken,
        build,
        subscribers,
        sending,
        runs,
        archive,
        settings.site.timezone,
        at,
        signals,
    )


def format_status(texts: Texts, status: Status) -> str:
    """What `feedsvc status` prints, in ``texts``' language."""
    lines = [
        texts("cli.status.site", title=status.site),
        texts("cli.status.store", store=status.store),
        texts("cli.status.sources", count=number(status.sources)),
    ]
    counts = [
        texts(f"cli.status.subscribers.{state.value}", count=number(n))
        for state, n in status.subscribers.items()
        if n
    ]
    listed = ", ".join(counts) if counts else texts("cli.status.subscribers.none")
    lines.append(texts("cli.status.subscribers", counts=listed))
    lines += _delivery_lines(texts, status.deliveries)
    if status.signals is not None:
        found, warning = signal_lines(texts, status.signals)
        lines += found + ([texts("cli.status.warning", message=warning)] if warning else [])
    lines += [
        texts("cli.status.next_run", what=run_label(texts, run), when=status.when(texts, run.at))
        for run in status.next_runs
    ]
    lines += _archive_lines(texts, status.archive)
    build = status.last_build
    if build is None:
        lines.append(texts("cli.status.never_built"))
        return "\n".join(lines)
    seconds = (build.finished_at - build.started_at).total_seconds()
    lines += [
        texts(
            "cli.status.last_build",
            when=status.when(texts, build.finished_at),
            seconds=f"{seconds:.2f}",
            files=texts.plural("cli.count.files", build.files),
            published=number(build.published),
            feeds=texts.plural("cli.count.feed_files", build.feeds_written),
        ),
        texts(
            "cli.status.problems",
            errors=texts.plural("cli.count.errors", build.errors),
            warnings=texts.plural("cli.count.warnings", build.warnings),
        ),
    ]
    lines += [f"  {line}" for p in build.problems for line in problem_text(texts, p).splitlines()]
    if build.next_publish is not None:
        lines.append(
            texts("cli.status.next_scheduled", when=status.when(texts, build.next_publish))
        )
    return "\n".join(lines)


def run_label(texts: Texts, run: DigestRun) -> str:
    """``daily digest (Asia/Seoul)``."""
    return texts(f"cli.digest_run.{run.frequency.value}", zone=run.zone)


def _archive_lines(texts: Texts, archive: tuple[ArchivePost, ...]) -> list[str]:
    if not archive:
        return []
    lines = [texts("cli.status.archive", count=number(len(archive)))]
    lines += [
        f"  {post.source_path}: {texts.message(post.note)}" for post in archive[:ARCHIVE_SHOWN]
    ]
    if len(archive) > ARCHIVE_SHOWN:
        lines.append(texts("cli.status.archive_more", count=number(len(archive) - ARCHIVE_SHOWN)))
    return lines


def _delivery_lines(texts: Texts, counts: DeliveryCounts | None) -> list[str]:
    if counts is None:
        return []
    lines = [
        texts(
            "cli.status.deliveries",
            pending=number(counts.pending),
            retrying=number(counts.retrying),
            failed=number(counts.failed),
            sent=number(counts.sent),
        )
    ]
    if counts.paused is not None:
        pause = counts.paused
        waiting = number(pause.waiting)
        if pause.since is not None:
            since = pause.since.isoformat()
            lines.append(
                texts("cli.status.paused_since", since=since, reason=pause.reason, count=waiting)
            )
        else:
            lines.append(texts("cli.status.paused", reason=pause.reason, count=waiting))
    if counts.last_error:
        lines.append(texts("cli.status.last_error", error=counts.last_error))
    if counts.failed:
        lines.append(texts("cli.status.failed_hint"))
    return lines
