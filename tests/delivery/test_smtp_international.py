"""Korean addresses over SMTP: a Korean domain goes out in its IDNA form to any server; a
Korean local part needs SMTPUTF8, and where the server lacks it that one row fails with a
reason while every other message goes out (aiosmtpd on loopback, with and without
SMTPUTF8 and PIPELINING)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc.config import Settings
from feedsvc.models import DeliveryStatus
from feedsvc.storage import Store
from tests.delivery.test_smtp_faults import prepare, rows, send
from tests.digest_helpers import digest_settings
from tests.smtp_server import Recorder, SmtpServer, serving

PEOPLE = {
    "독자@example.kr": "김독자",
    "minji@부산.kr": "김민지",
    "jisu@example.kr": "박지수",
}
IDNA_DOMAIN = "minji@xn--or3bi2d.kr"


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": store_url})


@pytest.fixture(params=["lockstep", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "pipelining")


@pytest.fixture
def utf8_server(pipelining: bool) -> Iterator[SmtpServer]:
    yield from serving(Recorder(pipelining=pipelining), enable_SMTPUTF8=True)


@pytest.fixture
def ascii_server(pipelining: bool) -> Iterator[SmtpServer]:
    yield from serving(Recorder(pipelining=pipelining), enable_SMTPUTF8=False)


def test_a_server_with_smtputf8_gets_every_korean_address(
    store: Store, settings: Settings, utf8_server: SmtpServer
) -> None:
    prepare(store, settings, PEOPLE)
    report = send(store, utf8_server)
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    assert sorted(utf8_server.recorder.by_recipient()) == sorted(
        ["독자@example.kr", IDNA_DOMAIN, "jisu@example.kr"]
    )


def test_without_smtputf8_only_the_korean_local_part_fails_and_says_why(
    store: Store, settings: Settings, ascii_server: SmtpServer
) -> None:
    prepare(store, settings, PEOPLE)
    report = send(store, ascii_server)
    assert (report.sent, report.retried, report.failed) == (2, 0, 1)
    assert sorted(ascii_server.recorder.by_recipient()) == sorted([IDNA_DOMAIN, "jisu@example.kr"])
    stored = rows(store)
    failed = stored["독자@example.kr"]
    assert failed.status == DeliveryStatus.FAILED
    assert "SMTPUTF8" in failed.reply and "독자@example.kr" in failed.reply
    assert stored["minji@부산.kr"].status == DeliveryStatus.SENT
