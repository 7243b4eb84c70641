"""Crash safety and shared work, with real processes: `python -m feedsvc digest send`
against an aiosmtpd server in this process, killed with SIGKILL at random moments and
started again; and two senders draining one digest together."""

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
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from feedsvc.digests import DeliveryStatus
from feedsvc.storage import open_store
from feedsvc.storage.schema import deliveries, subscribers
from tests.digest_helpers import sample_posts, site_mapping, store_post
from tests.smtp_server import SmtpServer, serving
from tests.test_storage_digests import ANNOUNCED, MORNING

pytestmark = pytest.mark.slow

SUBSCRIBERS = 5000
SURNAMES = "김이박최정강조윤장임"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def make_site(folder: Path, store_url: str, server: SmtpServer, workers: int = 1) -> Path:
    """config.yaml for SMTP to ``server`` (``delivery.workers`` processes); posts and
    5,000 subscribers in the store."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = site_mapping(
        storage={"url": store_url},
        delivery={
            "backend": "smtp",
            "concurrency": 4,
            "rate": 100000,
            "workers": workers,
            "smtp": {"host": server.host, "port": server.port, "tls": "none", "timeout": "5s"},
        },
    )
    config = folder / "config.yaml"
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    store = open_store(store_url)
    try:
        with store.write() as conn:
            for post in sample_posts():
                store_post(conn, post)
            from feedsvc.storage.announcements import note_published

            note_published(conn, [p.meta for p in sample_posts()], ANNOUNCED)
            joined = MORNING - timedelta(days=30)
            conn.execute(
                insert(subscribers),
                [
                    {
                        "email": f"reader{i:05d}@example.kr",
                        "name": f"{SURNAMES[i % 10]}독자{i}",
                        "status": "active",
                        "frequency": "daily",
                        "categories": "[]",
                        "timezone": None,
                        "created": joined,
                        "confirmed": joined,
                        "consent_source": "web",
                    }
                    for i in range(SUBSCRIBERS)
                ],
            )
    finally:
        store.close()
    return config


def sender(config: Path, at: timedelta) -> subprocess.Popen[bytes]:
    """A `digest send` process whose clock reads MORNING + ``at``."""
    env = {
        **os.environ,
        "FEEDSVC_NOW": (MORNING + at).isoformat(),
        "FEEDSVC_SECRET_KEY": "테스트-비밀-키-kill-0123456789abcdef",
    }
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
        # Each restart is 10 minutes later: the dead sender's leases (5 min) have expired.
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
                # At most one batch is claimed beyond what was recorded as done.
                in_flight_bound += 4 + 2 * 500
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
    sent_by = [int(out.decode().split(" sent,")[0].split()[-1]) for out, _ in outputs]
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
    assert f"{SUBSCRIBERS} sent, 0 retrying, 0 failed" in out.decode()
    got = server.recorder.by_recipient()
    assert len(got) == SUBSCRIBERS
    assert Counter(len(ids) for ids in got.values()) == {1: SUBSCRIBERS}
    assert {status for status, _ in final_rows(store_url).values()} == {DeliveryStatus.SENT.value}
