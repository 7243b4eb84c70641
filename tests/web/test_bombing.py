"""Subscription bombing (issue 14, item 6): sign-ups from many client addresses for one
mailbox, or for many, send at most the caps; proxy headers count only from the proxies
listed in ``server.forwarded_allow_ips``; the web-supplied name never reaches the
confirmation email, and bidi controls never reach a stored name.

Confirmations go to a real aiosmtpd server over SMTP, as ``feedsvc run`` sends them."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from feedsvc.clock import FixedClock
from feedsvc.config import settings_from_mapping
from feedsvc.daemon.service import Listen, Service, proxy_options
from feedsvc.delivery.smtp import SmtpBackend, SmtpOptions
from feedsvc.errors import ConfigError
from feedsvc.newsletter.subscribers import clean_name
from feedsvc.storage import open_store
from feedsvc.storage.subscribers import get_subscriber
from feedsvc.web import create_app
from tests.cli.test_subscribers import Site
from tests.smtp_server import SmtpServer, serving
from tests.web_helpers import WebSite, make_site, web_settings

SPAM_NAME = "WIN $1000 NOW at http://spam.example/claim"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from serving()


def smtp_site(tmp_path: Path, store_url: str, server: SmtpServer, **server_keys: Any) -> WebSite:
    """A built site whose app sends confirmations over SMTP to ``server``, with the
    production rate limit (no ``subscribe_limit`` given)."""
    site = make_site(tmp_path, store_url, feed_check_every=0.0)
    smtp_config = {"host": server.host, "port": server.port, "tls": "none"}
    settings = web_settings(
        tmp_path,
        store_url,
        delivery={"backend": "smtp", "smtp": smtp_config},
        server=server_keys,
    )
    backend = SmtpBackend(SmtpOptions.from_settings(settings))
    app = create_app(settings, site.store, site.clock, backend, tokens=site.tokens)
    return replace(site, settings=settings, app=app)


def sign_ups(site: WebSite, requests: list[tuple[str, dict[str, str], dict[str, str]]]) -> set[str]:
    """POST /subscribe (JSON) for each (client IP, headers, body); the distinct answers."""

    async def go() -> set[str]:
        answers: set[str] = set()
        for ip, headers, body in requests:
            transport = httpx.ASGITransport(app=site.app, client=(ip, 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                response = await client.post("/subscribe", json=body, headers=headers)
            answers.add(f"{response.status_code} {response.text}")
        return answers

    return anyio.run(go)


def received(server: SmtpServer) -> list[EmailMessage]:
    return [
        email.message_from_bytes(r.data, policy=email.policy.default)
        for r in server.recorder.received
    ]


def test_two_hundred_sign_ups_of_one_mailbox_from_many_addresses_send_one_confirmation(
    tmp_path: Path, store_url: str, smtp: SmtpServer
) -> None:
    """200 sign-ups for victim+N@example.com, each from another IPv6 /128 of one /64 and
    with another X-Forwarded-For: one confirmation (one mailbox, +tag ignored); every
    accepted request gets the same answer whether or not a mail went out."""
    site = smtp_site(tmp_path, store_url, smtp)
    try:
        requests = [
            (
                f"2001:db8:7:7::{n + 1:x}",
                {"X-Forwarded-For": f"198.51.100.{n % 250 + 1}"},
                {"email": f"victim+{n}@example.com", "name": SPAM_NAME},
            )
            for n in range(200)
        ]
        answers = sign_ups(site, requests)
        assert {a.split(" ", 1)[0] for a in answers} <= {"202", "429"}
        assert len([a for a in answers if a.startswith("202")]) == 1  # no oracle
        mails = received(smtp)
        assert len(mails) == 1
        assert mails[0]["To"].addresses[0].display_name == ""
    finally:
        site.store.close()


def test_sign_ups_for_many_mailboxes_from_many_networks_stop_at_the_global_cap(
    tmp_path: Path, store_url: str, smtp: SmtpServer
) -> None:
    """200 sign-ups for 200 mailboxes, each from its own IPv6 /64 or IPv4 address: at
    most ``server.confirmations_per_minute`` confirmations that minute, more the next."""
    site = smtp_site(tmp_path, store_url, smtp, confirmations_per_minute=12)
    try:
        requests = [
            (
                f"2001:db8:{n + 1:x}::1" if n % 2 else f"203.0.113.{n % 250 + 1}",
                {"X-Forwarded-For": f"2001:db8:ffff::{n + 1:x}"},
                {"email": f"target{n}@example.com", "name": SPAM_NAME},
            )
            for n in range(200)
        ]
        answers = sign_ups(site, requests)
        assert len(answers) == 1 and answers.pop().startswith("202")  # the same answer
        assert len(received(smtp)) == 12
        site.clock.advance(timedelta(minutes=1, seconds=1))
        sign_ups(site, [("192.0.2.1", {}, {"email": "later@example.com"})])
        assert len(received(smtp)) == 13
    finally:
        site.store.close()


def test_the_confirmation_carries_neither_the_name_nor_bidi_controls(
    tmp_path: Path, store_url: str, smtp: SmtpServer
) -> None:
    site = smtp_site(tmp_path, store_url, smtp)
    try:
        sign_ups(
            site,
            [
                (
                    "192.0.2.10",
                    {},
                    {"email": "minji@example.kr", "name": f"김\u202e민지 {SPAM_NAME}"},
                )
            ],
        )
        (mail,) = received(smtp)
        assert str(mail["To"]) == "minji@example.kr"
        raw = smtp.recorder.received[0].data
        assert b"spam.example" not in raw and b"WIN $1000" not in raw
        for part in ("plain", "html"):
            body = mail.get_body((part,))
            assert body is not None and "spam.example" not in body.get_content()
        with site.store.read() as conn:
            stored = get_subscriber(conn, "minji@example.kr")
        assert stored is not None and stored.name == f"김민지 {SPAM_NAME}"
    finally:
        site.store.close()


def test_bidi_controls_are_stripped_from_names_on_add_and_import(tmp_path: Path) -> None:
    assert clean_name(f"{BIDI}구독자 김\u202e민지{BIDI}") == "구독자 김민지"
    assert clean_name(BIDI) is None
    site = Site(tmp_path / "사이트", f"sqlite:///{tmp_path / 'state.db'}")
    added = site.run("add", "minji@example.kr", "--name", "\u202e구독자 김민지\u2066")
    assert added.exit_code == 0, added.output
    path = site.write(
        "구독자.csv", "email,name\njisu@example.kr,\u202b구독자 박지수\u200f\n", "utf-8"
    )
    imported = site.run("import", str(path))
    assert imported.exit_code == 0, imported.output
    assert site.one("minji@example.kr")["name"] == "구독자 김민지"
    assert site.one("jisu@example.kr")["name"] == "구독자 박지수"


def test_ipv6_clients_share_a_rate_limit_bucket_per_64() -> None:
    from feedsvc.newsletter.subscribers import mailbox_of
    from feedsvc.web.ratelimit import client_key

    assert client_key("2001:db8:7:7::1") == client_key("2001:db8:7:7:ffff:1:2:3")
    assert client_key("2001:db8:7:7::1") != client_key("2001:db8:7:8::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9") == "203.0.113.9"
    assert client_key(None) == client_key("") == "-"
    assert mailbox_of("victim+7@example.com") == mailbox_of("victim@example.com")
    assert mailbox_of("victim+7@example.com") != mailbox_of("victim@example.org")


# --- proxy headers, in the real service (uvicorn) ---------------------------------------


def consent_ip_through_the_service(tmp_path: Path, **server_keys: Any) -> str | None:
    """POST /subscribe to a whole ``Service`` (uvicorn on loopback) with an
    X-Forwarded-For header; the client IP recorded for the sign-up."""
    settings = web_settings(
        tmp_path, f"sqlite:///{tmp_path / 'state.db'}", server={"port": 0, **server_keys}
    )
    store = open_store(settings.storage_url)
    service = Service(settings, store, FixedClock(), Listen("127.0.0.1", 0))

    async def scenario() -> None:
        running = asyncio.create_task(service.run())
        while not service.server.started:
            assert not running.done(), running.result()
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{service.server_port()}"
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.post(
                "/subscribe",
                json={"email": "proxy@example.kr"},
                headers={"X-Forwarded-For": "198.51.100.77"},
            )
            assert answer.status_code == 202
        service.stop.set()
        assert await asyncio.wait_for(running, 20) == 0

    try:
        asyncio.run(scenario())
        with store.read() as conn:
            found = get_subscriber(conn, "proxy@example.kr")
        assert found is not None
        return found.consent_ip
    finally:
        store.close()


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_listed(tmp_path: Path) -> None:
    assert consent_ip_through_the_service(tmp_path / "기본") == "127.0.0.1"
    listed = consent_ip_through_the_service(tmp_path / "프록시", forwarded_allow_ips=["127.0.0.1"])
    assert listed == "198.51.100.77"


def test_forwarded_allow_ips_takes_addresses_and_networks_and_names_a_bad_entry() -> None:
    default = settings_from_mapping({})
    assert default.server.forwarded_allow_ips == ()
    assert proxy_options(default) == {"proxy_headers": False}
    listed = settings_from_mapping(
        {"server": {"forwarded_allow_ips": "127.0.0.1, 10.1.2.3/8, ::1"}}
    )
    assert proxy_options(listed) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["127.0.0.1/32", "10.0.0.0/8", "::1/128"],
    }
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"server": {"forwarded_allow_ips": ["127.0.0.1", "프록시.local"]}})
    message = str(caught.value)
    assert "server.forwarded_allow_ips" in message and "프록시.local" in message
    with pytest.raises(ConfigError, match=r"server\.confirmations_per_minute"):
        settings_from_mapping({"server": {"confirmations_per_minute": 0}})
