"""Bounce and complaint webhooks of email services → signals (pure but for SNS's
certificate, which :mod:`feedsvc.bounces.sns` fetches).

One function per provider reads its request (body and headers), checks its signature
with that provider's secret, and returns its events; a request that is not signed as
the provider signs raises WebhookError(401) before anything is read from the body.

==========  =====================================  =========================================
provider    checked                                events
==========  =====================================  =========================================
Amazon SES  the SNS message signature (SHA1 or     Bounce (Permanent → hard, else soft),
(via SNS)   SHA256, RSA) with the certificate at   Complaint; the topic must be one of
            SigningCertURL on an amazonaws host    ``bounces.webhooks.ses.topic_arns``
Postmark    HTTP Basic credentials                 Bounce (HardBounce, BadEmailAddress →
                                                   hard; AutoResponder … ignored; else soft),
                                                   SpamComplaint
SendGrid    the Signed Event Webhook's ECDSA       bounce (by status), blocked (soft),
            signature over timestamp + body        spamreport, unsubscribe
Mailgun     HMAC-SHA256 of timestamp + token       failed (permanent → by status, temporary
            with the webhook signing key           → soft), complained, unsubscribed
==========  =====================================  =========================================
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feedsvc.bounces.classify import STATUS, is_hard
from feedsvc.errors import WebhookError
from feedsvc.models import SignalKind

MAX_WEBHOOK_BODY = 1024 * 1024  # SendGrid batches events; 1 MB holds a thousand


@dataclass(frozen=True)
class WebhookEvent:
    """One provider event about one recipient."""

    key: str  # provider:event id — a provider's retry of the same event is one signal
    source: str  # ses, postmark, sendgrid, mailgun
    kind: SignalKind
    email: str | None
    message_id: str | None = None  # our Message-ID, when the provider passes it on
    status: str | None = None
    diagnostic: str | None = None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookError(400, f"the body is not JSON ({exc})") from None


def _text(value: object, limit: int = 500) -> str | None:
    if value is None or value == "":
        return None
    text = " ".join(str(value).split())
    return text[:limit]


def kind_of_status(status: str | None, *, permanent: bool) -> SignalKind:
    """Hard only for a permanent failure whose status is about the address (as the
    classifier of bounce mail decides); every other failure is soft."""
    if permanent and is_hard(status):
        return SignalKind.HARD_BOUNCE
    return SignalKind.SOFT_BOUNCE


def _status_in(*texts: object) -> str | None:
    for text in texts:
        found = STATUS.search(str(text or ""))
        if found is not None:
            return ".".join(found.groups())
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


# --- Postmark -------------------------------------------------------------------------------

_POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress"})
_POSTMARK_IGNORED = frozenset(
    {"AutoResponder", "OpenRelayTest", "SpamNotification", "Subscribe", "Unknown"}
)


def postmark_events(
    body: bytes, headers: Mapping[str, str], username: str, password: str
) -> list[WebhookEvent]:
    """Postmark signs nothing: its webhook URL carries HTTP Basic credentials, set in
    Postmark's console (Servers → Webhooks → Add webhook → Basic auth)."""
    expected = base64.b64encode(f"{username}:{password}".encode()).decode()
    given = _header(headers, "authorization").removeprefix("Basic ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookError(401, "wrong or missing HTTP Basic credentials")
    data = _json(body)
    if not isinstance(data, dict):
        raise WebhookError(400, "expected one JSON object (a Postmark webhook record)")
    record = str(data.get("RecordType", ""))
    event_id = str(data.get("ID", "")) or hashlib.sha256(body).hexdigest()
    email = _text(data.get("Email") or data.get("Recipient"))
    detail = _text(data.get("Details") or data.get("Description"))
    if record == "SpamComplaint":
        kind = SignalKind.COMPLAINT
    elif record == "SubscriptionChange" and data.get("SuppressSending"):
        kind = (
            SignalKind.UNSUBSCRIBE
            if data.get("SuppressionReason") == "ManualSuppression"
            else SignalKind.IGNORED
        )
    elif record == "Bounce":
        kind_name = str(data.get("Type", ""))
        if kind_name in _POSTMARK_HARD:
            kind = SignalKind.HARD_BOUNCE
        elif kind_name in _POSTMARK_IGNORED:
            kind = SignalKind.IGNORED
        else:
            kind = SignalKind.SOFT_BOUNCE
    else:
        kind = SignalKind.IGNORED
    status = _status_in(detail)
    return [WebhookEvent(f"postmark:{event_id}", "postmark", kind, email, None, status, detail)]


# --- SendGrid -------------------------------------------------------------------------------


def sendgrid_events(body: bytes, headers: Mapping[str, str], public_key: str) -> list[WebhookEvent]:
    """SendGrid's Signed Event Webhook: an ECDSA (P-256, SHA-256) signature of the
    timestamp header followed by the raw body, under the verification key SendGrid
    shows in its console (Settings → Mail Settings → Event Webhook → Signature)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = _header(headers, "x-twilio-email-event-webhook-signature")
    timestamp = _header(headers, "x-twilio-email-event-webhook-timestamp")
    if not signature or not timestamp:
        raise WebhookError(401, "the request is not signed (no SendGrid signature headers)")
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookError(401, "the SendGrid signature does not match") from None
    data = _json(body)
    if not isinstance(data, list):
        raise WebhookError(400, "expected a JSON array of SendGrid events")
    return [event for item in data if (event := _sendgrid_event(item)) is not None]


def _sendgrid_event(item: object) -> WebhookEvent | None:
    if not isinstance(item, dict):
        return None
    name = str(item.get("event", ""))
    event_id = (
        str(item.get("sg_event_id", ""))
        or hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
    )
    reason = _text(item.get("reason"))
    status = _status_in(item.get("status"), reason)
    if name == "bounce":
        blocked = item.get("type") == "blocked"
        kind = kind_of_status(status, permanent=not blocked)
    elif name == "spamreport":
        kind = SignalKind.COMPLAINT
    elif name in ("unsubscribe", "group_unsubscribe"):
        kind = SignalKind.UNSUBSCRIBE
    else:  # delivered, deferred, dropped (SendGrid's own suppression), opens …
        kind = SignalKind.IGNORED
    message_id = _text(item.get("smtp-id"))
    email = _text(item.get("email"))
    return WebhookEvent(f"sendgrid:{event_id}", "sendgrid", kind, email, message_id, status, reason)


# --- Mailgun --------------------------------------------------------------------------------


def mailgun_events(body: bytes, signing_key: str) -> list[WebhookEvent]:
    """Mailgun's webhooks: HMAC-SHA256 of timestamp + token under the HTTP webhook
    signing key (Mailgun console → Sending → Webhooks → HTTP webhook signing key)."""
    data = _json(body)
    signed = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signed, dict):
        raise WebhookError(401, "the request is not signed (no Mailgun signature)")
    message = f"{signed.get('timestamp', '')}{signed.get('token', '')}".encode()
    expected = hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signed.get("signature", ""))):
        raise WebhookError(401, "the Mailgun signature does not match")
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise WebhookError(400, "expected event-data in the Mailgun webhook")
    name = str(event.get("event", ""))
    delivery = (
        event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    )
    assert isinstance(delivery, dict)
    said = _text(delivery.get("description") or delivery.get("message"))
    status = _status_in(delivery.get("enhanced-code"), said, delivery.get("message"))
    if status is None and str(delivery.get("code", "")).startswith(("4", "5")):
        status = f"{str(delivery['code'])[0]}.0.0"
    if name == "failed":
        kind = kind_of_status(status, permanent=event.get("severity") == "permanent")
    elif name == "complained":
        kind = SignalKind.COMPLAINT
    elif name == "unsubscribed":
        kind = SignalKind.UNSUBSCRIBE
    else:
        kind = SignalKind.IGNORED
    headers = (event.get("message") or {}).get("headers") or {}
    message_id = _text(headers.get("message-id")) if isinstance(headers, dict) else None
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    event_id = str(event.get("id", "")) or hashlib.sha256(body).hexdigest()
    email = _text(event.get("recipient"))
    return [WebhookEvent(f"mailgun:{event_id}", "mailgun", kind, email, message_id, status, said)]


# --- Amazon SES (the notification inside an SNS message) ------------------------------------


def ses_events(message_id: str, notification: str) -> list[WebhookEvent]:
    """The events of an SES notification (an SNS Notification's Message), one per
    recipient; ``message_id`` is the SNS message's, the event's key."""
    data = _json(notification.encode())
    if not isinstance(data, dict):
        return []
    kind_name = str(data.get("notificationType") or data.get("eventType") or "")
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    assert isinstance(mail, dict)
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    assert isinstance(common, dict)
    ours = _text(common.get("messageId"))
    events: list[WebhookEvent] = []
    if kind_name == "Bounce":
        bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
        assert isinstance(bounce, dict)
        permanent = bounce.get("bounceType") == "Permanent"
        for n, person in enumerate(_list(bounce.get("bouncedRecipients"))):
            said = _text(person.get("diagnosticCode"))
            status = _status_in(person.get("status"), said)
            kind = kind_of_status(status, permanent=permanent)
            if permanent and status is None:  # SES decided it is permanent, without a code
                kind = SignalKind.HARD_BOUNCE
            events.append(
                WebhookEvent(
                    f"ses:{message_id}:{n}",
                    "ses",
                    kind,
                    _text(person.get("emailAddress")),
                    ours,
                    status,
                    said,
                )
            )
    elif kind_name == "Complaint":
        complaint = data.get("complaint") if isinstance(data.get("complaint"), dict) else {}
        assert isinstance(complaint, dict)
        feedback = _text(complaint.get("complaintFeedbackType"))
        kind = SignalKind.IGNORED if feedback == "not-spam" else SignalKind.COMPLAINT
        for n, person in enumerate(_list(complaint.get("complainedRecipients"))):
            email = _text(person.get("emailAddress"))
            events.append(
                WebhookEvent(f"ses:{message_id}:{n}", "ses", kind, email, ours, None, feedback)
            )
    return events


def _list(value: object) -> Sequence[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
