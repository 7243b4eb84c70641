"""The daemon's jobs with a clock the test sets: digests per zone across DST, catch-up after
downtime (one digest, not one per missed day), max lateness, future posts going live
through the APScheduler date job, and the content watcher. Mail goes to a real aiosmtpd."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql

from feedsvc.build.builder import Builder
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.daemon.scheduler import Jobs, JobSchedule, watch_content
from feedsvc.delivery.smtp import SmtpBackend, SmtpOptions
from feedsvc.models import Frequency
from feedsvc.newsletter.jobs import backend_for, renderer_for
from feedsvc.storage import Store, open_store
from tests.conftest import make_settings
from tests.digest_helpers import add_subscriber
from tests.smtp_server import SmtpServer, serving

BUILT = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)  # 12:00 KST, Saturday 1 June 2024
JOINED = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def write_post(content: Path, name: str, title: str, date: str) -> None:
    content.mkdir(parents=True, exist_ok=True)
    body = f"{title}에 대한 본문입니다. 자세한 내용은 시청 누리집을 참고하세요."
    (content / name).write_text(
        f'---\ntitle: "{title}"\ndate: {date}\ncategories: [부산]\n---\n\n{body}\n',
        encoding="utf-8",
    )


def site_settings(root: Path, server: SmtpServer | None = None) -> Settings:
    sections: dict[str, Any] = {
        "digest": {"from": "부산 시정 소식 <news@example.kr>", "max_lateness": "12h"},
        "server": {"public_url": "http://testserver/"},
    }
    if server is not None:
        sections["delivery"] = {
            "backend": "smtp",
            "rate": 10000,
            "smtp": {"host": server.host, "port": server.port, "tls": "none", "timeout": "5s"},
        }
    return make_settings(root, **sections)


@dataclass
class OffsetClock:
    """Real time running from a chosen start, so APScheduler's wall-clock jobs and the
    daemon's dates agree."""

    start: datetime
    began: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


def make_jobs(settings: Settings, store: Store, clock: Any) -> Jobs:
    backend = backend_for(settings)
    return Jobs(
        settings=settings,
        store=store,
        clock=clock,
        builder=Builder(settings, store, clock, workers=1),
        renderer=renderer_for(settings),
        backend=backend,
        confirmations=backend or SmtpBackend(SmtpOptions.from_settings(settings)),
    )


@pytest.fixture
def site(tmp_path: Path, server: SmtpServer) -> Iterator[tuple[Settings, Store]]:
    write_post(tmp_path / "content", "haeundae.md", "해운대 바다축제 개막", "2024-05-31")
    write_post(tmp_path / "content", "expo.md", "스마트시티 박람회 참가 안내", "2024-05-30")
    settings = site_settings(tmp_path, server)
    store = open_store(settings.storage_url)
    with store.write() as conn:
        add_subscriber(conn, "minji@example.kr", timezone="Asia/Seoul", joined=JOINED)
        add_subscriber(
            conn, "jisoo@example.com", name="박지수", timezone="America/New_York", joined=JOINED
        )
    try:
        yield settings, store
    finally:
        store.close()


def subjects(server: SmtpServer) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for received in server.recorder.received:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        found.setdefault(received.recipient, []).append(str(message["Subject"]))
    return found


def test_after_two_days_down_each_subscriber_gets_one_digest_at_start(
    site: tuple[Settings, Store], server: SmtpServer
) -> None:
    """Catch-up: the daemon was down through two 08:00s; one digest each, then nothing."""
    settings, store = site
    clock = FixedClock(BUILT)
    jobs = make_jobs(settings, store, clock)
    asyncio.run(jobs.rebuild())
    # Monday 3 June 09:30 KST: Seoul's 08:00 was 90 minutes ago; New York's 08:00
    # (Sunday 2 June, 12:00 UTC) was 12½ hours ago — past max_lateness.
    clock.moment = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)
    report = asyncio.run(jobs.cycle())
    assert report.sent == 1
    got = subjects(server)
    assert list(got) == ["minji@example.kr"]
    assert got["minji@example.kr"] == ["테스트 사이트: 새 글 2편"]
    again = asyncio.run(jobs.cycle())
    assert again.sent == 0 and len(server.recorder.received) == 1


def test_a_run_older_than_max_lateness_is_skipped_with_a_log_line(
    site: tuple[Settings, Store], server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = site
    clock = FixedClock(BUILT)
    jobs = make_jobs(settings, store, clock)
    asyncio.run(jobs.rebuild())
    clock.moment = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="feedsvc.digests"):
        asyncio.run(jobs.cycle())
    assert any("max_lateness" in record.getMessage() for record in caplog.records)
    assert "jisoo@example.com" not in subjects(server)


def test_new_york_digest_follows_daylight_saving_time(tmp_path: Path, server: SmtpServer) -> None:
    """On 10 March 2024 New York moves to EDT: 08:00 local is 12:00 UTC, not 13:00."""
    write_post(tmp_path / "content", "spring.md", "봄맞이 대청소 안내", "2024-03-08")
    settings = site_settings(tmp_path, server)
    store = open_store(settings.storage_url)
    try:
        with store.write() as conn:
            add_subscriber(
                conn,
                "jisoo@example.com",
                timezone="America/New_York",
                joined=JOINED.replace(month=1),
            )
        clock = FixedClock(datetime(2024, 3, 9, 15, 0, tzinfo=UTC))
        jobs = make_jobs(settings, store, clock)
        asyncio.run(jobs.rebuild())
        clock.moment = datetime(2024, 3, 10, 11, 59, tzinfo=UTC)  # 07:59 EDT
        assert asyncio.run(jobs.cycle()).sent == 0
        clock.moment = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)  # 08:00 EDT
        assert asyncio.run(jobs.cycle()).sent == 1
        assert subjects(server)["jisoo@example.com"] == ["테스트 사이트: 새 글 1편"]
    finally:
        store.close()


def test_immediate_subscribers_hear_of_a_new_post_right_after_the_build(
    site: tuple[Settings, Store], server: SmtpServer
) -> None:
    settings, store = site
    with store.write() as conn:
        # Joined after the back catalogue was announced: only new posts are owed.
        add_subscriber(
            conn,
            "seoyeon@example.kr",
            name="이서연",
            frequency="immediate",
            joined=BUILT + timedelta(minutes=1),
        )
    clock = FixedClock(BUILT)
    jobs = make_jobs(settings, store, clock)
    asyncio.run(jobs.rebuild())
    assert asyncio.run(jobs.cycle()).sent == 0
    write_post(
        settings.content_dir, "bus.md", "시내버스 노선 개편 안내", "2024-06-01T12:05:00+09:00"
    )
    clock.advance(timedelta(minutes=10))

    async def scenario() -> None:
        report = await jobs.rebuild()
        assert report.announced
        assert jobs._cycle_wanted.is_set()  # the build asks for a cycle at once
        await jobs.cycle()

    asyncio.run(scenario())
    assert subjects(server).get("seoyeon@example.kr") == ["테스트 사이트: 새 글 1편"]


def test_a_future_post_goes_live_through_the_date_job(tmp_path: Path) -> None:
    """The build reports the next publish time; the date job rebuilds then; the feed
    gains the post without any file event."""
    start = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    write_post(tmp_path / "content", "now.md", "오늘의 소식", "2024-05-31")
    write_post(tmp_path / "content", "later.md", "곧 공개될 소식", "2024-06-01T03:00:01+00:00")
    settings = site_settings(tmp_path)
    store = open_store(settings.storage_url)
    clock = OffsetClock(start)
    jobs = make_jobs(settings, store, clock)
    schedule = JobSchedule(jobs, cycle_every=timedelta(hours=1), rescan_every=timedelta(hours=1))
    jobs.on_next_publish = schedule.schedule_publish
    feed = settings.output_dir / "feed.xml"

    async def scenario() -> None:
        report = await jobs.rebuild()
        assert report.next_publish == datetime(2024, 6, 1, 3, 0, 1, tzinfo=UTC)
        assert "곧 공개될 소식" not in feed.read_text(encoding="utf-8")
        schedule.start()
        assert schedule.publish_at == report.next_publish
        assert "publish the post dated 2024-06-01T03:00:01+00:00" in schedule.next_runs()
        builder = asyncio.create_task(jobs.build_loop())
        deadline = time.monotonic() + 10
        while "곧 공개될 소식" not in feed.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the future post never went live"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)  # the build's follow-up: nothing else is waiting
        assert not any(name.startswith("publish") for name in schedule.next_runs())
        jobs.stop.set()
        await builder
        schedule.shutdown()

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_a_saved_file_reaches_the_feed_through_the_watcher(tmp_path: Path) -> None:
    write_post(tmp_path / "content", "now.md", "오늘의 소식", "2024-05-31")
    settings = site_settings(tmp_path)
    store = open_store(settings.storage_url)
    jobs = make_jobs(settings, store, FixedClock(BUILT))
    written: list[list[str]] = []
    jobs.on_feeds = written.append
    feed = settings.output_dir / "feed.xml"

    async def scenario() -> None:
        await jobs.rebuild()
        tasks = [
            asyncio.create_task(jobs.build_loop()),
            asyncio.create_task(watch_content(settings.content_dir, jobs)),
        ]
        await asyncio.sleep(0.3)  # the watcher is up
        written.clear()
        write_post(settings.content_dir, "new.md", "광안리 드론쇼 일정", "2024-05-31")
        deadline = time.monotonic() + 10
        while "광안리 드론쇼 일정" not in feed.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the watcher did not rebuild"
            await asyncio.sleep(0.02)
        while not written:  # the file lands before the build reports it
            assert time.monotonic() < deadline, "the build did not report its feeds"
            await asyncio.sleep(0.02)
        assert "feed.xml" in written[-1]
        jobs.stop.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_status_shows_the_next_digest_runs_per_zone(site: tuple[Settings, Store]) -> None:
    from feedsvc.cli.status import DigestRun, collect_status, format_status
    from feedsvc.messages import Texts

    settings, store = site
    with store.write() as conn:
        add_subscriber(conn, "weekly@example.kr", frequency="weekly", joined=JOINED)
    status = collect_status(settings, store, FixedClock(BUILT))
    assert status.next_runs == (
        DigestRun(Frequency.DAILY, "America/New_York", datetime(2024, 6, 1, 12, 0, tzinfo=UTC)),
        DigestRun(Frequency.DAILY, "Asia/Seoul", datetime(2024, 6, 1, 23, 0, tzinfo=UTC)),
        DigestRun(Frequency.WEEKLY, "Asia/Seoul", datetime(2024, 6, 2, 23, 0, tzinfo=UTC)),
    )
    shown = format_status(Texts("en"), status)  # in the site's zone (Asia/Seoul), and how far off
    assert "next run: daily digest (Asia/Seoul) at 2024-06-02 08:00 KST (in 20 h)" in shown
    assert "next run: daily digest (America/New_York) at 2024-06-01 21:00 KST (in 9 h)" in shown
    assert "next run: weekly digest (Asia/Seoul) at 2024-06-03 08:00 KST (in 1 d 20 h)" in shown


def test_the_daemons_builder_keeps_the_stores_rows_in_memory_exactly(tmp_path: Path) -> None:
    """Rebuilds reuse what the last build read; that copy equals the store's rows after an
    edit, a removal and a touch, and a build by another process makes it read again."""
    from feedsvc.storage.posts import load_sources

    content = tmp_path / "content"
    write_post(content, "now.md", "오늘의 소식", "2024-05-31")
    write_post(content, "old.md", "지난 소식", "2024-05-30")
    write_post(content, "gone.md", "사라질 소식", "2024-05-29")
    settings = site_settings(tmp_path)
    store = open_store(settings.storage_url)
    clock = FixedClock(BUILT)
    builder = Builder(settings, store, clock, workers=1)
    try:
        builder.build()
        write_post(content, "now.md", "오늘의 소식 (고침)", "2024-05-31")
        (content / "gone.md").unlink()
        os.utime(content / "old.md", ns=(1, 1))  # same bytes, new stat
        clock.advance(timedelta(minutes=1))
        builder.build()
        memo = builder._memo
        assert memo is not None
        with store.read() as conn:
            assert memo.sources == load_sources(conn)
        feed = (settings.output_dir / "feed.xml").read_text(encoding="utf-8")
        assert "오늘의 소식 (고침)" in feed and "사라질 소식" not in feed

        other = Builder(settings, store, clock, workers=1)  # e.g. `feedsvc build`
        write_post(content, "new.md", "새 소식", "2024-05-31")
        clock.advance(timedelta(minutes=1))
        other.build()
        assert builder._remembered(other_last(store)) is None  # not its build: read again
        write_post(content, "new.md", "새 소식 (다시)", "2024-05-31")
        clock.advance(timedelta(minutes=1))
        builder.build()
        with store.read() as conn:
            assert builder._memo is not None and builder._memo.sources == load_sources(conn)
        assert "새 소식 (다시)" in (settings.output_dir / "feed.xml").read_text(encoding="utf-8")
    finally:
        store.close()


def other_last(store: Store) -> Any:
    from feedsvc.storage.posts import last_build

    with store.read() as conn:
        return last_build(conn)


def test_a_file_reported_to_a_failed_build_is_in_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The paths a failed build was given are not forgotten: the next build sees them,
    not only the paths reported since."""
    write_post(tmp_path / "content", "now.md", "오늘의 소식", "2024-05-31")
    settings = site_settings(tmp_path)
    store = open_store(settings.storage_url)
    jobs = make_jobs(settings, store, FixedClock(BUILT))
    public = settings.output_dir
    content = settings.content_dir

    async def scenario() -> None:
        await jobs.rebuild()
        loop = asyncio.create_task(jobs.build_loop())
        public.rename(tmp_path / "moved")
        public.write_text("not a folder")  # the next build cannot write its feeds
        write_post(content, "first.md", "첫 번째 새 글", "2024-05-31")
        jobs.request_rebuild([str(content / "first.md")])
        deadline = time.monotonic() + 10
        while "build failed" not in caplog.text:  # logged; the loop goes on
            assert time.monotonic() < deadline, "the build did not fail"
            await asyncio.sleep(0.02)
        public.unlink()
        write_post(content, "second.md", "두 번째 새 글", "2024-05-31")
        jobs.request_rebuild([str(content / "second.md")])
        feed = public / "feed.xml"
        while not feed.exists() or "두 번째" not in feed.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "no build after the failure"
            await asyncio.sleep(0.02)
        assert "첫 번째 새 글" in feed.read_text(encoding="utf-8")
        jobs.stop.set()
        await loop

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_the_daemon_reads_the_bounce_inbox_on_its_interval(tmp_path: Path) -> None:
    """A bounce dropped in bounces.inbox_dir while the daemon runs: the bounce job reads it
    within its interval, and the subscriber is bounced."""
    write_post(tmp_path / "content", "now.md", "오늘의 소식", "2024-05-31")
    settings = make_settings(
        tmp_path,
        digest={"from": "부산 시정 소식 <news@example.kr>"},
        bounces={"inbox_dir": "반송함", "interval": "1s"},
    )
    store = open_store(settings.storage_url)
    with store.write() as conn:
        seoyeon = add_subscriber(conn, "seoyeon.park@gmail.com", joined=JOINED)
    jobs = make_jobs(settings, store, OffsetClock(BUILT))
    schedule = JobSchedule(jobs, cycle_every=timedelta(hours=1), rescan_every=timedelta(hours=1))
    inbox = tmp_path / "반송함"
    sample = Path(__file__).resolve().parents[1] / "data" / "bounces" / "gmail-body-only.eml"

    async def scenario() -> None:
        schedule.start()
        assert "bounces" in schedule.next_runs()
        reading = asyncio.create_task(jobs.bounce_loop())
        await asyncio.sleep(0.2)  # the read at start finds nothing
        inbox.mkdir(exist_ok=True)
        (inbox / "bounce.eml").write_bytes(sample.read_bytes())
        deadline = time.monotonic() + 10
        while (inbox / "bounce.eml").exists():
            assert time.monotonic() < deadline, "the bounce inbox was never read"
            await asyncio.sleep(0.05)
        jobs.stop.set()
        await reading
        schedule.shutdown()

    try:
        asyncio.run(scenario())
        with store.read() as conn:
            status = conn.execute(
                sql("SELECT status FROM subscribers WHERE id = :i"), {"i": seoyeon}
            ).scalar()
        assert status == "bounced"
    finally:
        store.close()
