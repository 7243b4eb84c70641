"""messages: digest content → email bytes, read back the way mail clients read them.

Golden files: ``pytest tests/newsletter/test_messages.py --regen-golden`` rewrites
tests/golden/digests/.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.delivery.mime import (
    DkimKey,
    dkim_sign,
    encode_words,
    format_address,
    header_text,
    html_part,
    parse_message,
    qp_value,
    qp_with_slots,
)
from feedsvc.errors import ConfigError
from feedsvc.newsletter.messages import (
    DigestContent,
    MessageTemplate,
    Personal,
    Sender,
    inline_css,
    render_confirmation,
    render_digest,
)
from feedsvc.newsletter.views import period_view, post_view, preheader
from feedsvc.templating import environment, render
from tests.conftest import TESTS_DIR
from tests.digest_helpers import (
    SECRET,
    SITE_URL,
    by_class,
    digest_settings,
    make_post,
    minji,
    parse_html,
    sample_content,
    sample_posts,
    text_of,
)

GOLDEN = TESTS_DIR / "golden" / "digests"
DATA = TESTS_DIR / "data"
SINGLE = (
    "From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
)  # fmt: skip


def build(content: DigestContent | None = None, **sections: Any) -> MessageTemplate:
    settings = digest_settings(**sections)
    return render_digest(
        Sender.from_settings(settings), content or sample_content(), environment(settings)
    )


def message_for(person: Personal | None = None, **sections: Any) -> bytes:
    return build(**sections).personalise(person or minji()).data


def parsed(data: bytes) -> EmailMessage:
    return parse_message(data)


def text_part(data: bytes) -> str:
    body = parsed(data).get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# --- Korean headers ----------------------------------------------------------------------

SUBJECTS = [
    "부산 시정 소식: 새 글 3편",
    "부산 시정 소식: " + "해운대 해수욕장 개장, 광안리 드론쇼, 부산국제영화제 소식과 " * 5,
    ("가나다라마바사아자차카타파하 " * 15)[:200],
    "한" * 200,
    " 앞뒤 공백 ",
    "공백  두 칸   세 칸",
    "=?utf-8?q?fake?= 부산",
    "“부산” — 새 글 ‘3편’: 스마트시티 & <안내>",
    "ASCII only subject line",
    "A" * 120,
]


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{len(s)}-chars")
def test_subject_round_trips_exactly(subject: str) -> None:
    """Parsing as_bytes() gives the subject back, short or 200 Korean characters long,
    including the cases Python 3.11's own header folder gets wrong (spaces lost or doubled,
    literal '=?')."""
    data = message_for(digest={"subject": subject})
    assert parsed(data)["Subject"] == subject.strip()
    assert max(len(line) for line in data.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998


def test_a_200_character_korean_subject_is_folded_into_short_lines() -> None:
    subject = "부산 시정 소식: " + "새 글이 올라왔습니다 " * 18
    assert len(subject) >= 200
    data = message_for(digest={"subject": subject})
    head = data.split(b"\r\n\r\n")[0].decode("ascii")
    subject_lines = re.search(r"^Subject:.*?(?=\r\n\S)", head, re.M | re.S)
    assert subject_lines is not None
    assert all(len(line) <= 78 for line in subject_lines.group().split("\r\n"))
    assert parsed(data)["Subject"] == subject.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=250))
def test_encoded_words_decode_to_the_exact_text(text: str) -> None:
    data = f"Subject: {encode_words(text, 69)}\r\n\r\n".encode("ascii")
    assert BytesParser(policy=policy.default).parsebytes(data)["Subject"] == text


@pytest.mark.parametrize(
    "name",
    ["김민지", "구독자 김민지 (부산)", "Kim, Minji", 'Minji "MJ" Kim', "=?utf-8?q?x?=", "가" * 15],
)
def test_display_names_round_trip_in_to(name: str) -> None:
    """Names up to 45 UTF-8 bytes (15 Korean characters) fit one encoded-word and come
    back exactly from Python's parser too."""
    data = message_for(replace(minji(), name=name))
    to = parsed(data)["To"]
    assert to.addresses[0].display_name == name
    assert to.addresses[0].addr_spec == "minji@example.kr"


@pytest.mark.parametrize("name", ["가" * 16, "부산광역시 해운대구 우동 구독자 " * 8])
def test_long_display_names_decode_exactly_by_rfc_2047(name: str) -> None:
    """Longer names take several encoded-words; RFC 2047 §6.2 decoders (mail clients, and
    ``email.header.decode_header``) drop the folding between them. (``email``'s newer
    header parser adds a space between encoded-words in a display name, even for the
    ones ``email`` writes itself: a Python bug, not something the sender can fix.)"""
    data = message_for(replace(minji(), name=name.strip()))
    raw = re.search(rb"^To: (.*?) <minji@example\.kr>", data, re.M | re.S)
    assert raw is not None
    words = raw.group(1).decode("ascii")
    assert all(len(line) <= 78 for line in f"To: {words}".split("\r\n"))
    assert str(make_header(decode_header(words))) == name.strip()


def test_from_and_list_id_carry_the_korean_site_name() -> None:
    message = parsed(message_for())
    assert message["From"].addresses[0].display_name == "부산 시정 소식 편집팀"
    assert message["From"].addresses[0].addr_spec == "news@example.kr"
    assert message["List-Id"] == "부산 시정 소식 <digest.news.example.kr>"


def test_an_international_domain_is_sent_in_idna_form() -> None:
    data = message_for(replace(minji(), email="minji@부산.kr"))
    assert b"<minji@xn--" in data
    assert "minji@부산.kr" in html_part(data)


def test_no_name_gives_a_bare_address() -> None:
    assert format_address(None, "minji@example.kr", "To") == "minji@example.kr"


def test_plain_ascii_subjects_stay_readable() -> None:
    assert header_text("Weekly news", "Subject") == "Weekly news"
    assert header_text("부산", "Subject").startswith("=?utf-8?b?")


# --- structure and headers -----------------------------------------------------------------


def test_every_header_is_present_once() -> None:
    message = parsed(message_for())
    for name in SINGLE:
        assert len(message.get_all(name) or []) == 1, name


def test_multipart_alternative_text_then_html_in_utf8_quoted_printable() -> None:
    message = parsed(message_for())
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_lines_are_short_and_the_message_is_seven_bit() -> None:
    data = message_for()
    head, _, body = data.partition(b"\r\n\r\n")
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_rfc_8058_one_click_headers() -> None:
    person = minji()
    message = parsed(message_for(person))
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert links == [person.unsubscribe_url]  # no mailto to the From address nobody reads
    assert links[0].startswith("https://")
    with_mailto = replace(person, unsubscribe_mailto="unsubscribe+abc234@news.example.kr")
    links = re.findall(r"<([^>]+)>", parsed(message_for(with_mailto))["List-Unsubscribe"])
    assert links == [
        person.unsubscribe_url,
        "mailto:unsubscribe+abc234@news.example.kr?subject=unsubscribe",
    ]


def test_the_mailto_unsubscribe_names_the_delivery_when_an_address_is_configured() -> None:
    """With bounces.unsubscribe_address, List-Unsubscribe offers a mailto: to that
    delivery's own address, which the bounce processing reads back to the delivery."""
    from feedsvc.delivery.return_path import UNSUBSCRIBE_CONTEXT, ReturnPaths
    from feedsvc.newsletter.jobs import Renderer
    from feedsvc.newsletter.tokens import Tokens

    template = "unsubscribe+{token}@news.example.kr"
    settings = digest_settings(bounces={"unsubscribe_address": template})
    tokens = Tokens(SECRET)
    renderer = Renderer(settings, tokens)
    person = renderer.personal(42, "minji@example.kr", "김민지", delivery_id=1234)
    assert renderer.personal(42, "minji@example.kr", None).unsubscribe_mailto is None  # preview
    message = parsed(build().personalise(person).data)
    links = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert links[0] == person.unsubscribe_url
    mailto = links[1].removeprefix("mailto:").removesuffix("?subject=unsubscribe")
    assert mailto != links[1] and mailto.endswith("@news.example.kr")
    assert ReturnPaths(template, tokens.keys, UNSUBSCRIBE_CONTEXT).delivery(mailto) == 1234


def test_unsubscribe_and_preferences_links_are_visible_in_both_parts() -> None:
    person = minji()
    data = message_for(person)
    document = parse_html(html_part(data))
    links = {a.get("href"): text_of(a) for a in document.iter("a")}
    assert links[person.unsubscribe_url] == "구독 해지"
    assert links[person.preferences_url] == "구독 설정 변경"
    text = text_part(data)
    assert f"구독 해지: {person.unsubscribe_url}" in text
    assert f"구독 설정 변경: {person.preferences_url}" in text


def test_message_id_is_deterministic_per_digest_and_subscriber() -> None:
    first = build().personalise(minji(42))
    again = build().personalise(minji(42))
    other = build().personalise(minji(43))
    other_digest = build(sample_content(digest_id=8)).personalise(minji(42))
    assert first.message_id == again.message_id
    assert first.data == again.data
    assert len({first.message_id, other.message_id, other_digest.message_id}) == 3
    assert re.fullmatch(r"<7\.42\.[0-9a-f]{10}@example\.kr>", first.message_id)
    assert parsed(first.data)["Message-ID"] == first.message_id


def test_date_is_the_digest_creation_in_the_site_zone() -> None:
    assert parsed(message_for())["Date"] == "Sat, 01 Jun 2024 08:00:00 +0900"


def test_personalising_gives_what_rendering_each_recipient_would() -> None:
    """Substitution into the serialised message decodes to exactly what a full render with
    the recipient's own values gives (the naive way), for both parts."""
    settings = digest_settings()
    sender = Sender.from_settings(settings)
    env = environment(settings)
    content = sample_content()
    template = render_digest(sender, content, env)
    for person in (
        minji(),
        replace(minji(9), email="jisu+news@부산.kr", name=None),
        replace(minji(10), unsubscribe_url=SITE_URL + "unsubscribe/" + "x" * 300),
    ):
        data = template.personalise(person).data
        context = _direct_context(sender, content, person)
        expected_html = inline_css(render(env, "digest.html.j2", context), "digest.html.j2")
        assert html_part(data) == expected_html
        assert text_part(data) == render(env, "digest.txt.j2", context)


def _direct_context(sender: Sender, content: DigestContent, person: Personal) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(content.period.timezone)
    views = [post_view(p, tz, "ko") for p in content.posts]
    return {
        "site": sender.site,
        "posts": views,
        "period": period_view(content.period, tz, "ko"),
        "preheader": preheader(views),
        "count_label": "새 글 3편",
        "subject": "부산 시정 소식: 새 글 3편",
        "unsubscribe_url": person.unsubscribe_url,
        "preferences_url": person.preferences_url,
        "email": person.email,
    }


def test_text_that_looks_like_a_placeholder_is_left_alone() -> None:
    """A post quoting the placeholder spelling does not get anybody's link."""
    tricky = make_post(
        "tricky",
        title="FeedsvcSlot0UNSUBHx",
        summary="FeedsvcSlot0UNSUBTx and FeedsvcSlot1ADDRTx",
    )
    data = build(sample_content((tricky,))).personalise(minji()).data
    assert "FeedsvcSlot0UNSUBHx" in html_part(data)
    assert "FeedsvcSlot0UNSUBTx and FeedsvcSlot1ADDRTx" in text_part(data)
    assert minji().unsubscribe_url in html_part(data)


def test_rendering_happens_once_per_content() -> None:
    template = build()
    assert template.slots.count("TO") == 1
    assert sorted(set(template.slots)) == sorted(
        ["TO", "MESSAGEID", "LISTUNSUB", "UNSUBH", "UNSUBT", "PREFSH", "PREFST", "ADDRH", "ADDRT"]
    )


# --- quoted-printable ------------------------------------------------------------------------

_SLOT = re.compile(r"FeedsvcSlot0(A|B)x")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=120),
            st.sampled_from(["FeedsvcSlot0Ax", "FeedsvcSlot0Bx"]),
        ),
        max_size=12,
    ),
    # Slot values are one line (addresses, URLs, Message-IDs): no CR or LF in them.
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=200),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=200),
)
def test_quoted_printable_with_slots_decodes_exactly(
    pieces: list[str], first: str, second: str
) -> None:
    text = "".join(pieces)
    if _SLOT.sub("", text) != re.sub(r"FeedsvcSlot0[AB]x", "", text):
        return
    encoded = qp_with_slots(text, _SLOT).replace("\n", "\r\n").encode("ascii")
    values = {b"A": qp_value(first), b"B": qp_value(second)}
    filled = re.sub(rb"FeedsvcSlot0(A|B)x", lambda m: values[m.group(1)], encoded)
    assert all(len(line) <= 76 for line in filled.split(b"\r\n"))
    decoded = binascii.a2b_qp(filled).decode("utf-8").replace("\r\n", "\n")
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    expected = _SLOT.sub(lambda m: first if m.group(1) == "A" else second, expected)
    assert decoded == expected


# --- sanitising and URLs -----------------------------------------------------------------------

DANGEROUS = {
    "script": '<script>alert("x")</script>',
    "style": "<style>body { display: none }</style>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "event handler": '<img src="cat.png" onerror="alert(1)">',
    "onclick": '<div onclick="steal()">누르세요</div>',
    "javascript url": '<a href="javascript:alert(1)">링크</a>',
    "javascript mixed case": '<a href="JaVaScRiPt:alert(1)">링크</a>',
    "javascript with spaces": '<a href="  javascript:alert(1)">링크</a>',
    "javascript with entity": '<a href="jav&#x09;ascript:alert(1)">링크</a>',
    "data url": '<a href="data:text/html;base64,PHNjcmlwdD4=">링크</a>',
    "svg onload": '<svg onload="alert(1)"><circle r="1"/></svg>',
    "form": '<form action="https://evil.example/"><input name="pw"></form>',
    "object": '<object data="https://evil.example/x.swf"></object><embed src="x.swf">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "base": '<base href="https://evil.example/">',
    "style attribute": '<p style="position: fixed; top: 0">덮어쓰기</p>',
}


@pytest.mark.parametrize("construct", DANGEROUS.values(), ids=list(DANGEROUS))
def test_dangerous_post_html_never_reaches_the_email(construct: str) -> None:
    post = make_post("danger", html=f"<p>안전한 글</p>{construct}")
    data = build(sample_content((post,))).personalise(minji()).data
    document = parse_html(html_part(data))
    body = document.find("body")
    assert body is not None
    assert "안전한 글" in text_of(body)
    for element in body.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        assert tag.lower() not in {"script", "style", "iframe", "form", "input", "object"}
        assert tag.lower() not in {"embed", "svg", "meta", "base", "link"}
        for key, raw in element.attrib.items():
            name, value = str(key), str(raw)
            assert not name.lower().startswith("on"), (name, value)
            if name in ("href", "src"):
                assert value.startswith(("https://", "http://", "mailto:")), value
    post_body = by_class(document, "body")[0]
    for element in post_body.iter():
        assert "position" not in (element.get("style") or "")


def test_every_link_and_image_is_absolute() -> None:
    post = make_post(
        "relative",
        html='<p><a href="/events/">행사</a> <a href="map/">지도</a> <img src="a.png" alt=""></p>',
        image=SITE_URL + "img/cover.jpg",
    )
    data = build(sample_content((post,))).personalise(minji()).data
    document = parse_html(html_part(data))
    urls = [a.get("href") for a in document.iter("a")] + [
        i.get("src") for i in document.iter("img")
    ]
    assert all(url and url.startswith(("https://", "mailto:")) for url in urls), urls
    assert f"{SITE_URL}events/" in urls
    assert f"{SITE_URL}2024/05/31/relative/map/" in urls
    assert f"{SITE_URL}2024/05/31/relative/a.png" in urls
    assert f"{SITE_URL}img/cover.jpg" in urls


def test_several_posts_show_summaries_one_post_shows_its_text() -> None:
    many = html_part(message_for())
    assert "올해 해운대 바다축제는 6월 1일부터" in many  # the summary
    one = html_part(build(sample_content(sample_posts()[:1])).personalise(minji()).data)
    assert "행사 안내" in one  # the body's link text


def test_css_is_inlined_and_media_queries_stay_in_the_head() -> None:
    document = parse_html(html_part(message_for()))
    styles = [text_of(s) for s in document.iter("style")]
    assert len(styles) == 1
    assert "prefers-color-scheme: dark" in styles[0]
    assert "max-width: 620px" in styles[0]
    title = by_class(document, "post-title")[0]
    assert "font-size: 20px" in (title.get("style") or "")


def test_the_preheader_comes_from_the_excerpts() -> None:
    document = parse_html(html_part(message_for()))
    hidden = document.find("body").find("div")  # type: ignore[union-attr]
    assert hidden is not None and "display: none" in (hidden.get("style") or "")
    assert text_of(hidden).startswith("올해 해운대 바다축제는 6월 1일부터")


def test_titles_are_escaped_in_html_and_plain_in_text() -> None:
    data = message_for()
    assert "노선 개편 &amp; 첫차 시간 변경 &lt;안내&gt;" in html_part(data)
    assert "노선 개편 & 첫차 시간 변경 <안내>" in text_part(data)


# --- configuration errors --------------------------------------------------------------------


def test_a_broken_subject_template_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"digest\.subject = .*posts \| nope"):
        build(digest={"subject": "{{ posts | nope }}"})


def test_a_sender_without_an_address_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"digest\.from = '편집팀': expected a sender"):
        build(digest={"from": "편집팀"})


def test_a_template_without_an_unsubscribe_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("{{ site.title }}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(?s)in /.*/digest\.txt\.j2:.*unsubscribe_url"):
        build(templates={"dir": str(tmp_path)})


# --- golden files ------------------------------------------------------------------------------


def golden_render() -> dict[str, bytes]:
    data = message_for()
    return {
        "digest.eml": data,
        "digest.html": html_part(data).encode("utf-8"),
        "digest.txt": text_part(data).encode("utf-8"),
    }


def test_golden_files(request: pytest.FixtureRequest) -> None:
    """Byte for byte; after a deliberate change: pytest tests/newsletter/test_messages.py
    --regen-golden."""
    rendered = golden_render()
    if request.config.getoption("--regen-golden"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, data in rendered.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in rendered.items():
        assert (GOLDEN / name).read_bytes() == data, (
            f"{name} differs from tests/golden/digests/{name}; if the change is intended, "
            "run: pytest tests/newsletter/test_messages.py --regen-golden"
        )


# --- DKIM ---------------------------------------------------------------------------------------


def _dkim_key() -> DkimKey:
    pem = (DATA / "dkim-test.key.pem").read_bytes()
    return DkimKey.from_pem("example.kr", "feedsvc", pem, "tests/data/dkim-test.key.pem")


def _fake_dns(name: bytes, timeout: int = 5) -> bytes:
    assert name == b"feedsvc._domainkey.example.kr."
    return (DATA / "dkim-test.dns.txt").read_bytes().strip()


def test_dkim_signature_verifies_offline_and_covers_list_unsubscribe() -> None:
    signed = dkim_sign(message_for(), _dkim_key())
    assert dkim.verify(signed, dnsfunc=_fake_dns)
    signature = parsed(signed)["DKIM-Signature"]
    fields = dict(
        part.strip().split("=", 1) for part in re.sub(r"\s+", "", str(signature)).split(";") if part
    )
    signed_headers = fields["h"].lower().split(":")
    assert "list-unsubscribe" in signed_headers
    assert "list-unsubscribe-post" in signed_headers
    assert {"from", "to", "subject", "message-id"} <= set(signed_headers)


def test_a_changed_list_unsubscribe_header_breaks_the_signature() -> None:
    signed = dkim_sign(message_for(), _dkim_key())
    tampered = signed.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X: y")
    assert not dkim.verify(tampered, dnsfunc=_fake_dns)


def test_a_bad_dkim_key_names_the_file() -> None:
    with pytest.raises(ConfigError, match=r"(?s)key\.pem.*not a usable RSA private key"):
        DkimKey.from_pem("example.kr", "s", b"not a key", "key.pem")


# --- confirmation ---------------------------------------------------------------------------------


def test_confirmation_message_in_korean() -> None:
    settings = digest_settings()
    url = "https://news.example.kr/confirm/42.abc.def"
    data = render_confirmation(
        Sender.from_settings(settings),
        environment(settings),
        email="minji@example.kr",
        confirm_url=url,
        valid_for=timedelta(days=7),
        now=datetime(2024, 6, 1, tzinfo=UTC),
    )
    message = parsed(data)
    assert message["Subject"] == "부산 시정 소식 구독을 확인해 주세요"
    assert str(message["To"]) == "minji@example.kr"  # no name: a stranger may have typed it
    assert message["List-Unsubscribe"] is None
    assert url in html_part(data) and url in text_part(data)
    assert "7일 동안 유효합니다" in text_part(data)
