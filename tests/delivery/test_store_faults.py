"""The store refuses writes in the middle of a send (its SQLite files made immutable
with ``chattr +i``, while aiosmtpd keeps accepting): sending stops at the first outcome
that cannot be recorded, and /healthz says the store is not writable."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, deliver_pending
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.newsletter.jobs import Renderer, create_due_digests, render_pending
from feedsvc.newsletter.tokens import Tokens
from feedsvc.storage import Store, open_store
from feedsvc.storage.schema import deliveries
from tests.digest_helpers import SECRET, add_subscriber, digest_settings, sample_posts
from tests.smtp_server import Recorder, serving
from tests.storage.test_digests import MORNING, publish
from tests.web_helpers import make_site

PEOPLE = 300


class Immutable:
    """``chattr +i`` on the store's database and WAL (not the -shm, which SQLite maps
    into memory: writing to it would kill the process with SIGBUS): a real write fault
    that open connections hit too (file permissions do not stop root)."""

    def __init__(self, database: Path) -> None:
        self.files = [database, database.with_name(database.name + "-wal")]
        self.on = False

    def set(self, on: bool) -> None:
        flag = "+i" if on else "-i"
        subprocess.run(["chattr", flag, *map(str, self.files)], check=True, capture_output=True)
        self.on = on


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "상태.db"
    yield path
    for name in (path, path.with_name(path.name + "-wal")):  # never leave it undeletable
        if name.exists():
            subprocess.run(["chattr", "-i", str(name)], check=False, capture_output=True)


def _chattr_works(folder: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe = folder / "probe"
    probe.write_text("x")
    works = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return works


class FaultAt(Recorder):
    """Accepts every message; the ``at``-th first makes the store a failing disk: another
    connection holds its write lock for ``hold`` seconds (the sender's next write waits,
    as on a slow or stuck disk) while its files turn immutable (then the write fails)."""

    def __init__(self, fault: Immutable, at: int, hold: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fault = fault
        self.at = at
        self.hold = hold
        self.accepted_at_fault: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            strike = len(self.received) + 1 == self.at and not self.fault.on
        if strike:
            locker = sqlite3.connect(self.fault.files[0], check_same_thread=False)
            locker.isolation_level = None
            locker.execute("BEGIN IMMEDIATE")
            self.fault.set(True)
            threading.Timer(self.hold, locker.close).start()  # closing rolls back
        reply = await super().handle_DATA(server, session, envelope)
        if strike:
            self.accepted_at_fault = len(self.received)
        return reply


def prepare(store: Store, settings: Settings) -> None:
    with store.write() as conn:
        for n in range(PEOPLE):
            add_subscriber(conn, f"독자{n:03d}@example.kr", name=f"독자 {n}")
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, Renderer(settings, Tokens(SECRET)), MORNING)


def options(host: str, port: int) -> SmtpOptions:
    return SmtpOptions(
        host=host,
        port=port,
        tls="none",
        username=None,
        password=None,
        timeout=2.0,
        envelope_from="news@example.kr",
        local_hostname="example.kr",
    )


def test_a_store_that_refuses_writes_mid_send_stops_the_batch_and_nothing_goes_twice(
    tmp_path: Path, database: Path
) -> None:
    """The store stalls, then refuses writes, after the 40th message: at most two steps of
    unrecorded outcomes and the messages on the wire go out after that (not every row
    claimed); once it is writable again every subscriber gets the digest, and only the
    messages whose outcome was lost arrive twice, with the same Message-ID."""
    if not _chattr_works(tmp_path):
        pytest.skip("chattr +i is not available here (needs root and CAP_LINUX_IMMUTABLE)")
    url = f"sqlite:///{database}"
    settings = digest_settings(tmp_path, storage={"url": url})
    store = open_store(url)
    concurrency = 4
    pace = Pace(concurrency=concurrency, rate=1000, lease=timedelta(seconds=30))
    step = pace.window // 4
    try:
        prepare(store, settings)
        fault = Immutable(database)
        for server in serving(FaultAt(fault, 40, hold=1.5, pipelining=True)):
            recorder = server.recorder
            assert isinstance(recorder, FaultAt)
            where = options(server.host, server.port)
            with pytest.raises(OperationalError, match=r"disk I/O error|readonly"):
                asyncio.run(deliver_pending(store, where, FixedClock(MORNING), pace))
            assert recorder.accepted_at_fault == 40
            accepted = len(recorder.received)
            assert accepted - 40 <= 2 * step + 2 * concurrency < pace.window
            fault.set(False)
            store.close()
            store = open_store(url)
            with store.read() as conn:
                recorded = conn.execute(
                    select(func.count()).where(deliveries.c.status == "sent")
                ).scalar_one()
            later = FixedClock(MORNING + timedelta(minutes=1))  # past every lease
            asyncio.run(deliver_pending(store, where, later, pace))
            got = recorder.by_recipient()
            assert len(got) == PEOPLE  # everyone, at last
            assert all(len(set(ids)) == 1 for ids in got.values())  # same Message-ID
            twice = sum(len(ids) - 1 for ids in got.values())
            assert twice <= accepted - recorded
            with store.read() as conn:
                statuses = set(conn.execute(select(deliveries.c.status)).scalars())
            assert statuses == {"sent"}
    finally:
        store.close()


def test_healthz_is_503_while_the_store_takes_no_writes_and_200_after(
    tmp_path: Path, database: Path
) -> None:
    """A store that answers reads but refuses writes is not healthy: a sender could not
    record what it sends. /healthz (through httpx's ASGI transport) says so, then
    recovers by itself once the files are writable again."""
    if not _chattr_works(tmp_path):
        pytest.skip("chattr +i is not available here (needs root and CAP_LINUX_IMMUTABLE)")
    site = make_site(tmp_path / "사이트", f"sqlite:///{database}")
    try:
        assert site.get("/healthz").status_code == 200
        fault = Immutable(database)
        fault.set(True)
        try:
            response = site.get("/healthz")
            assert response.status_code == 503
            assert response.json() == {"status": "error", "store": "not writable"}
        finally:
            fault.set(False)
        response = site.get("/healthz")
        assert response.status_code == 200 and response.json()["status"] == "ok"
    finally:
        site.store.close()
