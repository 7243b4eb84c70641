"""`feedsvc run` as a real process, with aiosmtpd as its SMTP server: sign up over HTTP,
confirm from the email, drop a post into content/, see it in /feed.xml and in an immediate
digest, unsubscribe with the one-click POST; SIGTERM → exit 0 → restart → nothing re-sent."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.daemon.test_scheduler import write_post
from tests.smtp_server import SmtpServer, free_port, serving

pytestmark = pytest.mark.slow

READER = "minji@example.kr"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def messages_to(server: SmtpServer, address: str) -> list[EmailMessage]:
    with server.recorder.lock:
        raw = [r.data for r in server.recorder.received if r.recipient == address]
    found: list[EmailMessage] = []
    for data in raw:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


class Daemon:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.base = f"http://127.0.0.1:{port}"
        self.log = root / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "FEEDSVC_SECRET_KEY": "종단-테스트-비밀-키-0123456789abcdef"}
        env.pop("FEEDSVC_NOW", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "feedsvc",
                    "--config",
                    str(self.root / "config.yaml"),
                    "run",
                ],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.logs()
            try:
                return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "the daemon to answer /healthz")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def make_site(root: Path, port: int, server: SmtpServer) -> None:
    write_post(root / "content", "haeundae.md", "해운대 바다축제 개막", "2024-05-31")
    config = {
        "site": {"title": "부산 시정 소식", "url": f"http://127.0.0.1:{port}/", "language": "ko"},
        "storage": {"url": f"sqlite:///{root / 'state.db'}"},
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}/"},
        "digest": {"from": "부산 시정 소식 <news@example.kr>"},
        "delivery": {
            "backend": "smtp",
            "shutdown_grace": "5s",
            "smtp": {"host": server.host, "port": server.port, "tls": "none", "timeout": "5s"},
        },
    }
    (root / "config.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


def test_sign_up_publish_digest_unsubscribe_and_restart(tmp_path: Path, server: SmtpServer) -> None:
    port = free_port()
    make_site(tmp_path, port, server)
    daemon = Daemon(tmp_path, port)
    try:
        daemon.start()
        wait_for(lambda: "serving http://127.0.0.1:" in daemon.logs(), "the start-up lines")
        client = httpx.Client(base_url=daemon.base, timeout=5)
        answer = client.post("/subscribe", json={"email": READER, "frequency": "immediate"})
        assert answer.status_code == 202

        wait_for(lambda: len(messages_to(server, READER)) == 1, "the confirmation email")
        (confirmation,) = messages_to(server, READER)
        text = confirmation.get_body(("plain",))
        assert text is not None
        link = re.search(rf"{re.escape(daemon.base)}(/confirm/\S+)", text.get_content())
        assert link is not None, text.get_content()
        assert client.post(link.group(1)).status_code == 200

        # Digests carry posts published after the reader joined; the date has seconds.
        time.sleep(1.1)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        write_post(tmp_path / "content", "drone.md", "광안리 드론쇼 일정 안내", stamp)
        wait_for(lambda: "광안리 드론쇼 일정 안내" in client.get("/feed.xml").text, "the feed")
        wait_for(lambda: len(messages_to(server, READER)) == 2, "the immediate digest")
        digest = messages_to(server, READER)[1]
        body = digest.get_body(("plain",))
        assert body is not None and "광안리 드론쇼 일정 안내" in body.get_content()

        unsubscribe = re.search(r"<(http[^>]+/unsubscribe/[^>]+)>", str(digest["List-Unsubscribe"]))
        assert unsubscribe is not None
        done = client.post(
            unsubscribe.group(1).removeprefix(daemon.base),
            data={"List-Unsubscribe": "One-Click"},
        )
        assert done.status_code == 200
        client.close()
        assert daemon.stop() == 0, daemon.logs()

        sent_before = len(server.recorder.received)
        daemon.start()
        time.sleep(2)  # the catch-up cycle runs at start
        assert daemon.stop() == 0, daemon.logs()
        assert len(server.recorder.received) == sent_before
        assert "Traceback" not in daemon.logs()
    finally:
        daemon.kill()


def stalled_site(tmp_path: Path, server: SmtpServer, grace: str) -> Daemon:
    """A daemon whose one digest is stuck in the SMTP transaction (the server's reply to
    DATA comes after 20 s)."""
    from feedsvc.storage import open_store
    from tests.digest_helpers import add_subscriber

    port = free_port()
    make_site(tmp_path, port, server)
    config = json.loads((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    config["delivery"]["shutdown_grace"] = grace
    config["delivery"]["smtp"]["timeout"] = "60s"
    (tmp_path / "config.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    store = open_store(config["storage"]["url"])
    with store.write() as conn:
        add_subscriber(conn, READER, frequency="immediate", joined=datetime(2024, 1, 1, tzinfo=UTC))
    store.close()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    write_post(tmp_path / "content", "drone.md", "광안리 드론쇼 일정 안내", stamp)
    server.recorder.script[READER] = ["stall"]
    server.recorder.stall_seconds = 20
    daemon = Daemon(tmp_path, port)
    daemon.start()
    wait_for(lambda: len(messages_to(server, READER)) == 1, "the digest to reach DATA")
    return daemon


def test_sigterm_waits_for_smtp_in_flight_at_most_the_grace_then_exits_0(
    tmp_path: Path, server: SmtpServer
) -> None:
    daemon = stalled_site(tmp_path, server, grace="1s")
    try:
        started = time.monotonic()
        assert daemon.stop() == 0, daemon.logs()
        assert time.monotonic() - started < 10
        assert "did not finish within delivery.shutdown_grace" in daemon.logs()
    finally:
        daemon.kill()


def test_a_second_signal_exits_at_once(tmp_path: Path, server: SmtpServer) -> None:
    daemon = stalled_site(tmp_path, server, grace="60s")
    try:
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in daemon.logs(), "the first signal to be taken")
        started = time.monotonic()
        daemon.process.send_signal(signal.SIGINT)
        assert daemon.process.wait(10) == 1
        assert time.monotonic() - started < 5
        assert "second signal: exiting now" in daemon.logs()
    finally:
        daemon.kill()
