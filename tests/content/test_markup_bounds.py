"""Posts whose HTML nests too deep or holds too many elements are refused before the
sanitiser (nh3) or the CSS inliner (css-inline) sees them: one linear pre-scan, a
problem naming the file and line, and a daemon that stays up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from feedsvc.content.markup_bounds import MAX_DEPTH, MAX_ELEMENTS, line_of_element, measure
from tests.conftest import run_feedsvc
from tests.smtp_server import SmtpServer, serving

NESTED = "<div>" * 15_000 + "깊은 중첩"


def nested_post(content: Path, name: str = "2024-05-01-중첩.html") -> Path:
    content.mkdir(parents=True, exist_ok=True)
    path = content / name
    path.write_text(f"---\ntitle: 중첩된 글\n---\n<p>소개</p>\n{NESTED}\n", encoding="utf-8")
    return path


def test_real_posts_pass_the_pre_scan() -> None:
    paragraphs = "".join(f"<p>부산 {i}<ul><li>하나<li>둘</ul>" for i in range(2_000))
    table = "<table>" + "<tr><td>가<td>나" * 3_000 + "</table>"
    assert measure(paragraphs) is None
    assert measure(table) is None
    assert measure("<div>" * (MAX_DEPTH - 3) + "x") is None  # html and body count too


def test_deep_nesting_and_too_many_elements_are_found_with_their_line() -> None:
    source = "첫 줄\n\n" + "<section>\n" * 400
    excess = measure(source)
    assert excess is not None and f"deeper than {MAX_DEPTH}" in str(excess.reason)
    assert "close your tags" in str(excess.reason)
    line = line_of_element(source, excess.element)
    assert line is not None and 200 < line < 270
    flat = "<p>가</p>" * (MAX_ELEMENTS + 1)
    many = measure(flat)
    assert many is not None and "more than 100,000 elements" in str(many.reason)


def test_pre_scan_is_linear_on_100k_nested_divs() -> None:
    started = time.monotonic()
    assert measure("<div>" * 100_000) is not None
    assert time.monotonic() - started < 2


def test_build_and_check_report_the_nested_post_by_file_and_line(tmp_path: Path) -> None:
    nested_post(tmp_path / "content")
    (tmp_path / "config.yaml").write_text(
        'site: {title: "부산", url: "https://news.example.kr/", language: ko}\n'
        f'storage: {{url: "sqlite:///{tmp_path / "state.db"}"}}\n',
        encoding="utf-8",
    )
    built = run_feedsvc("--config", str(tmp_path / "config.yaml"), "build")
    assert built.returncode == 1, built.stderr
    assert "2024-05-01-중첩.html:5: error: the HTML nests deeper than 256" in built.stderr
    assert "중첩된 글" not in (tmp_path / "public" / "feed.xml").read_text("utf-8")
    checked = run_feedsvc("--config", str(tmp_path / "config.yaml"), "check")
    assert checked.returncode == 1
    assert "2024-05-01-중첩.html:5: error: the HTML nests deeper" in checked.stderr


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


@pytest.mark.slow
def test_daemon_survives_a_nested_html_post_and_names_it(
    tmp_path: Path, server: SmtpServer
) -> None:
    """Before: css-inline overflowed its stack rendering the digest (exit 139, no log
    line naming the post), again on every restart."""
    from feedsvc.storage import open_store
    from tests.daemon.test_scheduler import write_post
    from tests.digest_helpers import add_subscriber
    from tests.scenarios.test_daemon_e2e import READER, Daemon, make_site, messages_to, wait_for
    from tests.smtp_server import free_port

    port = free_port()
    make_site(tmp_path, port, server)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with store.write() as conn:
        add_subscriber(conn, READER, frequency="immediate", joined=datetime(2024, 1, 1, tzinfo=UTC))
    store.close()
    daemon = Daemon(tmp_path, port)
    try:
        daemon.start()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        path = tmp_path / "content" / "중첩.html"
        path.write_text(f"---\ntitle: 중첩된 글\ndate: {stamp}\n---\n{NESTED}\n", "utf-8")

        def named() -> bool:
            assert daemon.process is not None
            assert daemon.process.poll() is None, (daemon.process.returncode, daemon.logs())
            return "중첩.html" in daemon.logs()

        wait_for(named, "a log line naming the post (the daemon alive)", 30)
        # A good post after it still goes out: the daemon kept working.
        write_post(tmp_path / "content", "drone.md", "광안리 드론쇼 일정 안내", stamp)
        wait_for(lambda: len(messages_to(server, READER)) == 2, "both posts' digests", 30)
        assert daemon.process is not None and daemon.process.poll() is None, daemon.logs()
        assert httpx.get(f"{daemon.base}/healthz", timeout=5).status_code == 200
        assert "nests deeper than 256" in daemon.logs()
        assert daemon.stop() == 0, daemon.logs()
    finally:
        daemon.kill()
