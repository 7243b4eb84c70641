"""Every kind of message feedsvc sends, made through the real code paths, read back with
the email package's strict policy: no header may be empty or unparsable, and Date is the
moment the project's clock gave, in the site's zone (issue 13, item 3).

The kinds: the double opt-in confirmation (a sign-up through the web app, handed to the
outbox or to a real SMTP server) and the digest (``feedsvc digest send`` to the outbox,
DKIM-signed, and to a real SMTP server). ``digest preview`` writes HTML, not a message.
"""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedsvc.cli.main import main
from feedsvc.config import load_settings
from feedsvc.delivery.mime import assemble_encoded
from feedsvc.delivery.smtp import SmtpBackend, SmtpOptions
from feedsvc.storage import open_store
from feedsvc.storage.announcements import note_published
from feedsvc.web import create_app
from tests.conftest import TESTS_DIR
from tests.digest_helpers import T0, add_subscriber, sample_posts, site_mapping, store_post
from tests.smtp_server import SmtpServer, serving
from tests.web_helpers import NOW, WebSite, confirm_link, make_site, web_settings

STRICT = policy.default.clone(raise_on_defect=True)
SEOUL = timedelta(hours=9)
DATA = TESTS_DIR / "data"


def strictly_parsed(data: bytes) -> EmailMessage:
    """``data`` parsed with the strict policy; fails on any defect and on any header that
    is empty on the wire or unparsable, in the message and in each of its parts."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t").split("\r\n")
    for line in unfolded:
        name, colon, value = line.partition(":")
        assert colon and value.strip(), f"empty or broken header line {line!r}"
    message = email.message_from_bytes(data, policy=STRICT)
    assert isinstance(message, EmailMessage)
    for part in message.walk():
        assert not part.defects, part.defects
        for name, value in part.items():
            header: Any = value
            assert not header.defects, f"{name}: {value!r}: {header.defects}"
            assert str(value).strip(), f"{name} is empty"
    assert message["Date"] is not None
    return message


def assert_date(message: EmailMessage, moment: datetime) -> None:
    """Date parses to ``moment``, written with Seoul's offset."""
    sent = parsedate_to_datetime(str(message["Date"]))
    assert sent == moment
    assert sent.utcoffset() == SEOUL
    assert message["Date"].datetime == moment


# --- confirmation: a sign-up through the web app --------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from serving()


def _smtp_site(site: WebSite, root: Path, store_url: str, server: SmtpServer) -> WebSite:
    """The same site with ``delivery.backend: smtp`` to ``server`` (as ``feedsvc run`` has)."""
    smtp_config = {"host": server.host, "port": server.port, "tls": "none"}
    settings = web_settings(root, store_url, delivery={"backend": "smtp", "smtp": smtp_config})
    backend = SmtpBackend(SmtpOptions.from_settings(settings))
    app = create_app(settings, site.store, site.clock, backend, tokens=site.tokens)
    return replace(site, settings=settings, app=app)


@pytest.mark.parametrize("backend", ["outbox", "smtp"])
def test_the_confirmation_has_every_header_valid_and_dated_by_the_clock(
    tmp_path: Path, store_url: str, smtp: SmtpServer, backend: str
) -> None:
    site = make_site(tmp_path, store_url, feed_check_every=0.0)
    try:
        if backend == "smtp":
            site = _smtp_site(site, tmp_path, store_url, smtp)
        moment = NOW + timedelta(hours=5, minutes=17, seconds=23)  # 17:17:23 in Seoul
        site.clock.moment = moment
        data = {"email": "minji@example.kr", "name": "김민지", "csrf": site.csrf()}
        assert site.post("/subscribe", data=data).status_code == 200
        if backend == "smtp":
            [received] = smtp.recorder.received
            raw = received.data
        else:
            [path] = sorted(site.outbox.glob("*.eml"))
            raw = path.read_bytes()
        message = strictly_parsed(raw)
        assert_date(message, moment)
        assert str(message["Date"]) == "Sat, 01 Jun 2024 17:17:23 +0900"
        assert "구독을 확인해 주세요" in str(message["Subject"])
        assert str(message["To"]) == "minji@example.kr"  # the form's name is left out
        assert "/confirm/" in confirm_link(message)
    finally:
        site.store.close()


# --- digest: `feedsvc digest send` ----------------------------------------------------------

SENT_AT = "2024-06-01T09:17:23+09:00"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)


def _digest_site(folder: Path, store_url: str, **sections: Any) -> Path:
    """A config for a Korean site on ``store_url`` with posts and two subscribers."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    raw = site_mapping(storage={"url": store_url}, **sections)
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    store = open_store(load_settings(config).storage_url)
    try:
        with store.write() as conn:
            for post in sample_posts():
                store_post(conn, post)
            add_subscriber(conn, "minji@example.kr", categories=("부산",))
            add_subscriber(conn, "jisu@example.kr", name="박지수 (편집국)")
            note_published(
                conn, [p.meta for p in sample_posts()], T0 + timedelta(hours=1), flood_limit=50
            )
    finally:
        store.close()
    return config


def _send_digests(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_NOW", SENT_AT)
    result = CliRunner().invoke(main, ["--config", str(config), "digest", "send"])
    assert result.exit_code == 0, result.output
    assert "2 messages rendered" in result.stdout


@pytest.mark.parametrize("dkim", [False, True])
def test_digests_in_the_outbox_have_every_header_valid_and_dated_by_the_clock(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, dkim: bool
) -> None:
    sections: dict[str, Any] = {}
    if dkim:
        key = {
            "domain": "example.kr",
            "selector": "feedsvc",
            "private_key_path": str(DATA / "dkim-test.key.pem"),
        }
        sections["delivery"] = {"dkim": key}
    config = _digest_site(tmp_path / "부산", store_url, **sections)
    _send_digests(config, monkeypatch)
    files = sorted((tmp_path / "부산" / "outbox").glob("*.eml"))
    assert len(files) == 2
    moment = datetime(2024, 6, 1, 0, 17, 23, tzinfo=UTC)
    for path in files:
        message = strictly_parsed(path.read_bytes())
        assert_date(message, moment)
        assert (message["DKIM-Signature"] is not None) is dkim


def test_digests_over_smtp_have_every_header_valid_and_dated_by_the_clock(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer
) -> None:
    delivery = {"backend": "smtp", "smtp": {"host": smtp.host, "port": smtp.port, "tls": "none"}}
    config = _digest_site(tmp_path / "부산", store_url, delivery=delivery)
    _send_digests(config, monkeypatch)
    received = smtp.recorder.received
    assert sorted(r.recipient for r in received) == ["jisu@example.kr", "minji@example.kr"]
    for item in received:
        message = strictly_parsed(item.data)
        assert_date(message, datetime(2024, 6, 1, 0, 17, 23, tzinfo=UTC))
        assert str(message["Date"]) == "Sat, 01 Jun 2024 09:17:23 +0900"


# --- the header block -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["", "  ", "a\r\nBcc: x@example.kr", "a\nb", "a\rb", "a\r\n", "a\r\n\r\nbody"]
)
def test_an_empty_or_unfolded_header_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a header value for Subject"):
        assemble_encoded([("Subject", value)], "t", "h", "b")
