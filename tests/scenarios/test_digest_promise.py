"""The newsletter promise end to end: every post that goes live after you subscribed
reaches you once, in your cadence, whatever date its author gave it; a back-dated post
is reported, not mailed, until released; a duplicate the build refuses is never mailed.

Through real processes: `feedsvc run` (the daemon) and `python -m feedsvc …` commands,
with aiosmtpd as the SMTP server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from feedsvc.config import DigestSchedule
from feedsvc.models import Frequency
from feedsvc.newsletter.digests import next_send
from tests.scenarios.test_daemon_e2e import Daemon, make_site, messages_to, wait_for
from tests.smtp_server import SmtpServer, free_port, serving

SEOUL = ZoneInfo("Asia/Seoul")
NOW_READER = "immediate@example.kr"
DAILY_READER = "daily@example.kr"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving()


def feedsvc(root: Path, *args: str, now: datetime | None = None, status: int = 0) -> str:
    """``python -m feedsvc ARGS`` for the site at ``root`` (its clock at ``now``), which
    must exit with ``status``."""
    env = {**os.environ, "FEEDSVC_SECRET_KEY": "약속-테스트-비밀-키-0123456789abcdef"}
    env.pop("FEEDSVC_NOW", None)
    if now is not None:
        env["FEEDSVC_NOW"] = now.isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "--config", str(root / "config.yaml"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == status, done.stdout + done.stderr
    return done.stdout + done.stderr


def write_site(root: Path, server: SmtpServer, port: int, **delivery: object) -> None:
    """The end-to-end site (one post of the back catalogue), in Asia/Seoul."""
    make_site(root, port, server)
    config = json.loads((root / "config.yaml").read_text(encoding="utf-8"))
    config["site"]["timezone"] = "Asia/Seoul"
    config["delivery"].update(delivery)
    (root / "config.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


def write_post(root: Path, name: str, title: str, date: str | None) -> None:
    dated = f"date: {date}\n" if date is not None else ""
    body = f"{title}에 대한 본문입니다.\n\n```python\nprint('Promise<T>')\n```\n"
    (root / "content" / name).write_text(
        f'---\ntitle: "{title}"\n{dated}categories: [부산]\n---\n\n{body}', encoding="utf-8"
    )


def joined(root: Path, address: str) -> datetime:
    listed = json.loads(feedsvc(root, "subscribers", "list", "--format", "json"))
    (found,) = [s for s in listed if s["email"] == address]
    return datetime.fromisoformat(found["confirmed"] or found["created"])


def titles_sent(server: SmtpServer, address: str) -> list[str]:
    """Every post title in every digest ``address`` got (one entry per appearance)."""
    found = []
    for message in messages_to(server, address):
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        found += [title for title in TITLES.values() if title in text]
    return found


TITLES = {
    "a": "오늘 자정으로 적은 글",
    "b": "가입 1초 전으로 적은 글",
    "c": "사흘 전으로 적은 글",
    "d": "40일 전으로 적은 보관 글",
    "e": "날짜 없는 글",
    "f": "예약 발행 글",
}
MAILED = ("a", "b", "c", "e", "f")


@pytest.mark.slow
def test_posts_dated_before_joining_reach_immediate_and_daily_readers_once(
    tmp_path: Path, server: SmtpServer
) -> None:
    port = free_port()
    (tmp_path / "content").mkdir()
    write_site(tmp_path, server, port)
    daemon = Daemon(tmp_path, port)
    try:
        daemon.start()
        feedsvc(tmp_path, "subscribers", "add", NOW_READER, "--frequency", "immediate")
        feedsvc(
            tmp_path, "subscribers", "add", DAILY_READER, "--frequency", "daily",
            "--timezone", "Asia/Seoul", "--name", "매일 받는 독자",
        )  # fmt: skip
        joined_at = joined(tmp_path, NOW_READER).astimezone(SEOUL)
        time.sleep(1)  # so that the dates below are written after joining
        now = datetime.now(SEOUL)
        scheduled = (now + timedelta(seconds=12)).replace(microsecond=0)
        write_post(tmp_path, "a.md", TITLES["a"], now.date().isoformat())
        write_post(tmp_path, "b.md", TITLES["b"], (joined_at - timedelta(seconds=1)).isoformat())
        write_post(
            tmp_path, "c.md", TITLES["c"], (now - timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
        )
        write_post(tmp_path, "d.md", TITLES["d"], (now - timedelta(days=40)).date().isoformat())
        write_post(tmp_path, "e.md", TITLES["e"], None)
        write_post(tmp_path, "f.md", TITLES["f"], scheduled.isoformat())

        def all_arrived() -> bool:
            return sorted(set(titles_sent(server, NOW_READER))) == sorted(TITLES[k] for k in MAILED)

        wait_for(all_arrived, "the immediate digests of a, b, c, e and f", timeout=60)
        feed = httpx.get(f"{daemon.base}/feed.xml", timeout=5).text
        assert TITLES["d"] in feed  # an archive post is published, only not mailed
        assert daemon.stop() == 0, daemon.logs()
        assert "d.md: not mailed: dated 40 days before it went live" in daemon.logs()
        assert "Traceback" not in daemon.logs()
    finally:
        daemon.kill()
    assert sorted(titles_sent(server, NOW_READER)) == sorted(TITLES[k] for k in MAILED)

    status = feedsvc(tmp_path, "status")
    assert "d.md: not mailed: dated 40 days before it went live" in status
    assert "digest.backdate_limit" in status

    # The next daily digest, in Seoul: a, b, c, e and f, and not d.
    schedule = DigestSchedule(
        send_time=datetime.strptime("08:00", "%H:%M").time(),
        weekday=0,
        site_timezone="Asia/Seoul",
        max_lateness=timedelta(hours=12),
    )
    morning = next_send(Frequency.DAILY, "Asia/Seoul", datetime.now(UTC), schedule)
    dry = feedsvc(tmp_path, "digest", "send", "--dry-run", now=morning + timedelta(minutes=5))
    assert f"{DAILY_READER} (매일 받는 독자) ← 5 posts" in dry
    assert "d.md: not mailed: dated 40 days before it went live" in dry
    feedsvc(tmp_path, "digest", "send", now=morning + timedelta(minutes=5))
    assert sorted(titles_sent(server, DAILY_READER)) == sorted(TITLES[k] for k in MAILED)
    assert sorted(titles_sent(server, NOW_READER)) == sorted(TITLES[k] for k in MAILED)

    # Releasing the archive post mails it, once, to each in their cadence.
    released = feedsvc(tmp_path, "digest", "release", "d.md", now=morning + timedelta(minutes=6))
    assert "released: d.md" in released
    feedsvc(tmp_path, "digest", "send", now=morning + timedelta(minutes=7))
    assert titles_sent(server, NOW_READER).count(TITLES["d"]) == 1
    assert TITLES["d"] not in titles_sent(server, DAILY_READER)
    feedsvc(tmp_path, "digest", "send", now=morning + timedelta(days=1, minutes=5))
    assert titles_sent(server, DAILY_READER).count(TITLES["d"]) == 1
    assert "not mailed" not in feedsvc(tmp_path, "status")
    for address in (NOW_READER, DAILY_READER):
        got = titles_sent(server, address)
        assert len(got) == len(set(got)) == 6, got


@pytest.mark.slow
def test_three_thousand_imported_subscribers_get_a_post_dated_a_second_before(
    tmp_path: Path, server: SmtpServer
) -> None:
    """Imported one second after the post's date, they all get it when it goes live."""
    port = free_port()
    (tmp_path / "content").mkdir()
    write_site(tmp_path, server, port, rate=10000)
    feedsvc(tmp_path, "build")
    rows = ["email,name,frequency,categories"]
    rows += [f"reader{i}@example.kr,독자 {i},immediate," for i in range(3000)]
    (tmp_path / "구독자.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    dated = datetime.now(SEOUL).replace(microsecond=0)
    time.sleep(1)
    feedsvc(tmp_path, "subscribers", "import", str(tmp_path / "구독자.csv"))
    write_post(tmp_path, "news.md", "가져오기 1초 전으로 적은 글", dated.isoformat())
    feedsvc(tmp_path, "build")
    sent = feedsvc(tmp_path, "digest", "send")
    assert "3,000 sent" in sent, sent
    with server.recorder.lock:
        recipients = [r.recipient for r in server.recorder.received]
    assert len(recipients) == len(set(recipients)) == 3000


def test_a_refused_duplicate_is_never_mailed_and_the_first_keeps_its_slug(
    tmp_path: Path,
) -> None:
    """Two files claim one slug: the build refuses the newcomer; a later subscriber's
    digests, status and feeds agree that it is not published."""
    (tmp_path / "content").mkdir()
    config = {
        "site": {"title": "부산 시정 소식", "url": "https://news.example.kr/"},
        "storage": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "feeds": {"formats": ["rss"]},
    }
    (tmp_path / "config.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    # The site has no time zone, so it is UTC's: a Seoul date can be tomorrow there.
    today = datetime.now(UTC).date()
    (tmp_path / "content" / f"{today}-first.md").write_text(
        '---\ntitle: "먼저 쓴 글 A"\nslug: same-slug\n---\n\n본문 A\n', encoding="utf-8"
    )
    feedsvc(tmp_path, "build")
    feedsvc(tmp_path, "subscribers", "add", NOW_READER, "--frequency", "immediate")
    # The newcomer sorts first by path and has its own URL (another date): neither wins
    # it the slug.
    (tmp_path / "content" / f"{today - timedelta(days=1)}-duplicate.md").write_text(
        '---\ntitle: "중복 슬러그 B"\nslug: same-slug\n---\n\n본문 B\n', encoding="utf-8"
    )
    for _ in range(2):  # decided once, and it stays
        built = feedsvc(tmp_path, "build", status=1)  # 1: a file could not be published
        assert "duplicate slug 'same-slug'" in built
        feed = (tmp_path / "public" / "feed.xml").read_text(encoding="utf-8")
        assert "먼저 쓴 글 A" in feed and "중복 슬러그 B" not in feed
    dry = feedsvc(tmp_path, "digest", "send", "--dry-run")
    assert "would be announced" not in dry and "중복 슬러그 B" not in dry
    assert "no digest is due" in dry
    assert "nothing was sent" not in feedsvc(tmp_path, "digest", "send")
