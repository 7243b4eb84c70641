"""Several `feedsvc run` on one PostgreSQL: one leads (builds, digests), all send."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from feedsvc.daemon.leadership import AdvisoryLock, SoleInstance, leadership_for
from feedsvc.storage import Store, open_store
from feedsvc.storage.engine import normalise_url
from tests.conftest import PG_ENV
from tests.daemon.test_scheduler import write_post
from tests.digest_helpers import add_subscriber
from tests.scenarios.test_daemon_e2e import Daemon, messages_to, wait_for
from tests.smtp_server import SmtpServer, free_port, serving


def pg_only(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        pytest.skip("leadership is shared only on PostgreSQL; SQLite has one daemon")


def test_on_sqlite_the_only_daemon_leads(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert isinstance(leadership_for(store), SoleInstance)
        assert leadership_for(store).try_lead()
    finally:
        store.close()


def test_one_instance_leads_until_it_lets_go(store_url: str) -> None:
    pg_only(store_url)
    first, second = open_store(store_url), open_store(store_url)
    a, b = AdvisoryLock(first), AdvisoryLock(second)
    try:
        assert a.try_lead() and a.try_lead()  # asking again keeps it
        assert not b.try_lead()
        a.release()
        assert b.try_lead()
        assert not a.try_lead()
    finally:
        a.release()
        b.release()
        first.close()
        second.close()


def test_a_leader_whose_session_dies_is_replaced(store_url: str) -> None:
    """The leader's database session is killed (as by a crash or a lost network): the
    lock goes with it, the leader notices at its next check, another instance leads."""
    pg_only(store_url)
    first, second = open_store(store_url), open_store(store_url)
    a, b = AdvisoryLock(first), AdvisoryLock(second)
    admin = create_engine(normalise_url(os.environ[PG_ENV]))
    try:
        assert a.try_lead()
        assert a._conn is not None
        pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        a._conn.commit()
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert not a.try_lead()  # says so instead of believing it still leads
        assert b.try_lead()
    finally:
        a.release()
        b.release()
        first.close()
        second.close()
        admin.dispose()


def test_sites_in_different_schemas_lead_separately(store_url: str, tmp_path: Path) -> None:
    pg_only(store_url)
    base = os.environ[PG_ENV]
    other = f"t_other_{os.getpid()}"
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {other}"))
    sep = "&" if "?" in base else "?"
    stores = [open_store(store_url), open_store(f"{base}{sep}options=-csearch_path%3D{other}")]
    locks = [AdvisoryLock(s) for s in stores]
    try:
        assert all(lock.try_lead() for lock in locks)
    finally:
        for lock, store in zip(locks, stores, strict=True):
            lock.release()
            store.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {other} CASCADE"))
        admin.dispose()


# --- two daemons, one store --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def daemon_site(root: Path, shared: Path, store_url: str, port: int, server: SmtpServer) -> None:
    """A daemon's own config; the content and feed folders are shared (one disk)."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        # One site: the same public address whichever instance serves it (post ids are
        # permalinks; another site.url would make other posts).
        "site": {"title": "부산 시정 소식", "url": "https://news.example.kr/", "language": "ko"},
        "content": {"dir": str(shared / "content")},
        "feeds": {"output_dir": str(shared / "public")},
        "storage": {"url": store_url},
        "server": {"host": "127.0.0.1", "port": port, "public_url": "https://news.example.kr/"},
        "digest": {"from": "부산 시정 소식 <news@example.kr>"},
        "delivery": {
            "backend": "smtp",
            "shutdown_grace": "5s",
            "smtp": {"host": server.host, "port": server.port, "tls": "none", "timeout": "5s"},
        },
    }
    (root / "config.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


@pytest.mark.slow
def test_two_daemons_share_a_store_one_builds_both_send_the_other_takes_over(
    store_url: str, tmp_path: Path, server: SmtpServer
) -> None:
    pg_only(store_url)
    shared = tmp_path / "one-disk"
    write_post(shared / "content", "haeundae.md", "해운대 바다축제 개막", "2024-05-31")
    readers = [f"reader{i}@example.kr" for i in range(40)]
    store: Store = open_store(store_url)
    with store.write() as conn:
        for reader in readers:
            # Joined now: the old post is not news to them, the new ones are.
            add_subscriber(conn, reader, frequency="immediate", joined=datetime.now(UTC))
    store.close()
    daemons = []
    for name in ("가", "나"):
        port = free_port()
        daemon_site(tmp_path / name, shared, store_url, port, server)
        daemons.append(Daemon(tmp_path / name, port))
    first, second = daemons
    try:
        first.start()
        wait_for(lambda: "serving http://127.0.0.1:" in first.logs(), "the first daemon")
        second.start()
        wait_for(lambda: "another instance leads" in second.logs(), "the second to follow")

        time.sleep(1.1)  # dates have seconds: the post is after the readers joined
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        write_post(shared / "content", "drone.md", "광안리 드론쇼 일정 안내", stamp)
        for daemon in daemons:  # the leader built; the follower serves the same files
            wait_for(
                lambda d=daemon: "광안리 드론쇼" in httpx.get(f"{d.base}/feed.xml").text,  # type: ignore[misc]
                "the new post in both daemons' feeds",
            )
        wait_for(lambda: all(len(messages_to(server, r)) == 1 for r in readers), "every digest")

        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)  # the leader dies
        first.process.wait()
        wait_for(lambda: "this instance leads now" in second.logs(), "a new leader", 30)
        write_post(shared / "content", "expo.md", "스마트시티 박람회 참가 안내", stamp)
        wait_for(
            lambda: "스마트시티 박람회" in httpx.get(f"{second.base}/feed.xml").text,
            "the new leader to build",
        )
        wait_for(
            lambda: all(len(messages_to(server, r)) == 2 for r in readers), "the second digests"
        )
        time.sleep(1)
        assert all(len(messages_to(server, r)) == 2 for r in readers)  # none twice
        assert second.stop() == 0, second.logs()
        assert "Traceback" not in second.logs()
    finally:
        for daemon in daemons:
            daemon.kill()
