"""`feedsvc digest preview|send|release` through click's runner, on a real store (SQLite,
and PostgreSQL where FEEDSVC_TEST_DATABASE_URL is set). Time is pinned with FEEDSVC_NOW."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc.build.builder import Builder
from feedsvc.cli.main import main
from feedsvc.clock import FixedClock
from feedsvc.config import load_settings
from feedsvc.delivery.mime import html_part, parse_message
from feedsvc.newsletter.jobs import announce_live_posts
from feedsvc.storage import Store, open_store
from feedsvc.storage.announcements import note_published
from tests.digest_helpers import (
    T0,
    add_subscriber,
    by_class,
    make_post,
    parse_html,
    sample_posts,
    site_mapping,
    store_post,
    text_of,
)

ANNOUNCED = T0 + timedelta(hours=1)
MORNING = "2024-06-01T09:00:00+09:00"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    monkeypatch.setenv("FEEDSVC_NOW", MORNING)


class Site:
    """A config.yaml for a Korean site on one store, and a runner for digest commands."""

    def __init__(self, folder: Path, url: str, **sections: dict[str, object]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "config.yaml"
        raw = site_mapping(storage={"url": url}, **sections)
        self.config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        self.settings = load_settings(self.config)

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), "digest", *args])

    def outbox(self) -> list[Path]:
        folder = self.folder / "outbox"
        return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def site(tmp_path: Path, store_url: str) -> Site:
    return Site(tmp_path / "부산-사이트", store_url)


def seed(site: Site, *, announce: bool = True, flood_limit: int = 50) -> None:
    """Three posts as a build leaves them, and three subscribers."""
    store = open_store(site.settings.storage_url)
    with store.write() as conn:
        for post in sample_posts():
            store_post(conn, post)
        add_subscriber(conn, "minji@example.kr", categories=("부산",))
        add_subscriber(conn, "jisu@example.kr", name="박지수")
        add_subscriber(conn, "seojun@example.kr", name=None, categories=("교통",))
        if announce:
            note_published(
                conn, [p.meta for p in sample_posts()], ANNOUNCED, flood_limit=flood_limit
            )
    store.close()


def test_dry_run_prints_who_would_get_which_posts_and_sends_nothing(site: Site) -> None:
    seed(site)
    result = site.run("send", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    period = "[daily:2024-06-01@Asia/Seoul]"
    assert f"minji@example.kr (김민지) ← 1 post {period}: 해운대 바다축제, 6월 1일 개막" in lines
    assert (
        f"jisu@example.kr (박지수) ← 3 posts {period}: 해운대 바다축제, 6월 1일 개막 · "
        "부산 스마트시티 박람회 참가 신청 안내 · 시내버스 노선 개편 & 첫차 시간 변경 <안내>"
    ) in lines
    assert (
        f"seojun@example.kr ← 1 post {period}: 시내버스 노선 개편 & 첫차 시간 변경 <안내>" in lines
    )
    assert lines[-1] == (
        "dry run: 3 messages in 3 digests (1 period) would be sent; nothing was sent"
    )
    assert site.outbox() == []
    assert site.run("send", "--dry-run").stdout == result.stdout  # nothing was recorded


def test_send_writes_one_eml_per_subscriber_once(site: Site) -> None:
    seed(site)
    result = site.run("send")
    assert result.exit_code == 0, result.output
    assert "3 digests created for 3 subscribers; 3 messages rendered" in result.stdout
    assert f"3 messages written to {site.folder / 'outbox'}" in result.stdout
    files = site.outbox()
    assert len(files) == 3
    messages = [parse_message(path.read_bytes()) for path in files]
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == [
        "jisu@example.kr",
        "minji@example.kr",
        "seojun@example.kr",
    ]
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in messages}
    assert subjects["jisu@example.kr"] == "부산 시정 소식: 새 글 3편"
    again = site.run("send")
    assert again.exit_code == 0, again.output
    assert "0 digests created for 0 subscribers; 0 messages rendered" in again.stdout
    assert len(site.outbox()) == 3


def test_links_in_sent_mail_carry_signed_tokens_from_the_kept_secret(site: Site) -> None:
    seed(site)
    site.run("send")
    message = parse_message(site.outbox()[0].read_bytes())
    unsubscribe = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    assert unsubscribe.startswith("https://news.example.kr/unsubscribe/")
    assert unsubscribe in html_part(site.outbox()[0].read_bytes())
    if site.settings.storage_url.startswith("sqlite"):
        secret = Path(site.settings.storage_url.removeprefix("sqlite:///") + ".secret")
        assert secret.is_file()
    else:  # on PostgreSQL the keys live in the database, shared by every instance
        from feedsvc.storage import open_store
        from feedsvc.storage.secret_keys import stored_keys

        store = open_store(site.settings.storage_url)
        try:
            with store.read() as conn:
                assert stored_keys(conn)
        finally:
            store.close()
        assert not (site.folder / ".feedsvc" / "secret").exists()


def test_preview_writes_the_html_and_says_where(site: Site, tmp_path: Path) -> None:
    seed(site)
    out = tmp_path / "미리보기" / "digest.html"
    result = site.run("preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote the preview (3 posts for a sample subscriber) to {out}" in result.stdout
    assert "subject: 부산 시정 소식: 새 글 3편" in result.stdout
    page = parse_html(out.read_text(encoding="utf-8"))
    titles = [text_of(h) for h in by_class(page, "post-title")]
    assert titles == [
        "해운대 바다축제, 6월 1일 개막",
        "부산 스마트시티 박람회 참가 신청 안내",
        "시내버스 노선 개편 & 첫차 시간 변경 <안내>",
    ]
    assert any(text_of(a) == "구독 해지" for a in page.iter("a"))


def test_preview_for_one_subscriber_shows_their_next_digest(site: Site, tmp_path: Path) -> None:
    seed(site)
    out = tmp_path / "minji.html"
    result = site.run("preview", "--to", "MinJi@Example.kr", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "(1 post for minji@example.kr)" in result.stdout
    page = parse_html(out.read_text(encoding="utf-8"))
    assert [text_of(h) for h in by_class(page, "post-title")] == ["해운대 바다축제, 6월 1일 개막"]
    assert "minji@example.kr" in text_of(page)


def test_preview_after_sending_shows_their_newest_posts_and_says_so(
    site: Site, tmp_path: Path
) -> None:
    seed(site)
    site.run("send")
    result = site.run("preview", "--to", "seojun@example.kr", "--out", str(tmp_path / "p.html"))
    assert result.exit_code == 0, result.output
    assert "no new posts are waiting for seojun@example.kr" in result.stdout


def test_preview_for_an_unknown_address_says_so(site: Site) -> None:
    seed(site)
    result = site.run("preview", "--to", "nobody@example.kr")
    assert result.exit_code == 2
    assert "nobody@example.kr is not a subscriber" in result.stderr


def test_preview_without_posts_asks_for_a_build(site: Site, tmp_path: Path) -> None:
    result = site.run("preview", "--out", str(tmp_path / "x.html"))
    assert result.exit_code == 1
    assert "no published posts in the store; run `feedsvc build` first" in result.stderr


def test_release_lets_a_held_flood_go_out(site: Site) -> None:
    seed(site, flood_limit=2)
    # Nothing due: the dry run says when the next digest is, in the site's zone.
    assert site.run("send", "--dry-run").stdout.endswith(
        "dry run: no digest is due; nothing would be sent; the next is the daily digest "
        "(Asia/Seoul) at 2024-06-02 08:00 KST (in 23 h)\n"
    )
    released = site.run("release")
    assert released.exit_code == 0, released.output
    assert released.stdout.splitlines() == [
        "released: bus-routes.md",
        "released: haeundae-festival.md",
        "released: smart-city-expo.md",
        "3 held posts released: the next digests include them",
    ]
    assert site.run("release").stdout == "no posts are held\n"


def test_release_discard_never_emails_them(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(site, flood_limit=2)
    result = site.run("release", "--discard")
    assert result.stdout.splitlines()[-1] == ("3 held posts discarded: they will never be emailed")
    monkeypatch.setenv("FEEDSVC_NOW", "2024-06-02T09:00:00+09:00")
    assert "no digest is due" in site.run("send", "--dry-run").stdout


def test_a_bad_sender_names_the_key(tmp_path: Path, store_url: str) -> None:
    site = Site(tmp_path / "site", store_url, digest={"from": "편집팀"})
    result = site.run("send")
    assert result.exit_code == 2
    assert "digest.from = '편집팀': expected a sender" in result.stderr


def test_with_smtp_configured_the_messages_go_to_the_server(tmp_path: Path, store_url: str) -> None:
    from tests.smtp_server import serving

    for server in serving():
        smtp = {"host": server.host, "port": server.port, "tls": "none"}
        site = Site(tmp_path / "site", store_url, delivery={"backend": "smtp", "smtp": smtp})
        seed(site)
        result = site.run("send")
        assert result.exit_code == 0, result.output
        assert "3 messages rendered" in result.stdout
        assert f"3 sent, 0 retrying, 0 failed (SMTP 127.0.0.1:{server.port})" in result.stdout
        assert sorted(server.recorder.by_recipient()) == [
            "jisu@example.kr",
            "minji@example.kr",
            "seojun@example.kr",
        ]
    assert site.outbox() == []


def build_and_announce(site: Site, store: Store, now: datetime) -> None:
    """A build, then what the build will call once it is wired: note_published with the
    posts it published."""
    Builder(site.settings, store, FixedClock(now), workers=1).build()
    with store.write() as conn:
        announce_live_posts(conn, site.settings, now)


def test_from_a_real_build_to_the_outbox(tmp_path: Path) -> None:
    """Build a site, let a post appear after the first build, send the next morning."""
    folder = tmp_path / "site"
    (folder / "content").mkdir(parents=True)
    (folder / "content" / "2024-05-20-old.md").write_text(
        "---\ntitle: 예전 글\ncategories: [부산]\n---\n\n오래된 글입니다.\n", encoding="utf-8"
    )
    site = Site(folder, f"sqlite:///{folder / 'feedsvc.db'}")
    store = open_store(site.settings.storage_url)
    friday = datetime(2024, 5, 31, 1, tzinfo=UTC)
    build_and_announce(site, store, friday)
    with store.write() as conn:
        add_subscriber(conn, "minji@example.kr", joined=friday)
    (folder / "content" / "2024-05-31-festival.md").write_text(
        "---\ntitle: 해운대 바다축제 개막\ndate: 2024-05-31T15:00:00+09:00\n"
        "categories: [부산]\n---\n\n올해 축제는 [행사 안내](/events/)를 보세요.\n",
        encoding="utf-8",
    )
    evening = datetime(2024, 5, 31, 10, tzinfo=UTC)
    build_and_announce(site, store, evening)
    store.close()
    result = site.run("send")
    assert result.exit_code == 0, result.output
    [eml] = site.outbox()
    data = eml.read_bytes()
    assert parse_message(data)["Subject"] == "부산 시정 소식: 새 글 1편"
    page = html_part(data)
    assert "해운대 바다축제 개막" in page and "예전 글" not in page
    assert 'href="https://news.example.kr/events/"' in page


def test_the_digest_commands_are_listed() -> None:
    result = CliRunner().invoke(main, ["digest", "--help"])
    assert result.exit_code == 0
    for command in ("preview", "send", "release"):
        assert command in result.stdout
    assert make_post("x").meta.title  # the helpers import cleanly
