"""Amazon SNS messages (how SES reports bounces and complaints over HTTP): signature
check, subscription confirmation.

A message is believed when its signature (SignatureVersion 1: SHA1withRSA, 2:
SHA256withRSA, over the fields AWS lists for its Type) verifies with the certificate at
its SigningCertURL, and that URL is HTTPS on an SNS host (``sns.<region>.amazonaws.com``,
or ``.amazonaws.com.cn``) — or one of ``bounces.webhooks.ses.certificate_hosts``, for a
test server. Certificates are fetched once per URL and kept. The topic must be one of
``bounces.webhooks.ses.topic_arns``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from feedsvc.errors import WebhookError

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
MAX_CERTIFICATE = 64 * 1024

Fetch = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    """GET ``url`` (an SNS certificate or subscription URL) with a short timeout."""
    with urllib.request.urlopen(url, timeout=10) as response:
        data: bytes = response.read(MAX_CERTIFICATE + 1)
    return data


@dataclass
class SnsVerifier:
    topic_arns: Sequence[str]
    certificate_hosts: Sequence[str] = ()  # besides SNS's own (tests)
    fetch: Fetch = fetch_url
    _certificates: dict[str, Any] = field(default_factory=dict)

    def message(self, body: bytes) -> dict[str, str]:
        """The SNS message in ``body``, its signature checked; WebhookError otherwise."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WebhookError(400, "the body is not an SNS message (not JSON)") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise WebhookError(400, "the body is not an SNS message")
        if data.get("TopicArn") not in self.topic_arns:
            raise WebhookError(401, f"topic {data.get('TopicArn')!r} is not in topic_arns")
        self._verify(data)
        return data

    def trusted(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.certificate_hosts:
            return parts.scheme == "https" or host in _LOOPBACK
        return parts.scheme == "https" and _SNS_HOST.match(host) is not None

    def _verify(self, data: dict[str, str]) -> None:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        kind = data.get("Type")
        names = _NOTIFICATION_FIELDS if kind == "Notification" else _CONFIRMATION_FIELDS
        signed = "".join(f"{name}\n{data[name]}\n" for name in names if name in data)
        version = data.get("SignatureVersion")
        digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version or "")
        url = data.get("SigningCertURL", "")
        if digest is None or not self.trusted(url):
            raise WebhookError(401, f"the signing certificate URL {url!r} is not an SNS one")
        try:
            key = self._certificates.get(url)
            if key is None:
                pem = self.fetch(url)
                if len(pem) > MAX_CERTIFICATE:
                    raise ValueError("certificate too large")
                key = x509.load_pem_x509_certificate(pem).public_key()
                self._certificates[url] = key
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(
                base64.b64decode(data.get("Signature", "")),
                signed.encode(),
                padding.PKCS1v15(),
                digest,
            )
        except (InvalidSignature, binascii.Error, ValueError, AssertionError):
            raise WebhookError(401, "the SNS signature does not verify") from None
        except OSError as exc:
            raise WebhookError(503, f"the SNS certificate cannot be fetched ({exc})") from None

    def confirm(self, data: dict[str, str]) -> None:
        """Confirm a subscription by visiting its SubscribeURL (an SNS host's)."""
        url = data.get("SubscribeURL", "")
        if not self.trusted(url):
            raise WebhookError(401, f"the SubscribeURL {url!r} is not an SNS one")
        try:
            self.fetch(url)
        except OSError as exc:
            raise WebhookError(503, f"the subscription cannot be confirmed ({exc})") from None
