"""The app behind a real uvicorn on a free loopback port: feeds, conditional GET, gzip,
the sign-up and one-click unsubscribe over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from feedsvc.newsletter.tokens import Purpose
from tests.web_helpers import WebSite, make_site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[WebSite, str]]:
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'served.db'}")
    port = free_port()
    config = uvicorn.Config(
        site.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield site, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        site.store.close()


def test_a_real_uvicorn_serves_feeds_and_the_subscription_flow(served: tuple[WebSite, str]) -> None:
    site, base = served
    with httpx.Client(base_url=base) as client:
        feed = client.get("/feed.xml", headers={"Accept-Encoding": "gzip"})
        assert feed.status_code == 200
        assert feed.headers["content-encoding"] == "gzip"
        assert "해운대 바다축제 개막" in feed.text
        again = client.get("/feed.xml", headers={"If-None-Match": feed.headers["etag"]})
        assert again.status_code == 304
        head = client.head("/feed.json")
        assert head.status_code == 200 and head.content == b""
        form = client.get("/")
        assert "구독 신청" in form.text
        answer = client.post("/subscribe", json={"email": "uvicorn@example.kr"})
        assert answer.status_code == 202
        deadline = time.monotonic() + 5
        while not site.messages():  # sent after the answer, by a background task
            assert time.monotonic() < deadline, "no confirmation email in the outbox"
            time.sleep(0.02)
        (message,) = site.messages()
        token = site.tokens.make(Purpose.UNSUBSCRIBE, 1, "uvicorn@example.kr")
        done = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "구독이 해지되었습니다" in done.text
        assert "구독" in str(message["Subject"])
        big = client.post(
            "/subscribe",
            content=b"{" + b" " * 70_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
