"""The site owner's first hour, as a real process: `feedsvc init`, then `feedsvc run --port`
on a port that is not the default, with nothing edited. The confirm link in the outbox
names the port served, the home page's post links and the digest's links answer 200 (the
daemon serves a page per post), and the log says what subscribers did with their
addresses masked."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from feedsvc.cli.main import main
from tests.smtp_server import free_port

pytestmark = pytest.mark.slow

READER = "minji@example.kr"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    found: list[EmailMessage] = []
    paths = sorted(outbox.glob("**/*.eml"), key=lambda p: p.stat().st_mtime_ns)
    for path in paths if outbox.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def links_in(message: EmailMessage) -> list[str]:
    part = message.get_body(("html",))
    assert part is not None
    return re.findall(r'href="(http[^"]+)"', str(part.get_content()))


def test_init_then_run_on_another_port_gives_links_that_work(tmp_path: Path) -> None:
    site = tmp_path / "데모"
    result = CliRunner().invoke(main, ["init", str(site)])
    assert result.exit_code == 0, result.output
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "run", "--port", str(port)],
            cwd=site,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def logs() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")

    def healthy() -> bool:
        assert process.poll() is None, logs()
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, "the daemon to answer /healthz")
        wait_for(lambda: "public URL" in logs(), "the start-up lines")
        assert f"public URL {base}/ (the served address)" in logs()
        assert "is a loopback address: links in email" in logs()
        with httpx.Client(base_url=base, timeout=5) as client:
            home = client.get("/")
            assert home.status_code == 200
            post_links = re.findall(r'<a class="title" href="([^"]+)"', home.text)
            assert post_links and all(link.startswith(base + "/") for link in post_links)
            for link in post_links:
                page = client.get(link)
                assert page.status_code == 200, link
                assert 'href="/#subscribe"' in page.text

            answer = client.post("/subscribe", json={"email": READER, "frequency": "immediate"})
            assert answer.status_code == 202
            outbox = site / "outbox"
            wait_for(lambda: len(outbox_messages(outbox)) == 1, "the confirmation email")
            (confirmation,) = outbox_messages(outbox)
            link = re.search(r"(http://\S+/confirm/\S+)", text_of(confirmation))
            assert link is not None, text_of(confirmation)
            assert link.group(1).startswith(f"{base}/confirm/")
            assert client.post(link.group(1)).status_code == 200
            wait_for(lambda: "confirmed: m***@example.kr" in logs(), "the confirmation's log line")
            assert "sign-up: m***@example.kr (confirmation email queued)" in logs()
            assert READER not in logs()

            time.sleep(1.1)  # the post is dated after the reader joined
            moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            (site / "content" / "2099-busan.md").write_text(
                f'---\ntitle: "광안리 드론쇼 일정"\ndate: {moment}\n---\n\n'
                "광안리 해변에서 드론쇼가 열립니다.\n",
                encoding="utf-8",
            )
            wait_for(lambda: len(outbox_messages(outbox)) == 2, "the digest", timeout=40)
            digest = outbox_messages(outbox)[-1]
            links = links_in(digest)
            assert any("/unsubscribe/" in href for href in links)
            for href in links:
                answer = client.get(href)
                assert answer.status_code == 200, href
            assert "List-Unsubscribe" in digest
            assert "mailto:" not in str(digest["List-Unsubscribe"])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
