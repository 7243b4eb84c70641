"""The bounce mailbox over IMAP and POP3 against a real Dovecot (tests/mail_server.py):
real-shaped reports delivered into the mailbox → the right subscriber, once, and the
messages moved aside (IMAP) or deleted (POP3) only after their signals are committed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feedsvc.bounces.mailbox import MailboxOptions, mailbox_options, read_mailbox
from feedsvc.errors import ConfigError, MailboxError
from feedsvc.models import SignalOutcome, SubscriberStatus
from feedsvc.storage import Store
from feedsvc.storage.inbound_signals import SignalPolicy
from feedsvc.storage.schema import inbound_signals
from tests.bounces.test_inbox import MATCHER, NOW, SAMPLES, _delivery, _status, _with_verp
from tests.conftest import make_settings
from tests.digest_helpers import add_subscriber
from tests.mail_server import MailServer, serving


@pytest.fixture
def mail() -> Iterator[MailServer]:
    yield from serving()


def _options(mail: MailServer, protocol: str, **changes: object) -> MailboxOptions:
    port = mail.imap_port if protocol == "imap" else mail.pop3_port
    values: dict[str, object] = {
        "protocol": protocol,
        "host": mail.host,
        "port": port,
        "tls": "none",
        "username": mail.username,
        "password": mail.password,
        "timeout": 10.0,
    }
    values.update(changes)
    return MailboxOptions(**values)  # type: ignore[arg-type]


def _fill(mail: MailServer, store: Store) -> list[int]:
    """Three subscribers; a hard bounce, a complaint and an out-of-office reply delivered
    into the mailbox. Their ids."""
    with store.write() as conn:
        minji = add_subscriber(conn, "minji.kim@example.com")
        jiwoo = add_subscriber(conn, "jiwoo@hotmail.example")
        seoyeon = add_subscriber(conn, "서연@example.kr")
        bounce = _delivery(conn, minji)
        _delivery(conn, jiwoo, "<digest-9.subscriber-412@news.example.kr>")
    mail.deliver(_with_verp("postfix-user-unknown.eml", bounce))
    mail.deliver((SAMPLES / "arf-abuse.eml").read_bytes())
    mail.deliver((SAMPLES / "out-of-office-ko.eml").read_bytes())
    return [minji, jiwoo, seoyeon]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_reports_in_the_mailbox_reach_their_subscribers_once(
    mail: MailServer, store: Store, protocol: str
) -> None:
    minji, jiwoo, seoyeon = _fill(mail, store)
    options = _options(mail, protocol)
    report = read_mailbox(store, options, MATCHER, SignalPolicy(), lambda: NOW)
    assert report.problems == []
    assert dict(report.outcomes) == {
        SignalOutcome.BOUNCED: 1,
        SignalOutcome.COMPLAINED: 1,
        SignalOutcome.IGNORED: 1,
    }
    assert [_status(store, s) for s in (minji, jiwoo, seoyeon)] == [
        SubscriberStatus.BOUNCED,
        SubscriberStatus.COMPLAINED,
        SubscriberStatus.ACTIVE,
    ]
    assert mail.count("INBOX") == 0
    if protocol == "imap":  # kept for the site owner, out of the way
        assert mail.count(options.processed_folder) == 3
    again = read_mailbox(store, options, MATCHER, SignalPolicy(), lambda: NOW)
    assert again.read == 0


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_crash_after_the_commit_leaves_the_messages_and_applies_nothing_twice(
    mail: MailServer, store: Store, protocol: str
) -> None:
    _fill(mail, store)
    options = _options(mail, protocol)

    def crash(_: int) -> None:
        raise KeyboardInterrupt  # as abrupt as it gets in-process: nothing after runs

    with pytest.raises(KeyboardInterrupt):
        read_mailbox(store, options, MATCHER, SignalPolicy(), lambda: NOW, after_commit=crash)
    assert mail.count("INBOX") == 3  # neither moved nor deleted
    report = read_mailbox(store, options, MATCHER, SignalPolicy(), lambda: NOW)
    assert dict(report.outcomes) == {SignalOutcome.ALREADY: 3}
    assert mail.count("INBOX") == 0
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(inbound_signals)).scalar() == 3


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_wrong_password_is_an_error_naming_the_mailbox_and_changes_nothing(
    mail: MailServer, store: Store, protocol: str
) -> None:
    _fill(mail, store)
    options = _options(mail, protocol, password="틀린-암호")
    with pytest.raises(MailboxError) as caught:
        read_mailbox(store, options, MATCHER, SignalPolicy(), lambda: NOW)
    assert f"{protocol} {mail.username}@127.0.0.1:" in str(caught.value)
    assert "bounces.mailbox" in str(caught.value)
    assert mail.count("INBOX") == 3


def test_mailbox_settings_name_what_is_missing(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, bounces={"mailbox": {"protocol": "imap", "host": "mail.example.kr"}}
    )
    with pytest.raises(ConfigError) as caught:
        mailbox_options(settings, {})
    text = str(caught.value)
    assert "bounces.mailbox.username" in text and "FEEDSVC_BOUNCES_PASSWORD" in text
    settings = make_settings(
        tmp_path,
        bounces={"mailbox": {"protocol": "pop3", "username": "반송", "tls": "starttls"}},
    )
    options = mailbox_options(settings, {"FEEDSVC_BOUNCES_PASSWORD": "비밀"})
    assert options is not None and (options.port, options.password) == (110, "비밀")
    assert mailbox_options(make_settings(tmp_path), {}) is None
