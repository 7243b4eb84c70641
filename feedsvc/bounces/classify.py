"""Mail about mail we sent → what it says (pure: a message's bytes in, a value out).

What arrives at a bounce mailbox, and what it becomes:

====================================================  ======================================
``multipart/report; report-type=delivery-status``      a DSN (RFC 3464): per recipient,
                                                       ``Action: failed`` with a 5.x.x
                                                       status about the address → hard
                                                       bounce; any other failure → soft;
                                                       ``delayed``/``delivered`` → nothing
``multipart/report; report-type=feedback-report``      an ARF report (RFC 5965):
                                                       ``Feedback-Type: abuse``/``fraud``/
                                                       ``virus`` → complaint
a plain message from ``MAILER-DAEMON``/``postmaster``  a body-only bounce (as some big
or with a bounce subject                               providers send): its status code
                                                       read from the text
``Auto-Submitted`` other than ``no``, out-of-office    an auto-reply (RFC 3834): ignored
anything else                                          ignored, with the reason
====================================================  ======================================

Which delivery it is about is not decided here: the classification carries every clue
the message holds (the VERP tokens in the addresses it was sent to, the recipient, the
original message's Message-ID and unsubscribe links), and the caller looks them up.
"""

from __future__ import annotations

import email
import email.header
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr
from enum import StrEnum

from feedsvc.models import SignalKind


class Source(StrEnum):
    DSN = "dsn"  # RFC 3464 delivery status notification
    ARF = "arf"  # RFC 5965 feedback report
    BODY = "body"  # a bounce in plain text
    AUTO_REPLY = "auto-reply"
    OTHER = "other"


@dataclass(frozen=True)
class Clues:
    """What a message says about the mail it answers, for finding its delivery."""

    # The addresses the message was delivered to (Delivered-To, X-Original-To, To …) and the
    # original's Return-Path: where a VERP token is, when the return path has one.
    addressed_to: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()  # the address that failed or complained, when named
    message_ids: tuple[str, ...] = ()  # the original message's Message-ID
    unsubscribe_urls: tuple[str, ...] = ()  # the original's List-Unsubscribe links


@dataclass(frozen=True)
class Classified:
    kind: SignalKind
    source: Source
    reason: str  # one line for people: why this kind
    status: str | None = None  # enhanced status code, "5.1.1"
    diagnostic: str | None = None  # the remote server's words, as given (shortened)
    clues: Clues = field(default_factory=Clues)

    @property
    def is_signal(self) -> bool:
        return self.kind is not SignalKind.IGNORED


# 5.x.x that say the address itself is bad (RFC 3463): X.1.x addressing, 5.2.1 disabled
# mailbox, 5.4.4 no route to the domain. Other permanent failures (a full mailbox 5.2.2, a
# policy block 5.7.x, a message too big 5.3.4 …) say nothing certain about the address:
# they count as soft, so that one refusal for content never suppresses a subscriber.
_HARD = re.compile(r"^5\.(1\.\d+|2\.1|4\.4)$")
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")  # an enhanced status code
_REPLY_CODE = re.compile(r"\b([45]\d\d)[ -]")
_DIAGNOSTIC_MAX = 500
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus"})
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)$", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification \((failure|delay)\)|delivery (has )?failed"
    r"|mail delivery (failed|failure|subsystem)|returned mail|failure notice"
    r"|returned to sender|non.?delivery|delivery failure|could not be delivered"
    r"|메일 (전송|발송|배달) ?실패|전달되지 (않|못)",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(r"\(delay\)|delayed|warning: could not send|지연", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[ -]?(reply|response)|autoreply|vacation"
    r"|부재|자동 ?응답|自動応答|不在",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_DELIVERY_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Original-Rcpt-To",
    "To",
    "Cc",
)
# An address in a To/Delivered-To value ("Name <a@b>", "a@b, c@d"): what getaddresses
# finds there, at a tenth of its cost (the delivery headers of bounces are plain).
_HEADER_ADDRESS = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"()\[\]]+")
_URL_IN_BRACKETS = re.compile(r"<([^<>\s]+)>")


def classify(raw: bytes) -> Classified:
    """What ``raw`` (one whole message, headers and body) says. Never raises: mail that
    cannot be read as any report is IGNORED with the reason."""
    try:
        message = email.message_from_bytes(raw, policy=compat32)
    except Exception as exc:  # the parser is lenient: anything it raises is a broken message
        return Classified(SignalKind.IGNORED, Source.OTHER, f"not a readable message ({exc})")
    addressed_to = _addressed_to(message)
    content_type = message.get_content_type()
    report_type = _report_type(message)
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _dsn(message, addressed_to)
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _arf(message, addressed_to)
    if _delivery_status_part(message) is not None:  # a report without its report-type
        return _dsn(message, addressed_to)
    if _is_auto_reply(message):
        return Classified(SignalKind.IGNORED, Source.AUTO_REPLY, "an automatic reply (RFC 3834)")
    if _looks_like_bounce(message):
        return _body_bounce(message, addressed_to)
    return Classified(
        SignalKind.IGNORED,
        Source.OTHER,
        "neither a delivery report, a feedback report nor a bounce",
        clues=Clues(addressed_to=addressed_to),
    )


# --- RFC 3464 delivery status notifications ---------------------------------------------


def _dsn(message: Message, addressed_to: tuple[str, ...]) -> Classified:
    part = _delivery_status_part(message)
    blocks = _status_blocks(part) if part is not None else []
    original = _original(message)
    failed: list[tuple[str, str | None, str | None, str]] = []  # (action, status, diag, rcpt)
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = _get(block, "Action").strip().lower()
        recipient = _typed_address(
            _get(block, "Final-Recipient") or _get(block, "Original-Recipient")
        )
        diagnostic = _clean(_get(block, "Diagnostic-Code"))
        status = _status_of(_get(block, "Status"), diagnostic)
        if action in ("failed", "") and (recipient or status):
            failed.append((action, status, diagnostic, recipient or ""))
    clues = _clues(addressed_to, [r for *_, r in failed if r], original)
    if not failed:
        actions = sorted({(_get(b, "Action") or "?").strip().lower() for b in blocks[1:]})
        reason = f"a delivery report with no failure (action: {', '.join(actions) or 'none'})"
        return Classified(SignalKind.IGNORED, Source.DSN, reason, clues=clues)
    # One recipient per message is what we send; with several, the gravest decides.
    failed.sort(key=lambda f: 0 if is_hard(f[1]) else 1)
    _, status, diagnostic, _ = failed[0]
    return _bounce(Source.DSN, status, diagnostic, clues, "the delivery report")


def _delivery_status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _status_blocks(part: Message) -> list[Message]:
    """The per-message block, then one per recipient (the parser's list, or a text
    payload split at blank lines when a sender labelled it oddly)."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get_content_type() == "message/delivery-status":
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, list):  # message/global-delivery-status: read as one message
        text = "".join(_text_of(block) for block in payload if isinstance(block, Message))
    else:
        text = payload if isinstance(payload, str) else ""
    return [
        email.message_from_string(chunk.strip() + "\n", policy=compat32)
        for chunk in re.split(r"\r?\n\s*\r?\n", text)
        if chunk.strip()
    ]


def _text_of(message: Message) -> str:
    """A parsed message back as text (bytes it held as they were, UTF-8 or not)."""
    try:
        return message.as_bytes().decode("utf-8", errors="replace")
    except (UnicodeError, LookupError, ValueError):
        return ""


def _status_of(status: str | None, diagnostic: str | None) -> str | None:
    """The enhanced status code: the Status field, or the diagnostic's when the field is
    missing or only says x.0.0 and the remote server said more."""
    found = STATUS.search(status or "")
    code = ".".join(found.groups()) if found else None
    if code is None or code.endswith(".0.0"):
        said = STATUS.search(diagnostic or "")
        if said and (code is None or said.group(1) == code[0]):
            return ".".join(said.groups())
    return code


def is_hard(status: str | None) -> bool:
    """Whether a failure with this status says the address itself is bad (``_HARD``);
    the one rule for bounce mail and providers' webhooks."""
    return status is not None and _HARD.match(status) is not None


def _bounce(
    source: Source, status: str | None, diagnostic: str | None, clues: Clues, where: str
) -> Classified:
    if is_hard(status):
        reason = f"{where} says the address does not take mail ({status})"
        return Classified(SignalKind.HARD_BOUNCE, source, reason, status, diagnostic, clues)
    if status is not None and status.startswith("5."):
        reason = f"{where} gives a permanent failure not about the address ({status}): soft"
    elif status is not None:
        reason = f"{where} gives a transient failure ({status})"
    else:
        reason = f"{where} gives no status code: soft"
    return Classified(SignalKind.SOFT_BOUNCE, source, reason, status, diagnostic, clues)


# --- RFC 5965 feedback reports ------------------------------------------------------------


def _arf(message: Message, addressed_to: tuple[str, ...]) -> Classified:
    fields = _feedback_fields(message)
    feedback_type = _get(fields, "Feedback-Type").strip().lower()
    original = _original(message)
    recipients = [
        address
        for name in ("Original-Rcpt-To", "Removal-Recipient")
        for value in _all(fields, name)
        if (address := _typed_address(value))
    ]
    if not recipients and original is not None:  # the original's To: is the subscriber
        recipients = [address for _, address in getaddresses(original.get_all("To") or [])]
    clues = _clues(addressed_to, recipients, original)
    if feedback_type in _COMPLAINT_TYPES:
        reason = f"a feedback report of type {feedback_type}: the subscriber marked it as spam"
        return Classified(SignalKind.COMPLAINT, Source.ARF, reason, None, None, clues)
    shown = feedback_type or "none"
    return Classified(
        SignalKind.IGNORED,
        Source.ARF,
        f"a feedback report of type {shown}: not a complaint",
        clues=clues,
    )


def _feedback_fields(message: Message) -> Message:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            text = payload if isinstance(payload, str) else ""
            return email.message_from_string(text.strip() + "\n", policy=compat32)
    return Message()


def _all(fields: Message, name: str) -> list[str]:
    return [str(value) for value in fields.get_all(name) or []]


# --- plain-text bounces and auto-replies --------------------------------------------------


def _is_auto_reply(message: Message) -> bool:
    auto = (_get(message, "Auto-Submitted") or "no").strip().lower()
    if auto.split(";")[0].strip() != "no":
        return True
    if any(_get(message, name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    precedence = _get(message, "Precedence").strip().lower()
    subject = _subject(message)
    return precedence == "auto_reply" or _AUTO_SUBJECT.search(subject) is not None


def _looks_like_bounce(message: Message) -> bool:
    local = parseaddr(_get(message, "From"))[1].partition("@")[0]
    return (
        _DAEMONS.match(local) is not None or _BOUNCE_SUBJECT.search(_subject(message)) is not None
    )


def _body_bounce(message: Message, addressed_to: tuple[str, ...]) -> Classified:
    text = _plain_text(message)
    original = _original(message)
    if _DELAY_SUBJECT.search(_subject(message)):
        clues = _clues(addressed_to, [], original)
        return Classified(
            SignalKind.IGNORED, Source.BODY, "a delay notice: still being tried", clues=clues
        )
    status_match = STATUS.search(text)
    status = ".".join(status_match.groups()) if status_match else None
    if status is None:
        reply = _REPLY_CODE.search(text)
        if reply is not None:  # a bare SMTP reply: 550 → 5.0.0
            status = f"{reply.group(1)[0]}.0.0"
    diagnostic = _diagnostic_line(text, status_match)
    ours = {address.lower() for address in addressed_to}
    sender = parseaddr(_get(message, "From"))[1].lower()
    recipients = [
        address
        for address in dict.fromkeys(_ADDRESS.findall(text))
        if address.lower() not in ours and address.lower() != sender
    ][:1]
    clues = _clues(addressed_to, recipients, original)
    return _bounce(Source.BODY, status, diagnostic, clues, "the bounce message")


def _diagnostic_line(text: str, status: re.Match[str] | None) -> str | None:
    if status is None:
        return None
    start = text.rfind("\n", 0, status.start()) + 1
    end = text.find("\n", status.end())
    return _clean(text[start : end if end >= 0 else len(text)])


def _plain_text(message: Message) -> str:
    """The message's first text/plain part (else any text part), decoded."""
    parts = [part for part in message.walk() if part.get_content_maintype() == "text"]
    parts.sort(key=lambda part: part.get_content_type() != "text/plain")
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                return payload.decode(charset, errors="replace")
            except LookupError:
                return payload.decode("utf-8", errors="replace")
    return ""


# --- clues ----------------------------------------------------------------------------------


def _original(message: Message) -> Message | None:
    """The original message (or its headers) a report or bounce carries."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return BytesHeaderParser(policy=compat32).parsebytes(payload)
    return None


def _addressed_to(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in _DELIVERY_HEADERS:
        for value in message.get_all(name) or ():
            found.extend(address.strip("<>.") for address in _HEADER_ADDRESS.findall(str(value)))
    return tuple(dict.fromkeys(a for a in found if "@" in a.strip("@")))


def _clues(
    addressed_to: tuple[str, ...], recipients: Iterable[str], original: Message | None
) -> Clues:
    message_ids: list[str] = []
    unsubscribe: list[str] = []
    to = list(addressed_to)
    if original is not None:
        message_ids = [str(v).strip() for v in original.get_all("Message-ID") or []]
        for value in original.get_all("List-Unsubscribe") or []:
            unsubscribe.extend(_URL_IN_BRACKETS.findall(_unfold(str(value))))
        for value in original.get_all("Return-Path") or []:
            address = parseaddr(str(value))[1]
            if "@" in address:
                to.append(address)
    return Clues(
        addressed_to=tuple(dict.fromkeys(to)),
        recipients=tuple(dict.fromkeys(r for r in recipients if r)),
        message_ids=tuple(message_ids),
        unsubscribe_urls=tuple(unsubscribe),
    )


def _typed_address(value: object) -> str | None:
    """``rfc822; someone@example.kr`` → the address (the type is optional in practice)."""
    if value is None:
        return None
    text = _unfold(str(value))
    _, _, address = text.rpartition(";")
    address = address.strip().strip("<>").strip()
    return address if "@" in address else None


def _subject(message: Message) -> str:
    value = _get(message, "Subject")
    try:
        parts: Sequence[tuple[bytes | str, str | None]] = email.header.decode_header(value)
        return "".join(
            part.decode(charset or "utf-8", errors="replace") if isinstance(part, bytes) else part
            for part, charset in parts
        )
    except (LookupError, ValueError):
        return value


def _get(message: Message, name: str) -> str:
    """A header's value as text ("" when absent): compat32 gives Header objects for
    bytes it could not decode."""
    value = message.get(name)
    return "" if value is None else str(value)


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", text)


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(_unfold(str(value)).split())
    return text[:_DIAGNOSTIC_MAX] if text else None


def _report_type(message: Message) -> str:
    value = message.get_param("report-type")
    return collapse_rfc2231_value(value).strip().lower() if value else ""
