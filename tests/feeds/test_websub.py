"""WebSub publish pings against a real HTTP server on loopback."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feedsvc.build.builder import Builder
from feedsvc.clock import FixedClock
from feedsvc.feeds.websub import announce, feed_urls
from feedsvc.models import Severity
from feedsvc.storage import open_store
from tests.build.test_builder import NOW, post
from tests.conftest import make_settings


class Hub:
    """A tiny hub: records each publish ping's form fields, answers ``status``."""

    def __init__(self) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.status = 204
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hub.pings.append(urllib.parse.parse_qs(self.rfile.read(length).decode()))
                self.send_response(hub.status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    running = Hub()
    yield running
    running.close()


def test_ping_sends_publish_mode_and_every_url(hub: Hub) -> None:
    urls = feed_urls("https://x.kr/", ["feed.xml", "categories/스마트시티/atom.xml"])
    assert announce(hub.url, urls) == []
    assert hub.pings == [
        {
            "hub.mode": ["publish"],
            "hub.url": [
                "https://x.kr/categories/%EC%8A%A4%EB%A7%88%ED%8A%B8%EC%8B%9C%ED%8B%B0/atom.xml",
                "https://x.kr/feed.xml",
            ],
        }
    ]


def test_hub_error_is_a_warning(hub: Hub) -> None:
    hub.status = 500
    [problem] = announce(hub.url, ["https://x.kr/feed.xml"])
    assert problem.severity is Severity.WARNING
    assert "HTTP 500" in problem.reason


def test_unreachable_hub_is_a_warning() -> None:
    [problem] = announce("http://127.0.0.1:9/hub", ["https://x.kr/feed.xml"], timeout=2)
    assert problem.severity is Severity.WARNING
    assert "feeds.websub_hub" in problem.reason


def test_build_pings_the_hub_only_when_feeds_change(tmp_path: Path, hub: Hub) -> None:
    settings = make_settings(tmp_path, feeds={"websub_hub": hub.url, "per_category": False})
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "a.md").write_text(post("가"), encoding="utf-8")
    builder = Builder(settings, open_store(settings.storage_url), FixedClock(NOW), workers=1)
    first = builder.build()
    builder.build()
    assert first.warnings == 0
    assert len(hub.pings) == 1
    assert sorted(hub.pings[0]["hub.url"]) == [
        "https://news.example.kr/atom.xml",
        "https://news.example.kr/feed.json",
        "https://news.example.kr/feed.xml",
    ]
    (tmp_path / "content" / "b.md").write_text(post("나", date="2024-01-03"), encoding="utf-8")
    builder.build()
    assert len(hub.pings) == 2
