"""What `feedsvc status` shows, read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from feedsvc.cli.words import counted, when_label
from feedsvc.clock import Clock, SystemClock
from feedsvc.config import Settings
from feedsvc.models import Frequency, SubscriberStatus
from feedsvc.newsletter.digests import next_send
from feedsvc.storage import Store
from feedsvc.storage.announcements import ArchivePost, archive_posts
from feedsvc.storage.deliveries import DeliveryCounts, delivery_summary
from feedsvc.storage.posts import BuildRecord, last_build
from feedsvc.storage.schema import posts
from feedsvc.storage.schema import subscribers as subscriber_rows
from feedsvc.storage.subscribers import count_by_status


@dataclass(frozen=True, slots=True)
class Status:
    site: str
    store: str
    sources: int
    broken: int
    last_build: BuildRecord | None
    subscribers: dict[SubscriberStatus, int]
    deliveries: DeliveryCounts | None = None
    # The daemon's next digest runs: (what, when), soonest first.
    next_runs: tuple[tuple[str, datetime], ...] = ()
    # Back-dated posts that went live and are not mailed, newest first.
    archive: tuple[ArchivePost, ...] = ()
    zone: str = "UTC"  # site.timezone: times are shown in it
    at: datetime | None = None  # when the status was read (relative times count from it)

    def when(self, moment: datetime) -> str:
        """``moment`` in the site's zone, with how far it is from when this was read."""
        return when_label(moment, self.zone, self.at or moment)


ARCHIVE_SHOWN = 10  # archive posts named one by one; the rest counted


def next_digest_runs(
    conn: Connection, settings: Settings, now: datetime
) -> tuple[tuple[str, datetime], ...]:
    """When the next daily and weekly digests go out, per time zone of active subscribers."""
    schedule = settings.digest_schedule
    pairs = conn.execute(
        select(subscriber_rows.c.frequency, subscriber_rows.c.timezone)
        .where(subscriber_rows.c.status == SubscriberStatus.ACTIVE.value)
        .distinct()
    ).all()
    runs: set[tuple[str, datetime]] = set()
    for frequency, zone_name in pairs:
        kind = Frequency(frequency)
        if kind is Frequency.IMMEDIATE:
            continue  # sent within a minute of each new post
        zone_shown = zone_name or settings.site.timezone
        runs.add((f"{kind.value} digest ({zone_shown})", next_send(kind, zone_name, now, schedule)))
    return tuple(sorted(runs, key=lambda run: (run[1], run[0])))


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
    )


def format_status(status: Status) -> str:
    lines = [f"site: {status.site}", f"store: {status.store}", f"source files: {status.sources}"]
    counts = ", ".join(f"{n} {s}" for s, n in status.subscribers.items() if n) or "none"
    lines.append(f"subscribers: {counts}")
    lines += _delivery_lines(status.deliveries)
    lines += [f"next run: {what} at {status.when(when)}" for what, when in status.next_runs]
    lines += _archive_lines(status.archive)
    build = status.last_build
    if build is None:
        lines.append("last build: never (run `feedsvc build`)")
        return "\n".join(lines)
    seconds = (build.finished_at - build.started_at).total_seconds()
    lines += [
        f"last build: {status.when(build.finished_at)}, {seconds:.2f} s: "
        f"{counted(build.files, 'file')}, {build.published} published, "
        f"{counted(build.feeds_written, 'feed file')} changed",
        f"content problems: {counted(build.errors, 'error')}, {counted(build.warnings, 'warning')}",
    ]
    lines += [f"  {p}" for p in build.problems]
    if build.next_publish is not None:
        lines.append(f"next scheduled post: {status.when(build.next_publish)}")
    return "\n".join(lines)


def _archive_lines(archive: tuple[ArchivePost, ...]) -> list[str]:
    if not archive:
        return []
    lines = [f"archive posts (published, not mailed): {len(archive)}"]
    lines += [f"  {post.source_path}: {post.note}" for post in archive[:ARCHIVE_SHOWN]]
    if len(archive) > ARCHIVE_SHOWN:
        lines.append(f"  … and {len(archive) - ARCHIVE_SHOWN} more")
    return lines


def _delivery_lines(counts: DeliveryCounts | None) -> list[str]:
    if counts is None:
        return []
    lines = [
        f"deliveries: {counts.pending} pending, {counts.retrying} retrying, "
        f"{counts.failed} failed, {counts.sent} sent"
    ]
    if counts.paused is not None:
        pause = counts.paused
        since = f" since {pause.since.isoformat()}" if pause.since is not None else ""
        lines.append(
            f"sending paused{since}: {pause.reason} ({pause.waiting} messages released by "
            "the pause wait; `feedsvc digest send` or the daemon's next delivery run tries "
            "again)"
        )
    if counts.last_error:
        lines.append(f"last delivery error: {counts.last_error}")
    if counts.failed:
        lines.append(
            "  see `feedsvc deliveries list --status failed`; after fixing the cause, "
            "`feedsvc deliveries retry`"
        )
    return lines
