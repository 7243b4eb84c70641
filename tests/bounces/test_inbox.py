"""The bounce inbox folder against a real store (SQLite and PostgreSQL): real-shaped
bounces, complaints and unsubscribe mail → the right subscriber, once."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, insert, select

from feedsvc.bounces.inbox import PROCESSED, process_inbox, waiting
from feedsvc.bounces.process import Matcher
from feedsvc.delivery.return_path import UNSUBSCRIBE_CONTEXT, ReturnPaths
from feedsvc.models import SignalOutcome, SubscriberStatus
from feedsvc.storage import Store
from feedsvc.storage.bounces import unbounce
from feedsvc.storage.inbound_signals import SignalPolicy
from feedsvc.storage.schema import deliveries, digests, inbound_signals, subscribers
from feedsvc.storage.subscribers import events_of
from tests.digest_helpers import add_subscriber

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "bounces"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
KEYS = (b"s" * 32,)
BOUNCES = ReturnPaths("bounces+{token}@news.example.kr", KEYS)
UNSUBSCRIBE = ReturnPaths("unsubscribe+{token}@news.example.kr", KEYS, UNSUBSCRIBE_CONTEXT)
MATCHER = Matcher(return_paths=BOUNCES, unsubscribe=UNSUBSCRIBE)


def _delivery(conn: Connection, subscriber_id: int, message_id: str | None = None) -> int:
    count = conn.execute(select(digests.c.id)).all()
    digest = conn.execute(
        insert(digests)
        .values(
            frequency="daily",
            period_key=f"p-{len(count)}",
            content_key="c",
            period_end=NOW,
            post_ids="[]",
            created_at=NOW,
        )
        .returning(digests.c.id)
    ).scalar_one()
    return int(
        conn.execute(
            insert(deliveries)
            .values(
                digest_id=digest,
                subscriber_id=subscriber_id,
                status="sent",
                message_id=message_id,
                attempts=1,
                next_attempt_at=NOW,
                created_at=NOW,
                sent_at=NOW - timedelta(hours=1),
            )
            .returning(deliveries.c.id)
        ).scalar_one()
    )


def _status(store: Store, subscriber_id: int) -> SubscriberStatus:
    with store.read() as conn:
        found = conn.execute(select(subscribers.c.status).where(subscribers.c.id == subscriber_id))
        return SubscriberStatus(found.scalar_one())


def _drop(inbox: Path, name: str, raw: bytes) -> Path:
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    path.write_bytes(raw)
    return path


def answering(sample: str, token: str) -> bytes:
    """A sample report as the relay sends it back to ``token``'s VERP address: the
    sample's made-up token swapped for ``token``."""
    raw = (SAMPLES / sample).read_bytes()
    start = raw.index(b"bounces+") + len(b"bounces+")
    return raw.replace(raw[start : raw.index(b"@", start)], token.encode())


def _with_verp(sample: str, delivery_id: int) -> bytes:
    """A sample as if it answered ``delivery_id``."""
    return answering(sample, BOUNCES.token(delivery_id))


def _process(
    store: Store, inbox: Path, policy: SignalPolicy | None = None, **kw: object
) -> dict[SignalOutcome, int]:
    report = process_inbox(store, inbox, MATCHER, policy or SignalPolicy(), lambda: NOW, **kw)  # type: ignore[arg-type]
    assert report.problems == []
    return dict(report.outcomes)


def test_a_hard_bounce_by_verp_bounces_the_subscriber_with_the_servers_words(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        minji = add_subscriber(conn, "김민지@example.kr")
        other = add_subscriber(conn, "junho@example.kr")
        delivery = _delivery(conn, minji)
        _delivery(conn, other)
    inbox = tmp_path / "반송함"
    # The report names another address (an alias): the token decides.
    _drop(inbox, "0001.eml", _with_verp("postfix-user-unknown.eml", delivery))
    assert _process(store, inbox) == {SignalOutcome.BOUNCED: 1}
    assert _status(store, minji) is SubscriberStatus.BOUNCED
    assert _status(store, other) is SubscriberStatus.ACTIVE
    with store.read() as conn:
        event = events_of(conn, minji)[-1]
    assert event.kind.value == "bounced" and event.actor == "bounce inbox"
    assert event.detail is not None
    assert event.detail["source"] == "dsn" and event.detail["status"] == "5.1.1"
    assert "User unknown" in event.detail["diagnostic"]
    assert event.detail["delivery_id"] == delivery
    assert waiting(inbox) == [] and [p.name for p in (inbox / PROCESSED).iterdir()] == ["0001.eml"]


def test_a_complaint_found_by_the_original_message_id_stops_mail_at_once(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        jiwoo = add_subscriber(conn, "jiwoo@hotmail.example")
        _delivery(conn, jiwoo, "<digest-9.subscriber-412@news.example.kr>")
    raw = (SAMPLES / "arf-abuse.eml").read_bytes()  # its VERP token is not a real one
    _drop(tmp_path / "inbox", "arf.eml", raw)
    assert _process(store, tmp_path / "inbox") == {SignalOutcome.COMPLAINED: 1}
    assert _status(store, jiwoo) is SubscriberStatus.COMPLAINED


def test_a_bounce_naming_only_the_recipient_is_matched_by_address(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        seoyeon = add_subscriber(conn, "seoyeon.park@gmail.com")
    _drop(tmp_path / "inbox", "g.eml", (SAMPLES / "gmail-body-only.eml").read_bytes())
    assert _process(store, tmp_path / "inbox") == {SignalOutcome.BOUNCED: 1}
    assert _status(store, seoyeon) is SubscriberStatus.BOUNCED


def test_soft_bounces_suppress_only_at_their_limit_within_the_window(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        junho = add_subscriber(conn, "junho@example.net")
        ids = [_delivery(conn, junho, f"<m{i}@x>") for i in range(3)]
    policy = SignalPolicy(soft_limit=3, soft_window=timedelta(days=30))
    inbox = tmp_path / "inbox"
    for n, delivery in enumerate(ids[:2]):
        _drop(inbox, f"{n}.eml", _with_verp("exim-mailbox-full.eml", delivery))
    assert _process(store, inbox, policy) == {SignalOutcome.COUNTED: 2}
    assert _status(store, junho) is SubscriberStatus.ACTIVE
    _drop(inbox, "2.eml", _with_verp("exim-mailbox-full.eml", ids[2]))
    assert _process(store, inbox, policy) == {SignalOutcome.BOUNCED: 1}
    assert _status(store, junho) is SubscriberStatus.BOUNCED
    with store.read() as conn:
        detail = events_of(conn, junho)[-1].detail
    assert detail is not None and detail["soft_bounces"] == 3


def test_auto_replies_and_unmatched_bounces_change_nothing_but_are_kept(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        minji = add_subscriber(conn, "minji@example.kr")
    inbox = tmp_path / "inbox"
    _drop(inbox, "ooo.eml", (SAMPLES / "out-of-office-ko.eml").read_bytes())
    _drop(inbox, "stranger.eml", (SAMPLES / "policy-block.eml").read_bytes())
    assert _process(store, inbox) == {SignalOutcome.IGNORED: 1, SignalOutcome.UNMATCHED: 1}
    assert _status(store, minji) is SubscriberStatus.ACTIVE
    with store.read() as conn:
        kept = conn.execute(select(inbound_signals.c.kind, inbound_signals.c.outcome)).all()
    assert sorted(kept) == [("ignored", "ignored"), ("soft_bounce", "unmatched")]


def test_mail_to_the_unsubscribe_address_unsubscribes_that_delivery_s_subscriber(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as conn:
        minji = add_subscriber(conn, "minji@example.kr")
        delivery = _delivery(conn, minji)
    to = UNSUBSCRIBE.address(delivery)
    raw = f"From: minji@example.kr\r\nTo: {to}\r\nSubject: unsubscribe\r\n\r\n".encode()
    _drop(tmp_path / "inbox", "u.eml", raw)
    forged = b"From: minji@example.kr\r\nTo: unsubscribe+aaaaaaaaaaaaa@news.example.kr\r\n\r\n"
    _drop(tmp_path / "inbox", "v.eml", forged)
    assert _process(store, tmp_path / "inbox") == {
        SignalOutcome.UNSUBSCRIBED: 1,
        SignalOutcome.IGNORED: 1,
    }
    assert _status(store, minji) is SubscriberStatus.UNSUBSCRIBED


def test_unbounce_stops_signal_bounces_from_counting(store: Store, tmp_path: Path) -> None:
    with store.write() as conn:
        minji = add_subscriber(conn, "minji.kim@example.com")
        first, second = _delivery(conn, minji), _delivery(conn, minji)
    inbox = tmp_path / "inbox"
    _drop(inbox, "1.eml", _with_verp("postfix-user-unknown.eml", first))
    policy = SignalPolicy(bounce_limit=2)
    assert _process(store, inbox, policy) == {SignalOutcome.COUNTED: 1}
    _drop(inbox, "2.eml", _with_verp("o365-recipient-not-found.eml", second))
    assert _process(store, inbox, policy) == {SignalOutcome.BOUNCED: 1}
    with store.write() as conn:
        assert unbounce(conn, ["minji.kim@example.com"], now=NOW, actor="cli").restored
    third = _with_verp("postfix-user-unknown.eml", second).replace(b"3F1A2", b"3F1A3")
    _drop(inbox, "3.eml", third)
    assert _process(store, inbox, policy) == {SignalOutcome.COUNTED: 1}
    assert _status(store, minji) is SubscriberStatus.ACTIVE


class _Crash(Exception):
    pass


def test_a_crash_between_commit_and_move_applies_nothing_twice(
    store: Store, tmp_path: Path
) -> None:
    """The batch's signals are committed, then the process dies before moving its files:
    read again, they are recognised and moved, and nothing is counted twice."""
    with store.write() as conn:
        ids = [add_subscriber(conn, f"구독자{i}@example.kr") for i in range(6)]
        delivery_ids = [_delivery(conn, sid) for sid in ids]
    inbox = tmp_path / "inbox"
    for n, delivery in enumerate(delivery_ids):
        _drop(inbox, f"{n:04d}.eml", _with_verp("exim-mailbox-full.eml", delivery))

    def crash(paths: Sequence[Path]) -> None:
        raise _Crash

    with pytest.raises(_Crash):
        process_inbox(
            store, inbox, MATCHER, SignalPolicy(), lambda: NOW, batch=4, after_commit=crash
        )
    assert len(waiting(inbox)) == 6  # nothing moved
    assert _process(store, inbox, batch=4) == {SignalOutcome.ALREADY: 4, SignalOutcome.COUNTED: 2}
    with store.read() as conn:
        assert conn.execute(select(inbound_signals.c.id)).all().__len__() == 6


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.eml"))), min_size=1, max_size=12
    )
)
def test_each_message_is_one_signal_however_often_it_is_dropped(
    tmp_path: Path, store: Store, names: list[str]
) -> None:
    """Invariant: the same bytes read any number of times are one signal."""
    inbox = tmp_path / f"inbox-{len(list(tmp_path.iterdir()))}"
    for n, name in enumerate(names):
        _drop(inbox, f"{n:03d}-{name}", (SAMPLES / name).read_bytes())
    with store.read() as conn:
        before = len(conn.execute(select(inbound_signals.c.key)).all())
    outcomes = _process(store, inbox)
    with store.read() as conn:
        keys = conn.execute(select(inbound_signals.c.key)).scalars().all()
    assert len(keys) == len(set(keys))
    assert sum(outcomes.values()) == len(names)
    new = len(keys) - before
    assert new + outcomes.get(SignalOutcome.ALREADY, 0) == len(names)
    shutil.rmtree(inbox)
