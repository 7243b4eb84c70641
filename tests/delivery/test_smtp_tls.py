"""TLS with the SMTP server (aiosmtpd with certificates from a test CA made by trustme):
a certificate that cannot be trusted pauses sending with a reason that `feedsvc status`
shows, and nothing is marked sent; a good one carries every message, pipelined or not."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from feedsvc.cli.status import collect_status, format_status
from feedsvc.clock import FixedClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending
from feedsvc.messages import Texts
from feedsvc.storage import Store
from feedsvc.storage.deliveries import delivery_summary
from tests.delivery.test_smtp_faults import PEOPLE, options, prepare, rows
from tests.digest_helpers import digest_settings
from tests.smtp_server import Recorder, SmtpServer, serving
from tests.storage.test_digests import MORNING


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return digest_settings(tmp_path, storage={"url": store_url})


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def starttls_server(ca: trustme.CA, *names: str, pipelining: bool = False) -> Iterator[SmtpServer]:
    yield from serving(Recorder(pipelining=pipelining), tls_context=server_context(ca, *names))


def send(store: Store, server: SmtpServer, **changes: Any) -> SendReport:
    pace = Pace(concurrency=2, rate=1000)
    opts = options(server, timeout=5.0, **changes)
    return asyncio.run(deliver_pending(store, opts, FixedClock(MORNING), pace))


def assert_paused_and_untouched(store: Store, settings: Settings, report: SendReport) -> str:
    """Sending paused with a reason naming host:port; no row sent, tried or lost; and
    `feedsvc status` says so. Returns the status text."""
    assert report.paused is not None and report.sent == 0
    assert "TLS with the SMTP server 127.0.0.1:" in report.paused
    stored = rows(store)
    assert sorted(stored) == sorted(PEOPLE)
    assert {r.status for r in stored.values()} == {"pending"}
    assert {r.attempts for r in stored.values()} == {0}
    with store.read() as conn:
        summary = delivery_summary(conn)
    assert summary.paused is not None and summary.paused.reason == report.paused
    text = format_status(Texts("en"), collect_status(settings, store))
    assert f"sending paused since {MORNING.isoformat()}: TLS with the SMTP server" in text
    return text


def test_a_certificate_from_an_unknown_authority_pauses_sending(
    store: Store, settings: Settings, ca: trustme.CA
) -> None:
    prepare(store, settings)
    for server in starttls_server(ca, "127.0.0.1"):
        report = send(store, server, tls="starttls")  # the test CA is not trusted
        assert server.recorder.received == []
    assert report.paused is not None and "CERTIFICATE_VERIFY_FAILED" in report.paused
    assert "check delivery.smtp.host" in report.paused
    assert_paused_and_untouched(store, settings, report)


def test_a_certificate_for_another_host_pauses_sending(
    store: Store, settings: Settings, ca: trustme.CA, ca_file: str
) -> None:
    prepare(store, settings)
    for server in starttls_server(ca, "mail.example.kr"):
        report = send(store, server, tls="starttls", cert_bundle=ca_file)
        assert server.recorder.received == []
    assert report.paused is not None and "127.0.0.1" in report.paused
    assert_paused_and_untouched(store, settings, report)


def test_implicit_tls_against_a_server_without_tls_pauses_sending(
    store: Store, settings: Settings, ca_file: str
) -> None:
    prepare(store, settings)
    for server in serving():
        report = send(store, server, tls="implicit", cert_bundle=ca_file)
    assert_paused_and_untouched(store, settings, report)


@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelining"])
def test_starttls_with_a_trusted_certificate_sends_every_message_and_ends_the_pause(
    store: Store, settings: Settings, ca: trustme.CA, ca_file: str, pipelining: bool
) -> None:
    prepare(store, settings)
    for server in starttls_server(ca, "mail.example.kr"):
        assert send(store, server, tls="starttls", cert_bundle=ca_file).paused is not None
    assert "sending paused" in format_status(Texts("en"), collect_status(settings, store))
    for server in starttls_server(ca, "127.0.0.1", pipelining=pipelining):
        report = send(store, server, tls="starttls", cert_bundle=ca_file)
        got = server.recorder.by_recipient()
    assert (report.sent, report.paused) == (len(PEOPLE), None)
    assert sorted(got) == sorted(PEOPLE)
    assert {r.status for r in rows(store).values()} == {"sent"}
    assert "sending paused" not in format_status(Texts("en"), collect_status(settings, store))


def test_implicit_tls_with_a_trusted_certificate_sends_every_message(
    store: Store, settings: Settings, ca: trustme.CA, ca_file: str
) -> None:
    prepare(store, settings)
    for server in serving(Recorder(pipelining=True), ssl_context=server_context(ca, "127.0.0.1")):
        report = send(store, server, tls="implicit", cert_bundle=ca_file)
        got = server.recorder.by_recipient()
    assert report.sent == len(PEOPLE) and sorted(got) == sorted(PEOPLE)
