"""Crash safety and shared work, with real processes: `python -m feedsvc digest send`
against an aiosmtpd server in this process, killed with SIGKILL at random moments and
started again; and two senders draining one digest together.

Most tests pin each process's clock (``FEEDSVC_NOW``); the one about how long a crash
stalls sending runs every process on the real clock, as an operator would."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from feedsvc.delivery.dispatch import Pace
from feedsvc.models import DeliveryStatus
from feedsvc.storage import open_store
from feedsvc.storage.announcements import note_published
from feedsvc.storage.schema import deliveries, subscribers
from tests.digest_helpers import make_post, sample_posts, site_mapping, store_post
from tests.smtp_server import SmtpServer, serving
from tests.storage.test_digests import ANNOUNCED, MORNING

pytestmark = pytest.mark.slow

SUBSCRIBERS = 5000
SURNAMES = "김이박최정강조윤장임"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def write_config(folder: Path, store_url: str, server: SmtpServer, **delivery: Any) -> Path:
    """config.yaml for SMTP to ``server`` over 4 connections (``delivery`` overrides)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = site_mapping(
        storage={"url": store_url},
        delivery={
            "backend": "smtp",
            "concurrency": 4,
            "rate": 100000,
            "smtp": {"host": server.host, "port": server.port, "tls": "none", "timeout": "5s"},
            **delivery,
        },
    )
    config = folder / "config.yaml"
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return config


def add_readers(store_url: str, count: int, frequency: str, joined: datetime) -> None:
    store = open_store(store_url)
    try:
        with store.write() as conn:
            conn.execute(
                insert(subscribers),
                [
                    {
                        "email": f"reader{i:05d}@example.kr",
                        "name": f"{SURNAMES[i % 10]}독자{i}",
                        "status": "active",
                        "frequency": frequency,
                        "categories": "[]",
                        "timezone": None,
                        "created": joined,
                        "confirmed": joined,
                        "consent_source": "web",
                    }
                    for i in range(count)
                ],
            )
    finally:
        store.close()


def make_site(folder: Path, store_url: str, server: SmtpServer, workers: int = 1) -> Path:
    """config.yaml for SMTP to ``server`` (``delivery.workers`` processes); posts and
    5,000 daily subscribers in the store."""
    config = write_config(folder, store_url, server, workers=workers)
    store = open_store(store_url)
    try:
        with store.write() as conn:
            for post in sample_posts():
                store_post(conn, post)
            note_published(conn, [p.meta for p in sample_posts()], ANNOUNCED)
    finally:
        store.close()
    add_readers(store_url, SUBSCRIBERS, "daily", MORNING - timedelta(days=30))
    return config


def sender(config: Path, at: timedelta | None) -> subprocess.Popen[bytes]:
    """A `digest send` process whose clock reads MORNING + ``at`` (None: the real clock)."""
    env = {**os.environ, "FEEDSVC_SECRET_KEY": "테스트-비밀-키-kill-0123456789abcdef"}
    env.pop("FEEDSVC_NOW", None)
    if at is not None:
        env["FEEDSVC_NOW"] = (MORNING + at).isoformat()
    env.pop("FEEDSVC_CONFIG", None)
    env.pop("FEEDSVC_STORAGE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "--config", str(config), "digest", "send"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def final_rows(store_url: str) -> dict[str, tuple[str, str]]:
    store = open_store(store_url)
    try:
        with store.read() as conn:
            query = select(subscribers.c.email, deliveries.c.status, deliveries.c.message_id).join(
                subscribers, subscribers.c.id == deliveries.c.subscriber_id
            )
            return {email: (status, mid) for email, status, mid in conn.execute(query)}
    finally:
        store.close()


IMMEDIATE_READERS = 3000
RATE = 100  # delivery.rate: 3,000 messages take 30 s to send
CAUGHT_UP = 60.0  # seconds after the last kill by which every row must be sent


def make_immediate_site(folder: Path, store_url: str, server: SmtpServer) -> Path:
    """3,000 immediate subscribers and two posts that went live an hour ago, on the real
    clock: the first `digest send` makes their digest, every run sends at ``RATE``."""
    config = write_config(folder, store_url, server, rate=RATE)
    now = datetime.now(UTC)
    posts = (
        make_post(
            "gwangalli-drone-show",
            title="광안리 드론쇼, 이번 주 토요일 저녁 8시",
            published=now - timedelta(hours=2),
            categories=("부산", "축제"),
        ),
        make_post(
            "subway-line-2",
            title="도시철도 2호선 첫차 시간 10분 앞당겨",
            published=now - timedelta(hours=3),
            categories=("교통",),
        ),
    )
    store = open_store(store_url)
    try:
        with store.write() as conn:
            for post in posts:
                store_post(conn, post)
            note_published(conn, [p.meta for p in posts], now - timedelta(hours=1))
    finally:
        store.close()
    add_readers(store_url, IMMEDIATE_READERS, "immediate", now - timedelta(days=30))
    return config


def open_rows(store_url: str) -> dict[int, tuple[str, str, int]]:
    """Rows not sent yet: id → (status, recipient, attempts)."""
    store = open_store(store_url)
    try:
        with store.read() as conn:
            query = (
                select(deliveries.c.id, deliveries.c.status, subscribers.c.email)
                .add_columns(deliveries.c.attempts)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.status != DeliveryStatus.SENT.value)
            )
            return {i: (status, email, tries) for i, status, email, tries in conn.execute(query)}
    finally:
        store.close()


def kill_while_sending(process: subprocess.Popen[bytes], server: SmtpServer, more: int) -> bool:
    """SIGKILL ``process`` once the server has received ``more`` further messages;
    False if it ended first (it found fewer rows due)."""
    target = len(server.recorder.received) + more
    deadline = time.monotonic() + 60
    while len(server.recorder.received) < target:
        if process.poll() is not None:
            process.communicate()
            return False
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    return True


def test_after_three_kill_9s_every_row_is_sent_within_a_minute_at_rate_100(
    tmp_path: Path, store_url: str, server: SmtpServer
) -> None:
    """A crash stalls only what was in flight: `digest send` to 3,000 immediate
    subscribers at ``delivery.rate: 100`` (the default lease), killed with SIGKILL three
    times at random moments, then run again and again: every row is sent within 60 s of
    the last kill, nothing is lost, and a message arrives twice only if it was on the
    wire (received, not yet recorded) when its sender died, with the same Message-ID."""
    config = make_immediate_site(tmp_path / "site", store_url, server)
    rng = random.Random(20240613)
    held: list[int] = []  # per kill: rows the killed process had claimed and not recorded
    on_the_wire = 0  # of those, the ones the server had received: each may arrive twice
    for _ in range(3):
        before = open_rows(store_url)
        process = sender(config, None)
        more = rng.randint(100, 600)
        assert kill_while_sending(process, server, more), (
            f"the sender ended before {more} more messages went out: the rest was still "
            f"held by the killed senders ({held} rows)"
        )
        time.sleep(0.3)  # what the process wrote before it died reaches the server
        received = set(server.recorder.by_recipient())
        # Its rows are those it claimed: new ones, or an earlier dead sender's claimed again.
        mine = [
            email
            for i, (status, email, tries) in open_rows(store_url).items()
            if status == DeliveryStatus.SENDING.value and before.get(i, ("", "", 0))[2] != tries
        ]
        held.append(len(mine))
        on_the_wire += sum(email in received for email in mine)
    last_kill = time.monotonic()
    runs: list[str] = []
    while open_rows(store_url) and time.monotonic() - last_kill < CAUGHT_UP:
        process = sender(config, None)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        runs.append(out.decode().strip().splitlines()[-1])
    caught_up = time.monotonic() - last_kill
    left = open_rows(store_url)
    assert not left and caught_up <= CAUGHT_UP, (
        f"{len(left)} rows not sent {caught_up:.0f} s after the last kill; the killed "
        f"senders held {held}; the runs since said: {runs}"
    )
    got = server.recorder.by_recipient()
    rows = final_rows(store_url)
    assert len(rows) == IMMEDIATE_READERS and set(got) == set(rows)
    duplicates = sum(len(ids) - 1 for ids in got.values())
    assert duplicates <= on_the_wire, (duplicates, on_the_wire, held)
    for email, ids in got.items():
        assert set(ids) == {rows[email][1]}  # every copy carries the row's Message-ID
    # What a killed sender held was bounded by its pace, not by how much was waiting.
    window = Pace(concurrency=4, rate=RATE).window
    assert max(held) <= window, (held, window)


@pytest.mark.parametrize("workers", [1, 2], ids=["one process", "two processes"])
def test_kill_9_three_times_loses_nothing_and_duplicates_only_in_flight(
    tmp_path: Path, store_url: str, server: SmtpServer, workers: int
) -> None:
    """With ``delivery.workers: 2`` the command's helper sees it killed and stops itself,
    releasing what it had not started: only the killed process's rows are in flight."""
    config = make_site(tmp_path / "site", store_url, server, workers)
    rng = random.Random(20240601)
    kills = 0
    in_flight_bound = 0
    for round_ in range(4):
        # Each restart is 10 minutes later: the dead sender's leases have expired.
        process = sender(config, timedelta(minutes=10 * round_))
        if round_ < 3:
            before = len(server.recorder.received)
            deadline = time.monotonic() + 60
            target = before + rng.randint(50, 1200)  # kill somewhere in the middle of sending
            while len(server.recorder.received) < target and process.poll() is None:
                assert time.monotonic() < deadline, "the sender made no progress"
                time.sleep(0.005)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
                # The killed process held at most its window (claimed, not recorded).
                in_flight_bound += Pace(concurrency=4, rate=100000 / workers).window
        out, err = process.communicate(timeout=120)
        if round_ == 3:
            assert process.returncode == 0, err.decode()
            assert b"0 failed" in out
    assert kills == 3
    got = server.recorder.by_recipient()
    rows = final_rows(store_url)
    assert len(rows) == SUBSCRIBERS
    assert {status for status, _ in rows.values()} == {DeliveryStatus.SENT.value}
    assert set(got) == set(rows)  # every recipient at least once
    duplicates = sum(len(ids) - 1 for ids in got.values())
    assert duplicates <= in_flight_bound
    for email, ids in got.items():
        assert set(ids) == {rows[email][1]}  # every copy carries the row's Message-ID


def test_two_senders_drain_one_digest_together_exactly_once(
    tmp_path: Path, store_url: str, server: SmtpServer
) -> None:
    config = make_site(tmp_path / "site", store_url, server)
    first = sender(config, timedelta(0))
    second = sender(config, timedelta(0))
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    for process, (_, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err.decode()
    got = server.recorder.by_recipient()
    assert len(got) == SUBSCRIBERS
    assert Counter(len(ids) for ids in got.values()) == {1: SUBSCRIBERS}
    sent_by = [
        int(out.decode().split(" sent,")[0].split()[-1].replace(",", "")) for out, _ in outputs
    ]
    assert sum(sent_by) == SUBSCRIBERS


def test_two_worker_processes_of_one_command_send_every_recipient_once(
    tmp_path: Path, store_url: str, server: SmtpServer
) -> None:
    """``delivery.workers: 2``: a helper process sends while the command renders, then
    both send; one count at the end, every recipient exactly once."""
    config = make_site(tmp_path / "site", store_url, server, workers=2)
    process = sender(config, timedelta(0))
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err.decode()
    assert f"{SUBSCRIBERS:,} sent, 0 retrying, 0 failed" in out.decode()
    got = server.recorder.by_recipient()
    assert len(got) == SUBSCRIBERS
    assert Counter(len(ids) for ids in got.values()) == {1: SUBSCRIBERS}
    assert {status for status, _ in final_rows(store_url).values()} == {DeliveryStatus.SENT.value}
