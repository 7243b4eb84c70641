"""feedsvc.bounces.classify: real-shaped bounces, complaints and auto-replies → signals."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.bounces.classify import Classified, Source, classify
from feedsvc.models import SignalKind

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "bounces"

# sample → (kind, source, status, recipient, a VERP address among those it was sent to)
EXPECTED: dict[str, tuple[SignalKind, Source, str | None, str | None, str | None]] = {
    "postfix-user-unknown.eml": (
        SignalKind.HARD_BOUNCE, Source.DSN, "5.1.1", "minji.kim@example.com",
        "bounces+d42x7k2m9q@news.example.kr",
    ),
    "exim-mailbox-full.eml": (
        SignalKind.SOFT_BOUNCE, Source.DSN, "5.2.2", "junho@example.net",
        "bounces+q8w2e4r6t1@news.example.kr",
    ),
    "gmail-body-only.eml": (
        SignalKind.HARD_BOUNCE, Source.BODY, "5.1.1", "seoyeon.park@gmail.com",
        "bounces+z9x8c7v6b5@news.example.kr",
    ),
    "o365-recipient-not-found.eml": (
        SignalKind.HARD_BOUNCE, Source.DSN, "5.1.10", "hyunwoo@contoso.example",
        "bounces+m1n2b3v4c5@news.example.kr",
    ),
    "policy-block.eml": (
        SignalKind.SOFT_BOUNCE, Source.DSN, "5.7.1", "sora@example.org",
        "bounces+p0o9i8u7y6@news.example.kr",
    ),
    "delayed.eml": (
        SignalKind.IGNORED, Source.DSN, None, None, "bounces+l1k2j3h4g5@news.example.kr",
    ),
    "transient-gave-up.eml": (
        SignalKind.SOFT_BOUNCE, Source.DSN, "4.4.1", "dohyun@example.com",
        "bounces+a1s2d3f4g5@news.example.kr",
    ),
    "arf-abuse.eml": (
        SignalKind.COMPLAINT, Source.ARF, None, "jiwoo@hotmail.example",
        "bounces+r5t6y7u8i9@news.example.kr",
    ),
    "arf-not-spam.eml": (SignalKind.IGNORED, Source.ARF, None, "haneul@mail.example", None),
    "out-of-office-ko.eml": (SignalKind.IGNORED, Source.AUTO_REPLY, None, None, None),
    "x-autoreply.eml": (SignalKind.IGNORED, Source.AUTO_REPLY, None, None, None),
    "korean-bounce-base64.eml": (
        SignalKind.HARD_BOUNCE, Source.BODY, "5.1.1", "yuna@example.co.kr",
        "bounces+k3o4r5e6a7@news.example.kr",
    ),
    "human-reply.eml": (SignalKind.IGNORED, Source.OTHER, None, None, None),
    "report-without-report-type.eml": (
        SignalKind.HARD_BOUNCE, Source.DSN, "5.1.1", "gayoung@old-mta.example",
        "bounces+w2e3r4t5y6@news.example.kr",
    ),
}  # fmt: skip


def test_every_sample_has_an_expectation() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_samples_are_classified_as_a_mail_admin_would(name: str) -> None:
    kind, source, status, recipient, verp = EXPECTED[name]
    found = classify((SAMPLES / name).read_bytes())
    assert (found.kind, found.source, found.status) == (kind, source, status), found.reason
    if recipient is not None:
        assert found.clues.recipients[:1] == (recipient,)
    else:
        assert found.kind is SignalKind.IGNORED
    if verp is not None:
        assert verp in found.clues.addressed_to
    assert found.reason and "\n" not in found.reason


def test_the_original_message_gives_its_id_and_unsubscribe_links() -> None:
    found = classify((SAMPLES / "arf-abuse.eml").read_bytes())
    assert found.clues.message_ids == ("<digest-9.subscriber-412@news.example.kr>",)
    assert found.clues.unsubscribe_urls == (
        "https://news.example.kr/u/jkl.mno.pqr",
        "mailto:unsubscribe+jkl@news.example.kr",
    )
    dsn = classify((SAMPLES / "postfix-user-unknown.eml").read_bytes())
    assert dsn.clues.message_ids == ("<digest-7.subscriber-118@news.example.kr>",)
    assert dsn.diagnostic is not None and "User unknown in virtual mailbox table" in dsn.diagnostic


def test_a_status_of_x00_takes_the_servers_more_precise_code() -> None:
    found = classify((SAMPLES / "exim-mailbox-full.eml").read_bytes())
    assert found.status == "5.2.2"  # Status: 5.0.0, Diagnostic-Code: 552 5.2.2 Mailbox full
    assert "not about the address" in found.reason


def _dsn(action: str, status: str, diagnostic: str = "") -> bytes:
    """A DSN as an SMTPUTF8 server writes it (message/global-delivery-status allows UTF-8)."""
    lines = [
        "From: MAILER-DAEMON@mx.example.kr",
        "To: bounces+t0k3n@news.example.kr",
        "Subject: Undelivered Mail Returned to Sender",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        "",
        "--b",
        "Content-Type: message/global-delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.kr",
        "",
        "Final-Recipient: rfc822; 가나다@example.kr",
        f"Action: {action}",
        f"Status: {status}",
    ]
    if diagnostic:
        lines.append(f"Diagnostic-Code: smtp; {diagnostic}")
    return "\r\n".join([*lines, "", "--b--", ""]).encode("utf-8")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("5.1.1", SignalKind.HARD_BOUNCE),  # bad mailbox
        ("5.1.2", SignalKind.HARD_BOUNCE),  # bad domain
        ("5.2.1", SignalKind.HARD_BOUNCE),  # mailbox disabled
        ("5.4.4", SignalKind.HARD_BOUNCE),  # no route to the domain
        ("5.2.2", SignalKind.SOFT_BOUNCE),  # mailbox full
        ("5.7.26", SignalKind.SOFT_BOUNCE),  # DMARC: ours to fix, not the subscriber's address
        ("5.3.4", SignalKind.SOFT_BOUNCE),  # message too big
        ("4.2.2", SignalKind.SOFT_BOUNCE),
    ],
)
def test_only_failures_about_the_address_are_hard(status: str, kind: SignalKind) -> None:
    found = classify(_dsn("failed", status))
    assert found.kind is kind and found.status == status
    assert found.clues.recipients == ("가나다@example.kr",)
    assert found.clues.addressed_to == ("bounces+t0k3n@news.example.kr",)


@pytest.mark.parametrize("action", ["delayed", "delivered", "relayed", "expanded"])
def test_reports_of_anything_but_failure_are_not_signals(action: str) -> None:
    found = classify(_dsn(action, "2.0.0" if action != "delayed" else "4.4.7"))
    assert found.kind is SignalKind.IGNORED and not found.is_signal
    assert action in found.reason


def test_an_auto_submitted_dsn_is_still_a_bounce() -> None:
    """Exim marks its bounces Auto-Submitted: auto-replied: the report decides, not that."""
    assert classify((SAMPLES / "exim-mailbox-full.eml").read_bytes()).kind is SignalKind.SOFT_BOUNCE


# Pieces of reports, bounces and MIME, in any order: the parser meets every broken shape.
_PIECES = [
    *"ab:;<>@.-=\r\n \t5.1가나\"'()/",
    "--b", "Content-Type: ", "multipart/report; report-type=delivery-status; boundary=b",
    "message/delivery-status", "message/feedback-report", "text/rfc822-headers",
    "Action: failed", "Status: 5.1.1", "Final-Recipient: rfc822; ", "Feedback-Type: abuse",
    "From: MAILER-DAEMON@x.kr", "Subject: Undeliverable", "Auto-Submitted: auto-replied",
    "Content-Transfer-Encoding: base64", "charset=euc-kr", "=?utf-8?b?7IOI?=", "\r\n\r\n",
]  # fmt: skip
_MAILISH = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=600), _MAILISH.map(lambda t: t.encode("utf-8"))))
def test_any_bytes_give_a_classification_never_an_exception(raw: bytes) -> None:
    found = classify(raw)
    assert isinstance(found, Classified) and found.reason


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=200),
    st.sampled_from(["5.1.1", "5.2.2", "4.4.1", "5.7.1"]),
)
def test_a_dsn_is_read_whatever_the_diagnostic_says(diagnostic: str, status: str) -> None:
    found = classify(_dsn("failed", status, f"550 {diagnostic}"))
    assert found.source is Source.DSN and found.is_signal
    assert found.clues.recipients == ("가나다@example.kr",)
