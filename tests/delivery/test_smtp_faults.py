"""Every reply class ends in the right state, against a real SMTP server on loopback
(aiosmtpd, with and without PIPELINING) and a real store (SQLite, and PostgreSQL where
FEEDSVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from feedsvc.cli.status import collect_status, format_status
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending
from feedsvc.delivery.pacing import RetryPolicy
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.messages import Texts
from feedsvc.models import DeliveryStatus
from feedsvc.newsletter.jobs import Renderer, create_due_digests, render_pending
from feedsvc.newsletter.tokens import Tokens
from feedsvc.storage import Store
from feedsvc.storage.schema import deliveries, subscriber_events, subscribers
from feedsvc.storage.subscribers import unsubscribe
from tests.digest_helpers import SECRET, add_subscriber, digest_settings, sample_posts
from tests.smtp_server import Recorder, SmtpServer, serving
from tests.storage.test_digests import MORNING, publish

PEOPLE = {
    "minji@example.kr": "김민지",
    "jisu@example.kr": "박지수",
    "seojun@example.kr": "이서준",
    "haeun@example.kr": "최하은",
}


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": store_url})


@pytest.fixture(params=["lockstep", "pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """The server, once as aiosmtpd is (each command, then its reply) and once offering
    PIPELINING (MAIL, RCPT and DATA in one write): every reply class, both ways."""
    yield from serving(Recorder(pipelining=request.param == "pipelining"))


def prepare(store: Store, settings: Settings, people: dict[str, str] = PEOPLE) -> None:
    """Posts, subscribers, the morning's digests, rendered: rows ready to send."""
    with store.write() as conn:
        for email, name in people.items():
            add_subscriber(conn, email, name=name)
    publish(store, sample_posts())
    create_due_digests(store, settings, MORNING)
    render_pending(store, Renderer(settings, Tokens(SECRET)), MORNING)


def options(server: SmtpServer, **changes: Any) -> SmtpOptions:
    base: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "tls": "none",
        "username": None,
        "password": None,
        "timeout": 0.5,
        "envelope_from": "news@example.kr",
        "local_hostname": "example.kr",
    }
    return SmtpOptions(**{**base, **changes})


def send(
    store: Store, server: SmtpServer, at: timedelta = timedelta(0), **changes: Any
) -> SendReport:
    pace = Pace(concurrency=2, rate=1000, policy=RetryPolicy(max_age=timedelta(days=5)))
    clock = FixedClock(MORNING + at)
    return asyncio.run(deliver_pending(store, options(server, **changes), clock, pace))


def rows(store: Store) -> dict[str, Any]:
    with store.read() as conn:
        query = select(deliveries, subscribers.c.email, subscribers.c.status.label("who")).join(
            subscribers, subscribers.c.id == deliveries.c.subscriber_id
        )
        return {row.email: row for row in conn.execute(query)}


def test_every_subscriber_gets_one_message_with_the_servers_reply_kept(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings)
    report = send(store, server)
    assert (report.sent, report.retried, report.failed) == (4, 0, 0)
    got = server.recorder.by_recipient()
    stored = rows(store)
    assert sorted(got) == sorted(PEOPLE)
    for email, row in stored.items():
        assert got[email] == [row.message_id]
        assert row.status == DeliveryStatus.SENT
        assert (row.reply_code, row.sent_at) == (250, MORNING)
        assert "queued as 4BusanQ1" in row.reply
    assert send(store, server).sent == 0  # nothing is sent twice


@pytest.mark.parametrize("reply", ["421", "451", "452"])
def test_a_4xx_reply_is_retried_after_about_five_minutes(
    store: Store, settings: Settings, server: SmtpServer, reply: str
) -> None:
    prepare(store, settings)
    server.recorder.script["minji@example.kr"] = [reply]
    report = send(store, server)
    assert (report.sent, report.retried, report.failed) == (3, 1, 0)
    minji = rows(store)["minji@example.kr"]
    assert minji.status == DeliveryStatus.RETRY and minji.reply_code == int(reply)
    assert MORNING + timedelta(minutes=4) <= minji.next_attempt_at <= MORNING + timedelta(minutes=6)
    assert "minji@example.kr" in minji.last_error and reply in minji.last_error
    assert send(store, server, timedelta(minutes=1)).sent == 0  # not due yet
    assert send(store, server, timedelta(minutes=7)).sent == 1
    assert server.recorder.by_recipient()["minji@example.kr"] == [minji.message_id]


@pytest.mark.parametrize(
    "step", ["550", "RCPT 551 User not local", "DATA 550 5.1.1 No such user", "DATA 552 5.2.2 Full"]
)
def test_a_5xx_that_refuses_the_address_fails_the_row_and_bounces_the_subscriber(
    store: Store, settings: Settings, server: SmtpServer, step: str
) -> None:
    """RCPT TO 5xx, or a 5.1.x / 5.2.x (the mailbox) at DATA: a bounce of that subscriber."""
    prepare(store, settings)
    server.recorder.script["jisu@example.kr"] = [step]
    report = send(store, server)
    assert (report.sent, report.retried, report.failed, report.bounced) == (3, 0, 1, 1)
    jisu = rows(store)["jisu@example.kr"]
    code = int(step.split()[-1] if step.isdigit() else step.split()[1])
    assert (jisu.status, jisu.reply_code, jisu.who) == ("failed", code, "bounced")
    assert "counts as a bounce" in jisu.last_error
    with store.read() as conn:
        events = conn.execute(
            select(subscriber_events.c.kind, subscriber_events.c.actor).where(
                subscriber_events.c.subscriber_id == jisu.subscriber_id
            )
        ).all()
    assert ("bounced", "delivery") in [tuple(e) for e in events]
    assert "jisu@example.kr" not in server.recorder.by_recipient()


@pytest.mark.parametrize(
    "step", ["552", "DATA 554 5.6.0 Content rejected", "DATA 550 Message refused"]
)
def test_a_5xx_that_refuses_the_message_fails_it_without_bouncing_the_subscriber(
    store: Store, settings: Settings, server: SmtpServer, step: str
) -> None:
    """552 5.3.4 (too big), 554 5.6.0 (content), a DATA 5xx with no enhanced status: the
    message is failed with the reply; the address is fine, so no bounce is counted."""
    prepare(store, settings)
    server.recorder.script["jisu@example.kr"] = [step]
    report = send(store, server)
    assert (report.sent, report.failed, report.bounced, report.paused) == (3, 1, 0, None)
    jisu = rows(store)["jisu@example.kr"]
    assert (jisu.status, jisu.who) == ("failed", "active")
    assert "not counted as a bounce" in jisu.last_error and str(jisu.reply_code) in jisu.last_error
    with store.read() as conn:
        kinds = conn.execute(
            select(subscriber_events.c.kind).where(
                subscriber_events.c.subscriber_id == jisu.subscriber_id
            )
        ).scalars()
        assert "bounced" not in list(kinds)


def _assert_paused_and_untouched(
    store: Store, settings: Settings, server: SmtpServer, report: SendReport, reply: str
) -> None:
    assert (report.sent, report.failed, report.bounced) == (0, 0, 0)
    assert report.paused is not None
    assert f"{server.host}:{server.port}" in report.paused and reply in report.paused
    stored = rows(store)
    assert {r.status for r in stored.values()} == {"pending"}
    assert {r.attempts for r in stored.values()} == {0}
    assert {r.who for r in stored.values()} == {"active"}
    shown = format_status(Texts("en"), collect_status(settings, store))
    assert re.search(r"sending paused since \S+: .*" + re.escape(reply), shown), shown


@pytest.mark.parametrize(
    "reply",
    ["550 5.7.1 Sender rejected", "530 5.7.0 Authentication required", "503 5.5.1 Need AUTH"],
)
def test_a_5xx_at_mail_from_pauses_sending_and_bounces_nobody(
    store: Store, settings: Settings, server: SmtpServer, reply: str
) -> None:
    """The relay refuses the sender: every message would fail the same way, so sending is
    paused like a refused login (rows pending, not tried), and no subscriber is bounced."""
    prepare(store, settings)
    server.recorder.mail_reply = reply
    report = send(store, server)
    _assert_paused_and_untouched(store, settings, server, report, reply)
    assert server.recorder.received == []
    server.recorder.mail_reply = None  # the relay is fixed
    assert send(store, server).sent == 4
    assert sorted(server.recorder.by_recipient()) == sorted(PEOPLE)
    assert "sending paused" not in format_status(Texts("en"), collect_status(settings, store))


@pytest.mark.parametrize(
    "step",
    [
        "DATA 554 5.7.1 Rejected by policy",
        "DATA 552 5.7.0 Message refused by policy",
        "RCPT 550 5.7.1 Relaying denied",
        "RCPT 530 5.7.0 Authentication required",
    ],
)
def test_a_policy_rejection_5_7_pauses_sending_at_any_stage(
    store: Store, settings: Settings, server: SmtpServer, step: str
) -> None:
    """5.7.x (security or policy) is about this sender, not the address: pause."""
    prepare(store, settings, {"minji@example.kr": "김민지"})
    server.recorder.script["minji@example.kr"] = [step]
    report = send(store, server)
    _assert_paused_and_untouched(store, settings, server, report, step.split(" ", 1)[1])
    assert send(store, server).sent == 1


def test_a_relay_refusing_the_sender_bounces_none_of_500_subscribers(
    store: Store, settings: Settings
) -> None:
    """The review's case at scale: MAIL FROM 550 5.7.1 for everyone → nothing failed,
    nobody bounced; once the relay is fixed every message goes out exactly once."""
    people = {f"독자{n:03d}@example.kr": f"독자 {n}" for n in range(500)}
    prepare(store, settings, people)
    for server in serving(Recorder(pipelining=True, mail_reply="550 5.7.1 Sender rejected")):
        report = send(store, server)
        assert (report.failed, report.bounced, report.sent) == (0, 0, 0)
        assert report.paused is not None and "550 5.7.1 Sender rejected" in report.paused
        # Sending stopped at the first refusal: not one MAIL FROM per subscriber.
        assert server.recorder.mail_refused <= 2 * 4
        with store.read() as conn:
            statuses = conn.execute(select(subscribers.c.status)).scalars().all()
        assert set(statuses) == {"active"}
        server.recorder.mail_reply = None
        assert send(store, server).sent == 500
        got = server.recorder.by_recipient()
        assert len(got) == 500 and all(len(ids) == 1 for ids in got.values())
        assert send(store, server).sent == 0


def test_a_dropped_connection_before_data_is_retried_and_nothing_arrived(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings)
    server.recorder.script["seojun@example.kr"] = ["drop before data"]
    report = send(store, server)
    assert (report.sent, report.retried) == (3, 1)
    assert "seojun@example.kr" not in server.recorder.by_recipient()
    assert send(store, server, timedelta(minutes=7)).sent == 1
    assert len(server.recorder.by_recipient()["seojun@example.kr"]) == 1


@pytest.mark.parametrize("fault", ["drop after data", "stall"])
def test_no_reply_after_the_final_dot_is_retried_with_the_same_message_id(
    store: Store, settings: Settings, server: SmtpServer, fault: str
) -> None:
    """The outcome is unknown: the message may have arrived; it goes again, same bytes."""
    prepare(store, settings)
    server.recorder.script["haeun@example.kr"] = [fault]
    report = send(store, server)
    assert (report.sent, report.retried) == (3, 1)
    haeun = rows(store)["haeun@example.kr"]
    assert haeun.status == DeliveryStatus.RETRY
    assert send(store, server, timedelta(minutes=7)).sent == 1
    received = [r for r in server.recorder.received if r.recipient == "haeun@example.kr"]
    assert len(received) == 2
    assert {r.message_id for r in received} == {haeun.message_id}
    assert received[0].data == received[1].data


def test_backoff_doubles_up_to_an_hour_then_gives_up_after_max_age(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings, {"minji@example.kr": "김민지"})
    server.recorder.script["minji@example.kr"] = ["451"] * 200
    at = timedelta(0)
    waits: list[timedelta] = []
    while rows(store)["minji@example.kr"].status != "failed":
        report = send(store, server, at)
        assert report.sent == 0
        row = rows(store)["minji@example.kr"]
        if row.status == "retry":
            waits.append(row.next_attempt_at - (MORNING + at))
            at = row.next_attempt_at - MORNING
    assert timedelta(minutes=4) <= waits[0] <= timedelta(minutes=6)
    assert timedelta(minutes=8) <= waits[1] <= timedelta(minutes=12)
    assert all(w <= timedelta(minutes=72) for w in waits)
    assert timedelta(minutes=48) <= waits[-1]
    assert at <= timedelta(days=5)
    assert "gave up" in rows(store)["minji@example.kr"].last_error


def test_someone_who_unsubscribed_after_the_digest_was_made_gets_nothing(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings)
    with store.write() as conn:
        unsubscribe(conn, "jisu@example.kr", now=MORNING, actor="test")
    assert send(store, server).sent == 3
    assert "jisu@example.kr" not in server.recorder.by_recipient()
    assert rows(store)["jisu@example.kr"].status == DeliveryStatus.CANCELLED


class _Refuse:
    def __call__(self, *args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)


def test_a_refused_login_pauses_sending_and_keeps_every_row(
    store: Store, settings: Settings
) -> None:
    prepare(store, settings)
    for server in serving(Recorder(), authenticator=_Refuse(), auth_require_tls=False):
        report = send(store, server, username="news", password="틀린-비밀번호")
        assert report.sent == 0 and report.paused is not None
        assert f"{server.host}:{server.port}" in report.paused
        assert "refused the login of 'news'" in report.paused
        assert server.recorder.received == []
    stored = rows(store)
    assert {r.status for r in stored.values()} == {"pending"}
    assert {r.attempts for r in stored.values()} == {0}


def test_starttls_asked_for_but_not_offered_pauses_instead_of_sending_in_plain_text(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings)
    report = send(store, server, tls="starttls")
    assert report.paused is not None and "does not offer STARTTLS" in report.paused
    assert server.recorder.received == []
    assert {r.status for r in rows(store).values()} == {"pending"}


def test_a_server_that_is_down_means_retry_later(store: Store, settings: Settings) -> None:
    prepare(store, settings)
    running = serving()
    server = next(running)
    running.close()  # started then stopped: nobody listens on its port now
    report = send(store, server)
    assert (report.sent, report.retried) == (0, 4)
    assert all(str(server.port) in r.last_error for r in rows(store).values())


def test_a_connection_is_opened_afresh_after_messages_per_connection_messages(
    store: Store, settings: Settings, server: SmtpServer
) -> None:
    prepare(store, settings)
    pace = Pace(concurrency=1, rate=1000)
    opts = options(server, max_per_connection=3)
    report = asyncio.run(deliver_pending(store, opts, FixedClock(MORNING), pace))
    assert report.sent == 4
    assert server.recorder.greetings == 2  # 3 messages, then a new session for the 4th
