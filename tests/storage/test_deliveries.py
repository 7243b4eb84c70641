"""Failed rows listed and re-queued, status lines and the `deliveries` commands, the
migration that gave message bytes their own table, and how many rows a sender holds and
for how long (its window, its lease renewed, a dead sender's rows reclaimed), on a real
store (SQLite, and PostgreSQL where FEEDSVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text, update

from feedsvc.cli.main import main
from feedsvc.cli.status import collect_status, format_status
from feedsvc.clock import FixedClock, SystemClock
from feedsvc.config import Settings
from feedsvc.delivery import dispatch as delivery
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.messages import Texts
from feedsvc.models import DeliveryStatus
from feedsvc.storage import Store, open_store
from feedsvc.storage.deliveries import delivery_summary, list_deliveries, requeue_failed
from feedsvc.storage.delivery_claims import claim_due, renew_leases
from feedsvc.storage.engine import make_engine, run_alembic_upgrade
from feedsvc.storage.schema import deliveries, digests, subscribers
from tests.delivery.test_smtp_faults import options, prepare
from tests.digest_helpers import add_subscriber, digest_settings, site_mapping
from tests.smtp_server import Recorder, serving
from tests.storage.test_digests import MORNING


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": store_url})


def test_failed_rows_are_listed_requeued_and_sent_with_the_same_message_id(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDSVC_NOW", (MORNING + timedelta(hours=1)).isoformat())
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    prepare(store, settings)
    for server in serving():
        server.recorder.script["jisu@example.kr"] = ["550"]
        clock = FixedClock(MORNING)
        asyncio.run(deliver_pending(store, options(server), clock, Pace(bounce_limit=3)))
        with store.read() as conn:
            summary = delivery_summary(conn)
            failed = list_deliveries(conn, status=DeliveryStatus.FAILED)
        assert (summary.sent, summary.failed, summary.pending) == (3, 1, 0)
        assert summary.last_error is not None and "jisu@example.kr: 550" in summary.last_error
        assert [row.email for row in failed] == ["jisu@example.kr"]
        lines = format_status(Texts("en"), collect_status(settings, store))
        assert "deliveries: 0 pending, 0 retrying, 1 failed, 3 sent" in lines
        assert "last delivery error: jisu@example.kr: 550" in lines

        config = tmp_path / "config.yaml"
        config.write_text(
            json.dumps(site_mapping(storage={"url": store_url}), ensure_ascii=False), "utf-8"
        )
        listed = CliRunner().invoke(
            main, ["--config", str(config), "deliveries", "list", "--status", "failed"]
        )
        assert listed.exit_code == 0, listed.output
        assert "jisu@example.kr" in listed.stdout and "minji" not in listed.stdout
        retried = CliRunner().invoke(main, ["--config", str(config), "deliveries", "retry"])
        assert retried.exit_code == 0, retried.output
        assert "1 failed delivery re-queued" in retried.stdout
        clock.advance(timedelta(days=1))
        report = asyncio.run(deliver_pending(store, options(server), clock, Pace()))
        assert report.sent == 1
        got = server.recorder.by_recipient()["jisu@example.kr"]
        assert len(got) == 1
    with store.write() as conn:
        assert requeue_failed(conn, MORNING) == 0


def test_migration_0007_moves_each_rendered_message_to_its_own_table(store_url: str) -> None:
    """A store rendered before revision 0007 keeps every message, byte for byte, and a
    sender claims it with its bytes afterwards."""
    engine = make_engine(store_url)
    data = "부산 시정 소식\r\n".encode() * 3000
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn, "0006")
        sid = add_subscriber(conn, "minji@example.kr")
        digest = conn.execute(
            insert(digests)
            .values(
                frequency="daily",
                period_key="daily:2024-06-01@Asia/Seoul",
                content_key="k",
                period_end=MORNING,
                post_ids="[]",
                created_at=MORNING,
            )
            .returning(digests.c.id)
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO deliveries (digest_id, subscriber_id, status, message_id, message, "
                "attempts, next_attempt_at, created_at) VALUES (:d, :s, 'pending', '<1.1@x>', "
                ":m, 0, :t, :t)"
            ),
            {"d": digest, "s": sid, "m": data, "t": MORNING.replace(tzinfo=None)},
        )
    engine.dispose()
    opened = open_store(store_url)
    try:
        with opened.write() as conn:
            claims = claim_due(conn, MORNING, limit=10, lease=timedelta(minutes=5))
        assert [(c.message.message_id, c.message.message) for c in claims] == [("<1.1@x>", data)]
    finally:
        opened.close()


# --- claims bounded by the pace, leases renewed and reclaimed ----------------------------

READERS = {
    f"reader{i:02d}@example.kr": f"{surname}독자{i}"
    for i, surname in enumerate("김이박최정강조윤장임" * 6)
}


@dataclass
class SlowRecorder(Recorder):
    """Calls ``probe`` (if any) as each message arrives, then takes ``delay`` seconds
    before it answers."""

    delay: float = 0.0
    probe: Callable[[], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.probe is not None:
            self.probe()
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def sending_rows(store: Store) -> dict[str, datetime]:
    """Rows claimed and not recorded: recipient → lease end."""
    with store.read() as conn:
        query = (
            select(subscribers.c.email, deliveries.c.lease_until)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.status == DeliveryStatus.SENDING.value)
        )
        return {email: until for email, until in conn.execute(query)}


def test_a_run_holds_no_more_rows_than_its_window(
    store: Store, settings: Settings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 messages at 100 a second with a window of 10 (0.1 s at the rate): whenever the
    server takes a message, at most 10 rows are claimed and not recorded."""
    monkeypatch.setattr(delivery, "AHEAD", 0.1)
    pace = Pace(concurrency=3, rate=100)
    assert pace.window == 10
    prepare(store, settings, READERS)
    watcher = open_store(store_url)
    seen: list[int] = []
    recorder = SlowRecorder(probe=lambda: seen.append(len(sending_rows(watcher))))
    try:
        for server in serving(recorder):
            report = asyncio.run(deliver_pending(store, options(server), FixedClock(MORNING), pace))
    finally:
        watcher.close()
    assert report.sent == len(READERS) and len(seen) == len(READERS)
    assert max(seen) <= pace.window
    assert max(seen) >= pace.window // 2  # the window was used, not one row at a time
    assert sending_rows(store) == {}


def send_in_thread(
    store: Store, opts: SmtpOptions, pace: Pace
) -> tuple[threading.Thread, list[SendReport]]:
    """:func:`deliver_pending` on the real clock, in a thread of its own."""
    done: list[SendReport] = []

    def work() -> None:
        done.append(asyncio.run(deliver_pending(store, opts, SystemClock(), pace)))

    thread = threading.Thread(target=work)
    thread.start()
    return thread, done


def test_a_sender_renews_its_lease_while_a_slow_batch_goes_out_so_no_other_takes_it(
    store: Store, settings: Settings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three messages over one connection, each taking 1.5 s, with a lease of 1.2 s on
    the real clock: the sender renews it every 0.4 s, so another sender, looking every
    50 ms meanwhile, never finds a row to claim; each message arrives once."""
    monkeypatch.delenv("FEEDSVC_NOW", raising=False)
    people = dict(list(READERS.items())[:3])
    prepare(store, settings, people)
    lease = timedelta(seconds=1.2)
    pace = Pace(concurrency=1, rate=100, lease=lease)
    other = open_store(store_url)
    started = datetime.now(UTC)
    taken: list[int] = []
    latest = started
    try:
        for server in serving(SlowRecorder(delay=1.5)):
            thread, done = send_in_thread(store, options(server, timeout=5), pace)
            while len(sending_rows(other)) < len(people):  # its first claim takes all three
                time.sleep(0.01)
            while thread.is_alive():
                with other.write() as conn:
                    taken += [
                        c.message.delivery_id
                        for c in claim_due(conn, datetime.now(UTC), limit=10, lease=lease)
                    ]
                latest = max([latest, *sending_rows(other).values()])
                time.sleep(0.05)
            thread.join()
            got = server.recorder.by_recipient()
    finally:
        other.close()
    assert taken == []
    assert done[0].sent == 3 and sorted(got) == sorted(people)
    assert all(len(ids) == 1 for ids in got.values())
    # Claimed at the start with a 1.2 s lease, the last row was held until past 4 s.
    assert latest - started > timedelta(seconds=3)


def test_a_dead_senders_rows_go_out_once_its_lease_expires_with_the_same_message_id(
    store: Store, settings: Settings
) -> None:
    prepare(store, settings)
    lease = timedelta(seconds=30)
    with store.write() as conn:  # a sender claims every row, then dies
        dead = {
            c.message.email: c.message.message_id
            for c in claim_due(conn, MORNING, limit=10, lease=lease)
        }
    assert len(dead) == 4
    for server in serving():
        early = asyncio.run(
            deliver_pending(
                store, options(server), FixedClock(MORNING + lease / 2), Pace(lease=lease)
            )
        )
        assert early.sent == 0 and server.recorder.received == []
        late = asyncio.run(
            deliver_pending(
                store,
                options(server),
                FixedClock(MORNING + lease + timedelta(seconds=1)),
                Pace(lease=lease),
            )
        )
        assert late.sent == 4
        assert {r.recipient: r.message_id for r in server.recorder.received} == dead
    with store.read() as conn:
        attempts = conn.execute(select(deliveries.c.status, deliveries.c.attempts)).all()
    assert sorted(attempts) == [(DeliveryStatus.SENT.value, 2)] * 4


def test_renewing_finds_the_rows_another_sender_took_after_the_lease_lapsed(
    store: Store, settings: Settings
) -> None:
    prepare(store, settings)
    lease = timedelta(seconds=30)
    with store.write() as conn:
        mine = {
            c.message.delivery_id: c.message.attempts
            for c in claim_due(conn, MORNING, limit=10, lease=lease)
        }
    later = MORNING + lease + timedelta(seconds=5)  # this sender stalled past its lease
    with store.write() as conn:
        theirs = [c.message.delivery_id for c in claim_due(conn, later, limit=1, lease=lease)]
    with store.write() as conn:
        lost = renew_leases(conn, mine, later, lease=lease)
    assert lost == set(theirs) and len(theirs) == 1
    with store.read() as conn:
        query = select(deliveries.c.id, deliveries.c.lease_until)
        leases = {delivery_id: until for delivery_id, until in conn.execute(query)}
    assert {leases[i] for i in mine} == {later + lease}  # the rest are renewed; theirs too


def test_a_sender_leaves_a_row_another_sender_took_and_sends_the_rest(
    store: Store, settings: Settings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the first message goes out (2 s), another sender takes over the third row (as
    after a lapsed lease): at its next renewal (every 0.5 s) the first sender finds it
    gone and never sends it; the row stays the other sender's."""
    monkeypatch.delenv("FEEDSVC_NOW", raising=False)
    people = dict(list(READERS.items())[:3])
    prepare(store, settings, people)
    third = list(people)[2]
    other = open_store(store_url)

    def take_over() -> None:
        if taken:
            return
        taken.append(third)
        with other.write() as conn:
            sid = select(subscribers.c.id).where(subscribers.c.email == third).scalar_subquery()
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.subscriber_id == sid,
                    deliveries.c.status == DeliveryStatus.SENDING.value,
                )
                .values(attempts=deliveries.c.attempts + 1)
            )

    taken: list[str] = []
    recorder = SlowRecorder(delay=2.0, probe=take_over)
    pace = Pace(concurrency=1, rate=100, lease=timedelta(seconds=1.5))
    try:
        for server in serving(recorder):
            report = asyncio.run(
                deliver_pending(store, options(server, timeout=5), SystemClock(), pace)
            )
            got = server.recorder.by_recipient()
        assert report.sent == 2 and sorted(got) == sorted(list(people)[:2])
        assert list(sending_rows(other)) == [third]
    finally:
        other.close()
