"""Failed rows listed and re-queued, status lines and the `deliveries` commands, and the
migration that gave message bytes their own table, on a real store (SQLite, and
PostgreSQL where FEEDSVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text

from feedsvc.cli import main
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery import Pace, deliver_pending
from feedsvc.digests import DeliveryStatus
from feedsvc.status import collect_status, format_status
from feedsvc.storage import Store, open_store
from feedsvc.storage.deliveries import delivery_summary, list_deliveries, requeue_failed
from feedsvc.storage.delivery_claims import claim_due
from feedsvc.storage.engine import make_engine, run_alembic_upgrade
from feedsvc.storage.schema import digests
from tests.digest_helpers import add_subscriber, digest_settings, site_mapping
from tests.smtp_server import serving
from tests.test_smtp_faults import options, prepare
from tests.test_storage_digests import MORNING


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
        lines = format_status(collect_status(settings, store))
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
        assert "1 failed deliveries re-queued" in retried.stdout
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
