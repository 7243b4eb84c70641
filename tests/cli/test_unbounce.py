"""`feedsvc subscribers unbounce`: subscribers bounced for real (aiosmtpd refusing their
addresses at RCPT TO, a real SQLite store) restored through click's runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from feedsvc.cli.main import main
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.newsletter.jobs import Renderer, create_due_digests, render_pending
from feedsvc.newsletter.tokens import Tokens
from feedsvc.storage import Store, open_store
from feedsvc.storage.schema import deliveries, subscriber_events, subscribers
from tests.digest_helpers import SECRET, add_subscriber, digest_settings, make_post, sample_posts
from tests.smtp_server import Recorder, SmtpServer, serving
from tests.storage.test_digests import MORNING, publish

PEOPLE = {
    "minji@example.kr": "김민지",
    "jisu@example.kr": "박지수",
    "seojun@example.kr": "이서준",
}


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / '상태.db'}"


@pytest.fixture
def settings(tmp_path: Path, url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": url})


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from serving(Recorder())


def run(tmp_path: Path, url: str, *args: str) -> Result:
    config = tmp_path / "설정.yaml"
    config.write_text(
        f"site:\n  timezone: Asia/Seoul\nstorage:\n  url: '{url}'\n", encoding="utf-8"
    )
    return CliRunner().invoke(main, ["--config", str(config), "subscribers", "unbounce", *args])


def send(store: Store, server: SmtpServer, at: datetime, bounce_limit: int = 1) -> SendReport:
    options = SmtpOptions(
        host=server.host,
        port=server.port,
        tls="none",
        username=None,
        password=None,
        timeout=2.0,
        envelope_from="news@example.kr",
        local_hostname="example.kr",
    )
    pace = Pace(concurrency=2, rate=1000, bounce_limit=bounce_limit)
    return asyncio.run(deliver_pending(store, options, FixedClock(at), pace))


def bounce(store: Store, settings: Settings, server: SmtpServer, *emails: str) -> None:
    """Subscribers, today's digest, and the server refusing ``emails`` (550 5.1.1)."""
    with store.write() as conn:
        for email, name in PEOPLE.items():
            add_subscriber(conn, email, name=name)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, Renderer(settings, Tokens(SECRET)), MORNING)
    for email in emails:
        server.recorder.script[email] = ["550"]
    assert send(store, server, MORNING).bounced == len(emails)


def status_of(store: Store) -> dict[str, str]:
    with store.read() as conn:
        return dict(conn.execute(select(subscribers.c.email, subscribers.c.status)).all())


def events(store: Store, kind: str) -> list[tuple[str, str, dict[str, object]]]:
    with store.read() as conn:
        found = conn.execute(
            select(subscribers.c.email, subscriber_events.c.actor, subscriber_events.c.detail)
            .join(subscribers, subscribers.c.id == subscriber_events.c.subscriber_id)
            .where(subscriber_events.c.kind == kind)
        ).all()
    return [(email, actor, json.loads(detail or "{}")) for email, actor, detail in found]


def test_unbounce_restores_the_named_bounced_addresses_and_names_the_others(
    tmp_path: Path, url: str, store: Store, settings: Settings, server: SmtpServer
) -> None:
    """Named addresses that bounced become active with an `unbounced` event; one that is
    not bounced and one nobody has are named on stderr (exit 1 for the unknown one)."""
    bounce(store, settings, server, "jisu@example.kr", "minji@example.kr")
    result = run(tmp_path, url, "Jisu@Example.kr", "seojun@example.kr", "없는사람@example.kr")
    assert result.exit_code == 1, result.output
    assert "restored 1 subscriber to active: jisu@example.kr" in result.stdout
    assert "seojun@example.kr is active, not bounced; nothing changed" in result.stderr
    assert "no subscriber 없는사람@example.kr; nothing changed" in result.stderr
    assert status_of(store) == {
        "minji@example.kr": "bounced",
        "jisu@example.kr": "active",
        "seojun@example.kr": "active",
    }
    [(email, actor, detail)] = events(store, "unbounced")
    assert email == "jisu@example.kr" and actor.startswith("cli:")
    assert detail == {"was": "bounced", "bounces_cleared": 1}


def test_unbounce_resets_the_bounce_count(
    tmp_path: Path, url: str, store: Store, settings: Settings, server: SmtpServer
) -> None:
    """With delivery.bounce_limit = 2, a restored subscriber's next refusal is its first
    again: it stays active (counting the old one too would bounce it at once)."""
    bounce(store, settings, server, "jisu@example.kr")
    assert run(tmp_path, url, "jisu@example.kr").exit_code == 0
    later = MORNING + timedelta(days=1)
    publish(
        store,
        (make_post("광안리-불꽃축제", title="광안리 불꽃축제"),),
        at=later - timedelta(hours=12),
    )
    create_due_digests(store, settings, later)
    render_pending(store, Renderer(settings, Tokens(SECRET)), later)
    server.recorder.script["jisu@example.kr"] = ["550"]
    report = send(store, server, later, bounce_limit=2)
    assert (report.failed, report.bounced) == (1, 0)
    assert status_of(store)["jisu@example.kr"] == "active"
    with store.read() as conn:
        errors = sorted(
            conn.execute(
                select(deliveries.c.last_error).where(deliveries.c.status == "failed")
            ).scalars()
        )
    assert len(errors) == 2
    assert sum("cleared by `feedsvc subscribers unbounce`" in e for e in errors) == 1
    assert sum("counts as a bounce" in e for e in errors) == 1


def test_unbounce_since_restores_those_bounced_from_then_on(
    tmp_path: Path, url: str, store: Store, settings: Settings, server: SmtpServer
) -> None:
    """--since 2h restores the subscribers bounced in the last two hours, and not one that
    bounced long before (nor one imported as bounced, which has no bounce event)."""
    bounce(store, settings, server, "jisu@example.kr", "minji@example.kr", "seojun@example.kr")
    now = datetime.now(MORNING.tzinfo)
    with store.write() as conn:  # the bounces' times: two recent, one a week old
        for email, ago in [
            ("jisu@example.kr", timedelta(minutes=30)),
            ("minji@example.kr", timedelta(hours=1)),
            ("seojun@example.kr", timedelta(days=7)),
        ]:
            sid = select(subscribers.c.id).where(subscribers.c.email == email).scalar_subquery()
            conn.execute(
                update(subscriber_events)
                .where(subscriber_events.c.subscriber_id == sid)
                .values(at=now - ago)
            )
    result = run(tmp_path, url, "--since", "2h")
    assert result.exit_code == 0, result.output
    assert "restored 2 subscribers to active" in result.stdout
    assert status_of(store) == {
        "minji@example.kr": "active",
        "jisu@example.kr": "active",
        "seojun@example.kr": "bounced",
    }
    week_ago = (now - timedelta(days=8)).date().isoformat()
    result = run(tmp_path, url, "--since", week_ago)
    assert result.exit_code == 0, result.output
    assert "restored 1 subscriber to active" in result.stdout
    assert set(status_of(store).values()) == {"active"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the addresses to restore, or give --since TIME"),
        (("jisu@example.kr", "--since", "2h"), "(not both)"),
        (("--since", "어제"), "--since '어제': expected an ISO 8601 date"),
        (("--since", "12"), "or a duration back from now such as 2h"),
    ],
)
def test_unbounce_refuses_bad_usage_saying_what_to_give(
    tmp_path: Path, url: str, args: tuple[str, ...], message: str
) -> None:
    result = run(tmp_path, url, *args)
    assert result.exit_code == 2
    assert message in result.stderr
