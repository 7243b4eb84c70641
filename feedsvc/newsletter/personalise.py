"""One rendered digest, many recipients: the serialised message split at placeholders, and
each recipient's values joined into the gaps.

``render_digest`` renders once with placeholders (``FeedsvcSlot0UNSUBHx``: ASCII letters
and digits, which HTML escaping, css-inline and quoted-printable all leave alone) where
per-subscriber values go; ``feedsvc.delivery.mime`` keeps each on a quoted-printable line segment
of its own. Personalising is then a join of byte chunks and a few short encoded values:
no template, no MIME, per recipient. Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import escape

from feedsvc.delivery.mime import format_address, qp_value

# Per recipient; H is the value in the HTML part, T in the text part.
PERSONAL_SLOTS = (
    "TO",
    "MESSAGEID",
    "LISTUNSUB",
    "UNSUBH",
    "UNSUBT",
    "PREFSH",
    "PREFST",
    "ADDRH",
    "ADDRT",
)
# The same for every recipient, but filled in only after MIME assembly (header values).
SHARED_SLOTS = ("SUBJECT", "FROM", "LISTID")


@dataclass(frozen=True, slots=True)
class Placeholders:
    """How the slots of one render are spelled: ``{prefix}{slot}x``."""

    prefix: str

    @classmethod
    def avoiding(cls, texts: Sequence[str]) -> Placeholders:
        """Prefix 'FeedsvcSlot0', or the first numbered variant no input text contains."""
        blob = "\n".join(texts)
        number = 0
        while f"FeedsvcSlot{number}" in blob:
            number += 1
        return cls(f"FeedsvcSlot{number}")

    def of(self, slot: str) -> str:
        return f"{self.prefix}{slot}x"

    def personal(self) -> re.Pattern[str]:
        """Matches any per-recipient placeholder; the group is the slot's name."""
        return re.compile(re.escape(self.prefix) + "(" + "|".join(PERSONAL_SLOTS) + ")x")

    def fill_shared(self, data: bytes, values: Mapping[str, str]) -> bytes:
        """``data`` with each shared placeholder replaced by its value (UTF-8)."""
        for slot in SHARED_SLOTS:
            data = data.replace(self.of(slot).encode("ascii"), values[slot].encode("utf-8"))
        return data

    def split(self, data: bytes) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
        """The bytes around the per-recipient placeholders, and the slot of each gap."""
        pieces = re.split(self.personal().pattern.encode("ascii"), data)
        return tuple(pieces[0::2]), tuple(piece.decode("ascii") for piece in pieces[1::2])


@dataclass(frozen=True, slots=True)
class Personal:
    """What differs between two recipients of one digest."""

    subscriber_id: int
    email: str
    name: str | None
    unsubscribe_url: str
    preferences_url: str
    # The List-Unsubscribe mailto: address of this delivery (bounces.unsubscribe_address),
    # or None: the header offers the one-click URL alone.
    unsubscribe_mailto: str | None = None


@dataclass(frozen=True, slots=True)
class Personalised:
    message_id: str
    data: bytes


@dataclass(frozen=True)
class MessageTemplate:
    """A serialised message with slots where each recipient's values go."""

    digest_id: int
    chunks: tuple[bytes, ...]  # one more than slots
    slots: tuple[str, ...]
    domain: str
    tag_key: bytes
    subject: str

    def message_id(self, subscriber_id: int) -> str:
        """Deterministic per digest × subscriber: a retry carries the same Message-ID."""
        tag = hashlib.blake2b(
            f"{self.digest_id}.{subscriber_id}".encode(), key=self.tag_key, digest_size=5
        ).hexdigest()
        return f"<{self.digest_id}.{subscriber_id}.{tag}@{self.domain}>"

    def personalise(self, person: Personal) -> Personalised:
        """The message bytes for one recipient: the chunks with the values in the slots."""
        message_id = self.message_id(person.subscriber_id)
        unsubscribe, preferences, email = (
            person.unsubscribe_url,
            person.preferences_url,
            person.email,
        )
        unsubscribe_qp, unsubscribe_html = _qp_pair(unsubscribe)
        preferences_qp, preferences_html = _qp_pair(preferences)
        email_qp, email_html = _qp_pair(email)
        values = {
            "TO": format_address(person.name, email, "To").encode("utf-8"),
            "MESSAGEID": message_id.encode("ascii"),
            "LISTUNSUB": _list_unsubscribe(unsubscribe, person.unsubscribe_mailto),
            "UNSUBH": unsubscribe_html,
            "UNSUBT": unsubscribe_qp,
            "PREFSH": preferences_html,
            "PREFST": preferences_qp,
            "ADDRH": email_html,
            "ADDRT": email_qp,
        }
        parts = [self.chunks[0]]
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            parts.append(values[slot])
            parts.append(chunk)
        return Personalised(message_id, b"".join(parts))


def _list_unsubscribe(url: str, mailto: str | None) -> bytes:
    """The List-Unsubscribe value: the one-click URL, and the mailto when there is one
    (never the From address, which nobody reads)."""
    if mailto is None:
        return f"<{url}>".encode("ascii")
    return f"<{url}>,\r\n <mailto:{mailto}?subject=unsubscribe>".encode("ascii")


def _qp_pair(value: str) -> tuple[bytes, bytes]:
    """``value`` quoted-printable as text, and HTML-escaped (the same bytes for URLs)."""
    plain = qp_value(value)
    escaped = str(escape(value))
    return plain, plain if escaped == value else qp_value(escaped)
