"""/metrics send timings: read from the store, so a sender in another process shows too."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, deliver_pending
from feedsvc.storage import Store
from feedsvc.web.metrics import Metrics
from tests.delivery.test_smtp_faults import options, prepare
from tests.digest_helpers import digest_settings
from tests.smtp_server import serving
from tests.storage.test_digests import MORNING


def test_metrics_show_send_timings_after_messages_go_out(
    store: Store, tmp_path: Path, store_url: str
) -> None:
    settings: Settings = digest_settings(tmp_path, storage={"url": store_url})
    before = Metrics(store, FixedClock(MORNING)).render().decode()
    assert "feedsvc_delivery_send_seconds" not in before  # nothing sent yet: no timings
    assert 'feedsvc_digests_sent{frequency="daily"} 0.0' in before
    prepare(store, settings)
    queued = Metrics(store, FixedClock(MORNING)).render().decode()
    assert sum(_counts(queued, "feedsvc_digests")) > 0
    assert sum(_counts(queued, "feedsvc_digests_sent")) == 0
    for server in serving():
        asyncio.run(deliver_pending(store, options(server), FixedClock(MORNING), Pace()))
    text = Metrics(store, FixedClock(MORNING)).render().decode()
    for name in ("feedsvc_delivery_send_seconds", "feedsvc_delivery_wait_seconds"):
        for quantile in ("0.5", "0.9", "0.99"):
            match = re.search(rf'^{name}{{quantile="{quantile}"}} (\S+)$', text, re.MULTILINE)
            assert match is not None, (name, quantile)
            assert float(match.group(1)) >= 0
    assert 'feedsvc_deliveries{status="sent"} 4.0' in text
    # From the store: a new Metrics (a restarted daemon) counts the same digests as sent.
    assert _counts(text, "feedsvc_digests_sent") == _counts(queued, "feedsvc_digests")


def _counts(text: str, name: str) -> list[float]:
    """The values of ``name`` by frequency, in the order of the exposition."""
    found = re.findall(rf'^{name}{{frequency="\w+"}} (\S+)$', text, re.MULTILINE)
    assert len(found) == 3, text
    return [float(value) for value in found]
