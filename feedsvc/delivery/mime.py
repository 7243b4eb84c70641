"""The wire format of feedsvc's email: header values, quoted-printable with slots, MIME
assembly, DKIM, reading back. Pure: strings in, bytes out.

Header values that are not plain short ASCII are written as RFC 2047 base64 encoded-words
by :func:`encode_words`, not by ``email``'s folder: in Python 3.11 that folder loses or
adds spaces and mangles ``=?`` in long non-ASCII subjects (tests/test_messages.py keeps us
honest). Each encoded-word holds whole characters, so any decoder gets the text back.

Bodies are quoted-printable (7-bit: nothing for a relay to convert, so a DKIM signature
survives), encoded here rather than by ``email`` so that each placeholder of
``feedsvc.newsletter.messages`` sits on a line segment of its own: any value then fits in with its
own soft breaks, and lines stay ≤ 76 characters.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser

import dkim

from feedsvc.errors import ConfigError

SMTP = email_policy.SMTP
MAX_LINE = 78  # RFC 5322's "SHOULD"; 998 is the hard limit
_WORD_OVERHEAD = len("=?utf-8?b??=")
_MAX_WORD = 75  # RFC 2047
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$")
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip


# --- header values ----------------------------------------------------------------------


def clean_header_text(text: str) -> str:
    """One line of text for a header: controls and line breaks become spaces, ends trimmed."""
    return _CONTROL.sub(" ", text).strip()


def encode_words(text: str, first_room: int) -> str:
    """``text`` as RFC 2047 base64 encoded-words, folded with CRLF SP between them.

    Words never split a character, so each decodes on its own; the whitespace between
    encoded-words is not part of the text, so decoding gives ``text`` back exactly
    (spaces at either end, runs of spaces and literal ``=?`` included). ``first_room`` is
    what the first line has left after the header's name.
    """
    room = min(_MAX_WORD, first_room)
    limit = (room - _WORD_OVERHEAD) // 4 * 3
    whole = text.encode("utf-8", "replace")
    if len(whole) <= limit:  # most names and short subjects: one word
        return _word(whole)
    words: list[str] = []
    current = bytearray()
    for char in text:
        encoded = char.encode("utf-8", "replace")
        if current and len(current) + len(encoded) > limit:
            words.append(_word(current))
            current = bytearray()
            limit = (_MAX_WORD - _WORD_OVERHEAD) // 4 * 3  # later lines: " " + a word ≤ 78
        current += encoded
    if current or not words:
        words.append(_word(current))
    return "\r\n ".join(words)


def _word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + base64.b64encode(bytes(data)).decode("ascii") + "?="


def _plain_ok(text: str, room: int) -> bool:
    """Short printable ASCII with nothing a parser could read differently."""
    return (
        text.isascii()
        and text.isprintable()
        and len(text) <= room
        and "=?" not in text
        and "  " not in text
        and text == text.strip()
    )


def header_text(text: str, name: str) -> str:
    """An unstructured header value (Subject) that parses back to ``text`` exactly."""
    room = MAX_LINE - len(name) - 2
    return text if _plain_ok(text, room) else encode_words(text, room)


def ascii_address(email: str) -> str:
    """The address with its domain in IDNA (``xn--``) form; a non-ASCII local part stays
    (it needs SMTPUTF8, RFC 6531/6532)."""
    if email.isascii():
        return email
    local, _, domain = email.rpartition("@")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = domain
    return f"{local}@{ascii_domain}"


def phrase(name: str, room: int) -> str:
    """A display name as an atom run, a quoted string, or encoded-words."""
    if _plain_ok(name, min(room, 64)):
        if _ATEXT.match(name):
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encode_words(name, room)


def format_address(name: str | None, email: str, header: str) -> str:
    """``Name <addr>`` for an address header named ``header``, folded when long."""
    address = ascii_address(email)
    name = clean_header_text(name or "")
    if not name:
        return address
    shown = phrase(name, MAX_LINE - len(header) - 2)
    last = shown.rsplit("\r\n", 1)[-1]
    used = len(last) + (len(header) + 2 if "\r\n" not in shown else 0)
    separator = "\r\n " if used + len(address) + 3 > MAX_LINE else " "
    return f"{shown}{separator}<{address}>"


# --- quoted-printable with slots ----------------------------------------------------------


def qp_value(value: str) -> bytes:
    """``value`` quoted-printable, as lines of ≤ 75 characters joined by soft breaks, to
    stand where a placeholder stood (which is followed by a soft break or a line end)."""
    raw = value.encode("utf-8")
    if value.isascii() and value.isprintable() and "=" not in value:
        # The common case (URLs, ASCII addresses): nothing to escape but a final blank.
        if raw.endswith((b" ", b"\t")):
            raw = raw[:-1] + (b"=20" if raw.endswith(b" ") else b"=09")
        if len(raw) <= 75:
            return raw
        return b"=\r\n".join(raw[i : i + 75] for i in range(0, len(raw), 75))
    encoded = binascii.b2a_qp(raw, quotetabs=True, istext=False, header=False)
    # b2a_qp breaks at 76; rejoin and cut again at 75 so a following "=" still fits.
    flat = encoded.replace(b"=\n", b"")
    lines: list[bytes] = []
    while len(flat) > 75:
        cut = 75
        if flat[cut - 1 : cut] == b"=":
            cut -= 1
        elif flat[cut - 2 : cut - 1] == b"=":
            cut -= 2
        lines.append(flat[:cut])
        flat = flat[cut:]
    lines.append(flat)
    return b"=\r\n".join(lines)


def _qp_literal(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


def qp_with_slots(text: str, slot: re.Pattern[str]) -> str:
    """Quoted-printable of ``text`` (``\\n`` line ends) keeping each ``slot`` match whole,
    on a line segment of its own: a soft break before it unless it starts a line, and one
    after it unless a line ends there."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    position = 0
    for match in slot.finditer(text):
        literal = _qp_literal(text[position : match.start()])
        if literal and not literal.endswith("\n"):
            out.append(_end_with_soft_break(literal))
        else:
            out.append(literal)
        out.append(match.group())
        position = match.end()
        if not text.startswith("\n", position) and position < len(text):
            out.append("=\n")
    out.append(_qp_literal(text[position:]))
    return "".join(out)


def _end_with_soft_break(encoded: str) -> str:
    """``encoded`` + ``=\\n``, splitting its last line first when ``=`` would not fit."""
    head, _, last = encoded.rpartition("\n")
    prefix = head + "\n" if head or encoded.startswith("\n") else ""
    if len(last) > 75:
        cut = 75
        if last[cut - 1] == "=":
            cut -= 1
        elif last[cut - 2] == "=":
            cut -= 2
        last = last[:cut] + "=\n" + last[cut:]
    return prefix + last + "=\n"


# --- MIME ---------------------------------------------------------------------------


def assemble(
    headers: Sequence[tuple[str, str]], text_qp: str, html_qp: str, boundary: str
) -> bytes:
    """``multipart/alternative`` (text, then HTML), both parts already quoted-printable."""
    message = EmailMessage(policy=SMTP)
    for name, value in headers:
        message[name] = value
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    for subtype, body in (("plain", text_qp), ("html", html_qp)):
        part = EmailMessage(policy=SMTP)
        part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(body)
        message.attach(part)
    return message.as_bytes()


def assemble_encoded(
    headers: Sequence[tuple[str, str]], text_qp: str, html_qp: str, boundary: str
) -> bytes:
    """:func:`assemble` with header values that are already encoded (ours, not email's).

    The header lines are written as given, never parsed by ``email``: its header classes
    read a stand-in value (a Date, an address) as invalid and write an empty header."""
    lines = b"".join(_header_line(name, value) for name, value in headers)
    return lines + assemble((), text_qp, html_qp, boundary)


_BARE_BREAK = re.compile(r"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n")


def _header_line(name: str, value: str) -> bytes:
    """``Name: value`` and CRLF; ValueError for an empty value or a line break that does
    not fold (which would end the header, or the header block, early)."""
    if not value.strip() or _BARE_BREAK.search(value) or not name.isascii():
        raise ValueError(f"not a header value for {name}: {value!r}")
    return f"{name}: {value}\r\n".encode()


# --- DKIM -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key (``delivery.dkim.*``)."""

    domain: str
    selector: str
    private_key: bytes

    @classmethod
    def from_pem(cls, domain: str, selector: str, pem: bytes, source: str) -> DkimKey:
        """Checked by signing a test message; ConfigError naming ``source`` if unusable."""
        key = cls(domain.strip().lower(), selector.strip(), pem)
        try:
            dkim_sign(b"From: a@example.com\r\n\r\ntest\r\n", key)
        except (dkim.DKIMException, ValueError, IndexError, TypeError) as exc:
            raise ConfigError(
                source,
                [f"delivery.dkim.private_key_path: not a usable RSA private key (PEM): {exc}"],
            ) from None
        return key


def dkim_sign(data: bytes, key: DkimKey) -> bytes:
    """``data`` with a DKIM-Signature header on top, covering :data:`SIGNED_HEADERS` (the
    two List-Unsubscribe headers among them, as RFC 8058 asks) and the whole body."""
    present = [name for name in SIGNED_HEADERS if _has_header(data, name)]
    signature = dkim.sign(
        data,
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=present,
    )
    return bytes(signature) + data


def _has_header(data: bytes, name: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name + b":") or (b"\r\n" + name + b":") in head


# --- reading back -------------------------------------------------------------------------------


def parse_message(data: bytes) -> EmailMessage:
    """Parse message bytes the way a client would (the default policy)."""
    parsed = BytesParser(policy=email_policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def html_part(data: bytes) -> str:
    """The decoded HTML of a message (for ``digest preview``), with ``\n`` line ends."""
    message = parse_message(data)
    body = message.get_body(preferencelist=("html",))
    if body is None:
        raise ValueError("the message has no HTML part")
    content = body.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")
