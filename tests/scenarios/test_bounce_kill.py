"""`feedsvc bounces process` killed with SIGKILL while it reads a big bounce inbox, then
run again: every message is applied exactly once (issue 18's acceptance: a crash while
processing a batch of 500)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from feedsvc.delivery.return_path import ReturnPaths
from feedsvc.storage import open_store
from feedsvc.storage.schema import (
    deliveries,
    digests,
    inbound_signals,
    subscriber_events,
    subscribers,
)
from tests.bounces.test_inbox import NOW, answering
from tests.digest_helpers import site_mapping

pytestmark = pytest.mark.slow

MESSAGES = 2000  # four batches of 500 … well past one: the kill lands inside the run
SECRET = "시크릿-키-" + "k" * 40
TEMPLATE = "bounces+{token}@news.example.kr"


def _site(folder: Path, store_url: str) -> tuple[Path, list[int]]:
    folder.mkdir(parents=True)
    raw = site_mapping(
        storage={"url": store_url},
        delivery={"return_path": TEMPLATE},
        bounces={"inbox_dir": "반송함"},
    )
    config = folder / "config.yaml"
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    store = open_store(store_url)
    try:
        with store.write() as conn:
            conn.execute(
                insert(subscribers),
                [
                    {
                        "email": f"구독자{i}@example.kr",
                        "status": "active",
                        "frequency": "daily",
                        "categories": "[]",
                        "created": NOW,
                        "consent_source": "import",
                    }
                    for i in range(MESSAGES)
                ],
            )
            digest = conn.execute(
                insert(digests)
                .values(
                    frequency="daily",
                    period_key="p",
                    content_key="c",
                    period_end=NOW,
                    post_ids="[]",
                    created_at=NOW,
                )
                .returning(digests.c.id)
            ).scalar_one()
            ids = conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalars()
            conn.execute(
                insert(deliveries),
                [
                    {
                        "digest_id": digest,
                        "subscriber_id": sid,
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": NOW,
                        "created_at": NOW,
                        "sent_at": NOW,
                    }
                    for sid in ids
                ],
            )
            delivery_ids = list(
                conn.execute(select(deliveries.c.id).order_by(deliveries.c.id)).scalars()
            )
    finally:
        store.close()
    return config, delivery_ids


def _fill_inbox(inbox: Path, delivery_ids: list[int]) -> None:
    paths = ReturnPaths(TEMPLATE, (SECRET.encode("utf-8"),))
    inbox.mkdir()
    for n, delivery_id in enumerate(delivery_ids):
        raw = answering("postfix-user-unknown.eml", paths.token(delivery_id))
        (inbox / f"{n:05d}.eml").write_bytes(raw)


def _process(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FEEDSVC_SECRET_KEY": SECRET, "FEEDSVC_NOW": NOW.isoformat()}
    return subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "--config", str(config), "bounces", "process"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_inbox_run_applies_every_bounce_exactly_once(
    tmp_path: Path, store_url: str
) -> None:
    config, delivery_ids = _site(tmp_path / "부산", store_url)
    inbox = tmp_path / "부산" / "반송함"
    _fill_inbox(inbox, delivery_ids)
    processed = inbox / "processed"
    killed_with = -1
    for _ in range(20):  # until a kill lands with part of the inbox read
        running = _process(config)
        deadline = time.monotonic() + 120
        while not (processed.exists() and any(processed.iterdir())):
            if running.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        if running.poll() is None:
            running.send_signal(signal.SIGKILL)
            running.communicate()  # reaps it and closes its pipes
            killed_with = len(list(processed.iterdir()))
            break
        running.communicate()
    assert 0 < killed_with < MESSAGES, "the run was not killed part-way"
    finished = _process(config)
    _, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err
    assert not [p for p in inbox.iterdir() if p.is_file()], "messages left in the inbox"
    assert len(list(processed.iterdir())) == MESSAGES
    store = open_store(store_url)
    try:
        with store.read() as conn:
            signals = conn.execute(select(func.count()).select_from(inbound_signals)).scalar()
            bounced = conn.execute(
                select(subscriber_events.c.subscriber_id, func.count())
                .where(subscriber_events.c.kind == "bounced")
                .group_by(subscriber_events.c.subscriber_id)
            ).all()
            statuses = conn.execute(
                select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
            ).all()
    finally:
        store.close()
    assert signals == MESSAGES
    assert len(bounced) == MESSAGES and {n for _, n in bounced} == {1}
    assert statuses == [("bounced", MESSAGES)]
