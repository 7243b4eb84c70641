"""The deliverability loop end to end: `feedsvc digest send` to a real SMTP relay
(aiosmtpd) that accepts everything, with a VERP return path; the bounce and the complaint
that come back later, dropped in the bounce inbox; `feedsvc bounces process`; the next
digest skips the bounced and the complaining subscriber."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedsvc.cli.main import main
from feedsvc.config import load_settings
from feedsvc.delivery.return_path import ReturnPaths
from feedsvc.newsletter.tokens import load_secrets
from feedsvc.storage import open_store
from feedsvc.storage.announcements import note_published
from feedsvc.storage.subscribers import events_of, get_subscriber
from tests.bounces.test_inbox import answering
from tests.digest_helpers import (
    T0,
    add_subscriber,
    make_post,
    sample_posts,
    site_mapping,
    store_post,
)
from tests.smtp_server import SmtpServer, serving

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "bounces"
TEMPLATE = "bounces+{token}@news.example.kr"
PEOPLE = ("minji.kim@example.com", "jiwoo@hotmail.example", "서연@example.kr")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from serving()


def _site(folder: Path, store_url: str, **sections: Any) -> Path:
    """A Korean site with the sample posts announced and PEOPLE subscribed; its config."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    raw = site_mapping(storage={"url": store_url}, **sections)
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    store = open_store(load_settings(config).storage_url)
    try:
        with store.write() as conn:
            for post in sample_posts():
                store_post(conn, post)
            for address in PEOPLE:
                add_subscriber(conn, address)
            note_published(
                conn, [p.meta for p in sample_posts()], T0 + timedelta(hours=1), flood_limit=50
            )
    finally:
        store.close()
    return config


def _run(config: Path, monkeypatch: pytest.MonkeyPatch, when: str, *args: str) -> str:
    monkeypatch.setenv("FEEDSVC_NOW", when)
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_bounces_and_complaints_after_250_stop_the_next_digest(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer
) -> None:
    delivery = {
        "backend": "smtp",
        "smtp": {"host": smtp.host, "port": smtp.port, "tls": "none"},
        "return_path": TEMPLATE,
    }
    config = _site(tmp_path / "부산", store_url, delivery=delivery, bounces={"inbox_dir": "반송함"})
    _run(config, monkeypatch, "2024-06-01T09:17:23+09:00", "digest", "send")
    received = smtp.recorder.received
    assert sorted(r.recipient for r in received) == sorted(PEOPLE)
    settings = load_settings(config)
    store = open_store(settings.storage_url)
    try:
        paths = ReturnPaths(TEMPLATE, load_secrets(settings, store=store))
        tokens: dict[str, str] = {}
        for item in received:  # each message its own envelope sender, naming its delivery
            delivery_id = paths.delivery(item.mail_from)
            assert delivery_id is not None, item.mail_from
            tokens[item.recipient] = paths.token(delivery_id)
        assert len(set(tokens.values())) == 3
        # Later: a DSN for Minji (user unknown) and an ARF complaint from Jiwoo's provider.
        inbox = tmp_path / "부산" / "반송함"
        inbox.mkdir()
        (inbox / "1.eml").write_bytes(answering("postfix-user-unknown.eml", tokens[PEOPLE[0]]))
        (inbox / "2.eml").write_bytes(answering("arf-abuse.eml", tokens[PEOPLE[1]]))
        (inbox / "3.eml").write_bytes((SAMPLES / "out-of-office-ko.eml").read_bytes())
        out = _run(config, monkeypatch, "2024-06-01T12:00:00+09:00", "bounces", "process")
        assert "3 messages read:" in out
        assert "1 bounced" in out and "1 complained" in out and "1 ignored" in out
        with store.read() as conn:
            minji, jiwoo, seoyeon = (get_subscriber(conn, a) for a in PEOPLE)
            assert minji is not None and jiwoo is not None and seoyeon is not None
            assert (minji.status.value, jiwoo.status.value, seoyeon.status.value) == (
                "bounced",
                "complained",
                "active",
            )
            event = events_of(conn, minji.id)[-1]
        assert event.detail is not None and event.detail["source"] == "dsn"
        listed = _run(config, monkeypatch, "2024-06-01T12:00:00+09:00", "bounces", "list")
        assert "1 hard bounce" in listed and "1 complaint" in listed
        assert "complaint rate: 33.333% of 3 messages sent" in listed
        assert "Gmail and Yahoo refuse bulk mail above 0.3 %" in listed
        status = _run(config, monkeypatch, "2024-06-01T12:00:00+09:00", "status")
        assert "bounces and complaints, last 30 days: 1 hard bounce, 0 soft bounce" in status
        assert "complaint rate: 33.333% of 3 messages sent" in status
        assert "warning: complaints are 33.33% of messages sent" in status
        # The next digest: a new post, only Seoyeon gets it.
        with store.write() as conn:
            fresh = make_post("new-beach", title="광안리 새 산책로 개통")
            store_post(conn, fresh)
            note_published(conn, [fresh.meta], T0 + timedelta(days=1, hours=1), flood_limit=50)
    finally:
        store.close()
    before = len(received)
    _run(config, monkeypatch, "2024-06-02T09:17:23+09:00", "digest", "send")
    assert [r.recipient for r in received[before:]] == [PEOPLE[2]]


def test_mail_to_the_list_unsubscribe_mailto_unsubscribes_that_subscriber(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each digest offers its own mailto (bounces.unsubscribe_address); a mail client's
    unsubscribe message to it, read from the inbox, unsubscribes exactly that person."""
    folder = tmp_path / "부산"
    bounces = {"inbox_dir": "반송함", "unsubscribe_address": "unsubscribe+{token}@news.example.kr"}
    config = _site(folder, store_url, bounces=bounces)
    _run(config, monkeypatch, "2024-06-01T09:17:23+09:00", "digest", "send")
    mailtos: dict[str, str] = {}
    for path in (folder / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found = re.search(
            r"<mailto:([^?>]+)\?subject=unsubscribe>", str(message["List-Unsubscribe"])
        )
        assert found is not None, message["List-Unsubscribe"]
        mailtos[str(message["To"]).split("<")[-1].rstrip(">")] = found.group(1)
    assert len(set(mailtos.values())) == 3 and all(
        m.startswith("unsubscribe+") for m in mailtos.values()
    )
    inbox = folder / "반송함"
    inbox.mkdir()
    request = f"From: {PEOPLE[2]}\r\nTo: {mailtos[PEOPLE[2]]}\r\nSubject: unsubscribe\r\n\r\n"
    (inbox / "unsubscribe.eml").write_bytes(request.encode("utf-8"))
    out = _run(config, monkeypatch, "2024-06-01T12:00:00+09:00", "bounces", "process")
    assert "1 unsubscribed" in out
    store = open_store(load_settings(config).storage_url)
    try:
        with store.read() as conn:
            statuses = [getattr(get_subscriber(conn, e), "status", None) for e in PEOPLE]
    finally:
        store.close()
    assert [s.value if s else None for s in statuses] == ["active", "active", "unsubscribed"]
