"""POST /webhooks/{ses,postmark,sendgrid,mailgun} through the ASGI app, with our own keys:
correctly signed events change their subscriber once; unsigned or wrongly signed requests
get 401 and change nothing. SES comes through SNS, whose certificate the test serves on
loopback (an HTTP server in this process, trusted by bounces.webhooks.ses.certificate_hosts)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from feedsvc.clock import FixedClock
from feedsvc.errors import ConfigError
from feedsvc.storage import Store, open_store
from feedsvc.storage.schema import inbound_signals, subscribers
from feedsvc.web import create_app
from tests.digest_helpers import add_subscriber
from tests.web_helpers import web_settings

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TOPIC = "arn:aws:sns:ap-northeast-2:123456789012:feedsvc-bounces"
POSTMARK_PASSWORD = "포스트마크-암호-123"
MAILGUN_KEY = "key-mailgun-서명-0123456789"


# --- our own keys ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.ap-northeast-2.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class _Served:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requested: list[str] = []


@pytest.fixture
def cert_server(sns_key: tuple[rsa.RSAPrivateKey, bytes]) -> Iterator[tuple[str, _Served]]:
    served = _Served()
    served.files["/SimpleNotificationService-test.pem"] = sns_key[1]
    served.files["/confirm"] = b"<ConfirmSubscriptionResponse/>"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requested.append(self.path.split("?")[0])
            body = served.files.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


# --- the site ----------------------------------------------------------------------------------


class Site:
    def __init__(self, tmp_path: Path, store_url: str, sendgrid_public: str) -> None:
        webhooks = {
            "ses": {"topic_arns": [TOPIC], "certificate_hosts": ["127.0.0.1"]},
            "postmark": {"username": "postmark"},
            "sendgrid": {"public_key": sendgrid_public},
            "mailgun": {"signing_key_env": "FEEDSVC_TEST_MAILGUN_KEY"},
        }
        self.settings = web_settings(tmp_path, store_url, bounces={"webhooks": webhooks})
        self.store: Store = open_store(self.settings.storage_url)
        with self.store.write() as conn:
            self.minji = add_subscriber(conn, "minji@example.kr")
            self.jiwoo = add_subscriber(conn, "지우@example.kr")
        self.app = create_app(self.settings, self.store, FixedClock(NOW), None)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.post(path, content=body, headers=headers or {})

        return asyncio.run(go())

    def status(self, subscriber_id: int) -> str:
        with self.store.read() as conn:
            query = select(subscribers.c.status).where(subscribers.c.id == subscriber_id)
            return str(conn.execute(query).scalar_one())

    def signals(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(inbound_signals)).scalar_one())


@pytest.fixture
def site(
    tmp_path: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid_key: ec.EllipticCurvePrivateKey,
) -> Iterator[Site]:
    monkeypatch.setenv("FEEDSVC_SECRET_KEY", "웹훅-테스트-비밀-키-0123456789abcdef")
    monkeypatch.setenv("FEEDSVC_POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD)
    monkeypatch.setenv("FEEDSVC_TEST_MAILGUN_KEY", MAILGUN_KEY)
    public = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    made = Site(tmp_path, store_url, base64.b64encode(public).decode())
    try:
        yield made
    finally:
        made.store.close()


# --- Postmark ----------------------------------------------------------------------------------


def _postmark(
    record: dict[str, Any], password: str = POSTMARK_PASSWORD
) -> tuple[bytes, dict[str, str]]:
    auth = base64.b64encode(f"postmark:{password}".encode()).decode()
    return json.dumps(record, ensure_ascii=False).encode(), {"Authorization": f"Basic {auth}"}


def test_postmark_hard_bounce_and_complaint_with_the_right_credentials(site: Site) -> None:
    body, headers = _postmark(
        {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce",
         "Email": "minji@example.kr", "Details": "smtp;550 5.1.1 The email account does not exist"}
    )  # fmt: skip
    assert site.post("/webhooks/postmark", body, headers).status_code == 200
    assert site.post("/webhooks/postmark", body, headers).status_code == 200  # a retry
    complaint, headers = _postmark(
        {
            "RecordType": "SpamComplaint",
            "ID": 42,
            "Type": "SpamComplaint",
            "Email": "지우@example.kr",
        }
    )
    assert site.post("/webhooks/postmark", complaint, headers).status_code == 200
    assert (site.status(site.minji), site.status(site.jiwoo)) == ("bounced", "complained")
    assert site.signals() == 2


def test_postmark_without_or_with_wrong_credentials_is_401(site: Site) -> None:
    body, _ = _postmark({"RecordType": "SpamComplaint", "ID": 1, "Email": "minji@example.kr"})
    assert site.post("/webhooks/postmark", body).status_code == 401
    _, wrong = _postmark({}, password="틀린-암호")
    assert site.post("/webhooks/postmark", body, wrong).status_code == 401
    assert site.status(site.minji) == "active" and site.signals() == 0


# --- SendGrid ----------------------------------------------------------------------------------


def _sendgrid(
    key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]]
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    timestamp = "1733389200"
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def test_sendgrid_signed_events_apply_and_a_forged_signature_is_401(
    site: Site, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    events = [
        {"email": "minji@example.kr", "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 user unknown", "sg_event_id": "ZTE4ZDA"},
        {"email": "지우@example.kr", "event": "spamreport", "sg_event_id": "c3BhbQ"},
        {"email": "minji@example.kr", "event": "delivered", "sg_event_id": "ZGVs"},
    ]  # fmt: skip
    body, headers = _sendgrid(sendgrid_key, events)
    forged = dict(headers, **{"X-Twilio-Email-Event-Webhook-Timestamp": "1733389201"})
    assert site.post("/webhooks/sendgrid", body, forged).status_code == 401
    other = ec.generate_private_key(ec.SECP256R1())
    assert site.post("/webhooks/sendgrid", *_sendgrid(other, events)).status_code == 401
    assert site.signals() == 0
    response = site.post("/webhooks/sendgrid", body, headers)
    assert response.status_code == 200 and response.json() == {"received": 3}
    assert (site.status(site.minji), site.status(site.jiwoo)) == ("bounced", "complained")


# --- Mailgun -----------------------------------------------------------------------------------


def _mailgun(event: dict[str, Any], key: str = MAILGUN_KEY) -> bytes:
    timestamp, token = "1733389200", "7c4b2d0e9a"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
               "event-data": event}  # fmt: skip
    return json.dumps(payload, ensure_ascii=False).encode()


def test_mailgun_permanent_failure_by_our_message_id_and_wrong_key_is_401(site: Site) -> None:
    failed = {
        "event": "failed", "severity": "permanent", "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "recipient": "minji@example.kr",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
        "message": {"headers": {"message-id": "digest-1.subscriber-1@example.kr"}},
    }  # fmt: skip
    assert site.post("/webhooks/mailgun", _mailgun(failed, key="key-wrong")).status_code == 401
    unsigned = json.dumps({"event-data": failed}).encode()
    assert site.post("/webhooks/mailgun", unsigned).status_code == 401
    assert site.signals() == 0
    assert site.post("/webhooks/mailgun", _mailgun(failed)).status_code == 200
    temporary = dict(failed, severity="temporary", id="other")
    assert site.post("/webhooks/mailgun", _mailgun(temporary)).status_code == 200
    assert site.status(site.minji) == "bounced"


# --- Amazon SES through SNS --------------------------------------------------------------------


def _sns(key: rsa.RSAPrivateKey, base: str, fields: dict[str, str], version: str = "2") -> bytes:
    names = (
        ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        if fields["Type"] == "Notification"
        else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    )
    signed = "".join(f"{n}\n{fields[n]}\n" for n in names if n in fields)
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()
    signature = key.sign(signed.encode(), padding.PKCS1v15(), digest)
    message = dict(
        fields,
        SignatureVersion=version,
        Signature=base64.b64encode(signature).decode(),
        SigningCertURL=f"{base}/SimpleNotificationService-test.pem",
    )
    return json.dumps(message, ensure_ascii=False).encode()


def _ses_bounce(email: str) -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bouncedRecipients": [
                    {
                        "emailAddress": email,
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
            },
            "mail": {"messageId": "0100018c-ses", "commonHeaders": {"messageId": "<x@example.kr>"}},
        }
    )


def test_ses_subscription_is_confirmed_and_signed_notifications_apply(
    site: Site, sns_key: tuple[rsa.RSAPrivateKey, bytes], cert_server: tuple[str, _Served]
) -> None:
    base, served = cert_server
    key = sns_key[0]
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "t0k3n",
        "TopicArn": TOPIC, "Message": "You have chosen to subscribe…",
        "SubscribeURL": f"{base}/confirm?Action=ConfirmSubscription&Token=t0k3n",
        "Timestamp": "2026-12-05T09:00:00.000Z",
    }  # fmt: skip
    assert site.post("/webhooks/ses", _sns(key, base, confirmation)).status_code == 200
    assert "/confirm" in served.requested
    notification = {
        "Type": "Notification", "MessageId": "n-1", "TopicArn": TOPIC,
        "Message": _ses_bounce("minji@example.kr"), "Timestamp": "2026-12-05T09:01:00.000Z",
    }  # fmt: skip
    for version in ("1", "2"):  # SNS's SHA1 and SHA256 signatures; the second is a retry
        response = site.post("/webhooks/ses", _sns(key, base, notification, version))
        assert response.status_code == 200
    assert site.status(site.minji) == "bounced" and site.signals() == 1


def test_ses_forged_or_foreign_messages_are_401(
    site: Site, sns_key: tuple[rsa.RSAPrivateKey, bytes], cert_server: tuple[str, _Served]
) -> None:
    base, _ = cert_server
    key = sns_key[0]
    notification = {
        "Type": "Notification", "MessageId": "n-2", "TopicArn": TOPIC,
        "Message": _ses_bounce("minji@example.kr"), "Timestamp": "2026-12-05T09:01:00.000Z",
    }  # fmt: skip
    good = json.loads(_sns(key, base, notification))
    tampered = dict(good, Message=_ses_bounce("지우@example.kr"))
    assert site.post("/webhooks/ses", json.dumps(tampered).encode()).status_code == 401
    elsewhere = dict(good, SigningCertURL="https://evil.example.com/cert.pem")
    assert site.post("/webhooks/ses", json.dumps(elsewhere).encode()).status_code == 401
    other_topic = _sns(key, base, dict(notification, TopicArn=TOPIC + "-other"))
    assert site.post("/webhooks/ses", other_topic).status_code == 401
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert site.post("/webhooks/ses", _sns(stranger, base, notification)).status_code == 401
    assert site.signals() == 0 and site.status(site.minji) == "active"


def test_a_body_over_the_webhook_limit_is_413(site: Site) -> None:
    body = b"[" + b" " * (1024 * 1024 + 1) + b"]"
    assert site.post("/webhooks/sendgrid", body).status_code == 413


def test_a_configured_provider_without_its_secret_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.web.webhooks import Webhooks

    monkeypatch.delenv("FEEDSVC_POSTMARK_WEBHOOK_PASSWORD", raising=False)
    settings = web_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 's.db'}",
        bounces={"webhooks": {"postmark": {"username": "postmark"}}},
    )
    with pytest.raises(ConfigError) as caught:
        Webhooks.from_settings(settings, {})
    assert "bounces.webhooks.postmark.password_env" in str(caught.value)


def test_unconfigured_providers_have_no_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSVC_SECRET_KEY", "웹훅-테스트-비밀-키-0123456789abcdef")
    settings = web_settings(tmp_path, f"sqlite:///{tmp_path / 's.db'}")
    store = open_store(settings.storage_url)
    try:
        app = create_app(settings, store, FixedClock(NOW), None)

        async def go() -> int:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return (await c.post("/webhooks/mailgun", content=b"{}")).status_code

        assert asyncio.run(go()) in (404, 405)
    finally:
        store.close()
