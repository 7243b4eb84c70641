"""VERP return paths (``delivery.return_path``): one envelope sender per delivery.

``bounces+{token}@news.example.kr`` becomes ``bounces+2qhxq3dbmy5a@news.example.kr`` for
one delivery and another address for the next. A bounce goes back to the envelope
sender, so the address it arrives at names its delivery (and so its subscriber and
digest) even when the report leaves the recipient out or names an alias.

The token is the delivery id and a MAC of it (HMAC-SHA256 under the site's signing key,
5 bytes), in lower-case base32 without padding: short (13 characters for a million
deliveries), only ``a-z`` and ``2-7`` (safe in a local part, and read back whatever case
a mail system gave it), and impossible to make up for a delivery one has not been sent,
so that a forged bounce cannot suppress a subscriber. Pure: strings and keys in, values
out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from feedsvc.config import RETURN_PATH_TOKEN

PLACEHOLDER = RETURN_PATH_TOKEN
_MAC_BYTES = 5
RETURN_PATH_CONTEXT = b"feedsvc-return-path:"
# bounces.unsubscribe_address: its own context, so that a bounce address is not also an
# unsubscribe address (both name a delivery; only one of them may stop the mail).
UNSUBSCRIBE_CONTEXT = b"feedsvc-unsubscribe:"


@dataclass(frozen=True)
class ReturnPaths:
    """Makes and reads the return paths of one template (``delivery.return_path``).

    ``keys``: the site's signing keys, oldest first; the last signs, every one is
    accepted (so that a bounce of mail sent before a key rotation still counts)."""

    template: str
    keys: Sequence[bytes]
    context: bytes = RETURN_PATH_CONTEXT

    def address(self, delivery_id: int) -> str:
        return self.template.replace(PLACEHOLDER, self.token(delivery_id))

    def token(self, delivery_id: int) -> str:
        return _token(delivery_id, self.keys[-1], self.context)

    def delivery(self, address: str) -> int | None:
        """The delivery id ``address`` names; None when it is not one of ours (another
        address, a token altered or made up)."""
        prefix, _, suffix = self.template.lower().partition(PLACEHOLDER)
        address = address.strip().strip("<>").lower()
        if not (address.startswith(prefix) and address.endswith(suffix)):
            return None
        token = address[len(prefix) : len(address) - len(suffix)]
        return self.read_token(token)

    def read_token(self, token: str) -> int | None:
        if not 1 + _MAC_BYTES * 8 // 5 <= len(token) <= 40:
            return None
        padded = token.upper() + "=" * (-len(token) % 8)
        try:
            raw = base64.b32decode(padded)
        except (binascii.Error, ValueError):
            return None
        number, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not number or base64.b32encode(raw).decode("ascii").rstrip("=") != token.upper():
            return None  # unused bits set: one delivery has exactly one token
        delivery_id = int.from_bytes(number, "big")
        for key in self.keys:
            if hmac.compare_digest(mac, _mac(number, key, self.context)):
                return delivery_id
        return None

    def find(self, addresses: Sequence[str]) -> int | None:
        """The first delivery id any of ``addresses`` names."""
        for address in addresses:
            found = self.delivery(address)
            if found is not None:
                return found
        return None


def _token(delivery_id: int, key: bytes, context: bytes) -> str:
    if delivery_id < 1:
        raise ValueError(f"a delivery id is positive, not {delivery_id}")
    number = delivery_id.to_bytes((delivery_id.bit_length() + 7) // 8, "big")
    raw = number + _mac(number, key, context)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _mac(number: bytes, key: bytes, context: bytes) -> bytes:
    return hmac.new(key, context + number, hashlib.sha256).digest()[:_MAC_BYTES]
