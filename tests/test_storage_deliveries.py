"""Failed rows listed and re-queued, status lines and the `deliveries` commands, on a
real store (SQLite, and PostgreSQL where FEEDSVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery import Pace, deliver_pending
from feedsvc.digests import DeliveryStatus
from feedsvc.status import collect_status, format_status
from feedsvc.storage import Store
from feedsvc.storage.deliveries import delivery_summary, list_deliveries, requeue_failed
from tests.digest_helpers import digest_settings, site_mapping
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
