"""The service around the jobs: the lock against a second daemon, start-up checks, logs,
and a whole service in this process stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from feedsvc.clock import FixedClock
from feedsvc.daemon.service import (
    DaemonLock,
    JsonFormatter,
    Listen,
    Service,
    describe_store,
    lock_path,
    smtp_reachable,
)
from feedsvc.errors import DaemonLocked
from feedsvc.storage import open_store
from tests.conftest import make_settings
from tests.daemon.test_scheduler import BUILT, write_post
from tests.smtp_server import free_port


def test_a_second_daemon_on_the_same_store_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    path = lock_path(settings)
    assert path == tmp_path / "state.db.run-lock"
    first = DaemonLock(path)
    with first.held(), pytest.raises(DaemonLocked, match="already running on this store"):
        DaemonLock(path).acquire()
    with DaemonLock(path).held():  # released: the next start takes it
        pass


def test_json_logs_are_one_object_per_line_with_korean_kept() -> None:
    record = logging.LogRecord(
        "feedsvc.scheduler", logging.INFO, __file__, 1, "빌드 완료: %d편", (3,), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line and "빌드 완료" in line
    entry = json.loads(line)
    assert entry["message"] == "빌드 완료: 3편"
    assert entry["level"] == "info" and entry["logger"] == "feedsvc.scheduler"


def test_the_store_is_described_without_its_password() -> None:
    assert describe_store("postgresql://feed:비밀@db.example.kr/feedsvc") == (
        "postgresql://feed:***@db.example.kr/feedsvc"
    )
    assert describe_store("sqlite:///state.db") == "sqlite:///state.db"


def test_an_unreachable_smtp_server_is_a_warning_naming_it(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = make_settings(
        tmp_path, delivery={"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": port}}
    )
    problem = smtp_reachable(settings)
    assert problem is not None and f"127.0.0.1:{port}" in problem


def test_the_service_serves_builds_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    write_post(tmp_path / "content", "haeundae.md", "해운대 바다축제 개막", "2024-05-31")
    settings = make_settings(tmp_path, digest={"from": "부산 시정 소식 <news@example.kr>"})
    store = open_store(settings.storage_url)
    service = Service(settings, store, FixedClock(BUILT), Listen("127.0.0.1", 0))

    async def scenario() -> int:
        running = asyncio.create_task(service.run())
        while not service.server.started:
            assert not running.done(), running.result()
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{service.server_port()}"
        async with httpx.AsyncClient(base_url=base) as client:
            feed = await client.get("/feed.xml")
            assert feed.status_code == 200 and "해운대 바다축제 개막" in feed.text
            health = await client.get("/healthz")
            assert health.status_code == 200
        os.kill(os.getpid(), signal.SIGTERM)
        return await asyncio.wait_for(running, 10)

    try:
        assert asyncio.run(scenario()) == 0
    finally:
        store.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_broken_template_stops_the_start_naming_file_and_line(tmp_path: Path) -> None:
    from feedsvc.daemon.service import check_templates
    from feedsvc.errors import ConfigError

    own = tmp_path / "templates"
    own.mkdir()
    (own / "digest.txt.j2").write_text("안녕하세요 {{ name \n{% endif %}\n", encoding="utf-8")
    settings = make_settings(tmp_path, templates={"dir": "templates"})
    with pytest.raises(ConfigError, match=r"digest\.txt\.j2, line"):
        check_templates(settings)
    assert check_templates(make_settings(tmp_path)) >= 4


def test_with_port_0_and_no_public_url_links_name_the_port_the_system_chose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Links follow the address served, even a port only known once bound; start-up says
    which public URL it uses and warns that a loopback one works on this machine only."""
    from feedsvc.config import settings_from_mapping

    write_post(tmp_path / "content", "haeundae.md", "해운대 바다축제 개막", "2024-05-31")
    raw = {
        "site": {"title": "부산 시정 소식", "timezone": "Asia/Seoul"},
        "storage": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "digest": {"from": "부산 시정 소식 <news@example.kr>"},
    }
    settings = settings_from_mapping(raw, base_dir=tmp_path)
    store = open_store(settings.storage_url)
    caplog.set_level(logging.INFO)
    service = Service(settings, store, FixedClock(BUILT), Listen("127.0.0.1", 0))
    port = service.listen.port
    assert port != 0 and service.settings.server.public_url == f"http://127.0.0.1:{port}/"
    assert service.settings.site.url == f"http://127.0.0.1:{port}/"

    async def scenario() -> str:
        running = asyncio.create_task(service.run())
        while not service.server.started:
            assert not running.done(), running.result()
            await asyncio.sleep(0.01)
        assert service.server_port() == port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            answer = await client.post("/subscribe", json={"email": "minji@example.kr"})
            assert answer.status_code == 202
            outbox = tmp_path / "outbox"
            while not list(outbox.glob("*.eml")) if outbox.is_dir() else True:
                await asyncio.sleep(0.02)
            home = await client.get("/")
            post = re.search(r'<a class="title" href="([^"]+)"', home.text)
            assert post is not None and post.group(1).startswith(f"http://127.0.0.1:{port}/")
            assert (await client.get(post.group(1))).status_code == 200
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(running, 10)
        (message,) = outbox.glob("*.eml")
        return message.read_text(encoding="utf-8", errors="replace")

    try:
        text = asyncio.run(scenario())
    finally:
        store.close()
    assert f"http://127.0.0.1:{port}/confirm/" in text.replace("=\n", "")
    assert f"public URL http://127.0.0.1:{port}/ (the served address)" in caplog.text
    assert "is a loopback address: links in email" in caplog.text
