"""Subscribers without I/O: addresses, fields, the CSV parser and export rows."""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import AddressError, CsvFormatError
from feedsvc.models import Frequency, Subscriber, SubscriberInput, SubscriberStatus
from feedsvc.newsletter.subscriber_csv import (
    EXPORT_COLUMNS,
    BadRow,
    SubscriberCsv,
    check_encoding,
    csv_lines,
    decoded_lines,
    export_row,
)
from feedsvc.newsletter.subscribers import (
    clean_name,
    format_time,
    normalise_address,
    parse_categories,
    parse_frequency,
    parse_ip,
    parse_status,
    parse_time,
    parse_timezone,
    subscriber_json,
)
from feedsvc.storage.subscribers import suppression_hash

SEOUL = timezone(timedelta(hours=9))
T0 = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)


def _csv(text: str, **options: object) -> list[SubscriberInput | BadRow]:
    return list(SubscriberCsv(io.StringIO(text, newline=""), source="구독자.csv", **options))  # type: ignore[arg-type]


def _good(items: list[SubscriberInput | BadRow]) -> list[SubscriberInput]:
    return [item for item in items if isinstance(item, SubscriberInput)]


def _bad(items: list[SubscriberInput | BadRow]) -> list[BadRow]:
    return [item for item in items if isinstance(item, BadRow)]


# --- addresses ----------------------------------------------------------------------


def test_address_is_trimmed_and_lower_cased() -> None:
    assert normalise_address("  Minji.Kim@Example.KR ") == "minji.kim@example.kr"


def test_internationalised_domain_is_kept_in_unicode() -> None:
    assert normalise_address("민지@실례.한국") == "민지@실례.한국"


def test_punycode_domain_normalises_to_the_same_address_as_unicode() -> None:
    assert normalise_address("a@xn--9n2bp8q.xn--3e0b707e") == normalise_address("a@실례.한국")


def test_unicode_local_part_is_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "김민지") + "@example.kr"
    assert normalise_address(decomposed) == "김민지@example.kr"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("minji", "must have an @-sign"),
        ("minji@", "something after the @-sign"),
        ("min..ji@example.kr", "two periods in a row"),
        ("minji@localhost", "should have a period"),
        ("구독자 김민지 <minji@example.kr>", "display name"),
        ("", "it is empty"),
    ],
)
def test_invalid_address_is_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason) as caught:
        normalise_address(raw)
    assert caught.value.address.strip() == raw.strip()


def test_reserved_test_domain_is_refused_unless_allowed() -> None:
    with pytest.raises(AddressError, match="special-use or reserved"):
        normalise_address("user1@example.test")
    assert normalise_address("User1@Example.TEST", allow_test_domains=True) == "user1@example.test"


def test_invalid_domain_message_names_the_whole_address() -> None:
    with pytest.raises(AddressError, match=r"'minji@exa_mple\.kr'"):
        normalise_address("minji@exa_mple.kr")


_LOCAL = st.text(
    alphabet=st.sampled_from("abcXYZ019.!#$%&'*+/=?^_`{|}~-\"(),:;<>@[\\] 가"),
    min_size=0,
    max_size=70,
)
_DOMAIN = st.sampled_from(
    [
        "example.kr",
        "EXAMPLE.com",
        "sub.example.co.kr",
        "example.test",
        "localhost",
        "exa_mple.kr",
        "-bad.kr",
        "x" * 70 + ".kr",
        "실례.한국",
        "xn--9n2bp8q.xn--3e0b707e",
        "example.invalid",
        "[127.0.0.1]",
        "example..kr",
        "e.x",
        "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".kr",
    ]
)


@settings(max_examples=400, deadline=None)
@given(local=_LOCAL, domain=_DOMAIN, allow_test=st.booleans())
def test_fast_path_agrees_with_email_validator(local: str, domain: str, allow_test: bool) -> None:
    """The shortcut for plain addresses gives exactly email-validator's verdict.

    (On the address without surrounding spaces: normalise_address trims them first.)
    """
    address = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(
            address.strip(), check_deliverability=False, test_environment=allow_test
        ).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalise_address(address, allow_test_domains=allow_test)
    except AddressError:
        got = None
    if expected is not None and got is not None:
        assert got == expected
    else:
        assert got is None and expected is None


# --- fields -------------------------------------------------------------------------


def test_name_is_nfc_with_whitespace_collapsed() -> None:
    decomposed = unicodedata.normalize("NFD", "구독자  김민지\n")
    assert clean_name(decomposed) == "구독자 김민지"


def test_empty_name_is_none() -> None:
    assert clean_name("   ") is None


def test_name_with_control_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="control characters"):
        clean_name("김민지\x07")


def test_overlong_name_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 256"):
        clean_name("김" * 300)


def test_frequency_is_case_insensitive_and_defaults_to_daily() -> None:
    assert parse_frequency(" Weekly ") is Frequency.WEEKLY
    assert parse_frequency("") is Frequency.DAILY


def test_unknown_frequency_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'monthly' \(use immediate, daily, weekly\)"):
        parse_frequency("monthly")


def test_status_defaults_to_active_and_refuses_unknown_values() -> None:
    assert parse_status("") is SubscriberStatus.ACTIVE
    assert parse_status("Unsubscribed") is SubscriberStatus.UNSUBSCRIBED
    with pytest.raises(ValueError, match="unknown status 'gone'"):
        parse_status("gone")


def test_categories_are_split_trimmed_and_deduplicated() -> None:
    assert parse_categories(" 부산 ; 스마트시티;;tech;Tech ") == ("부산", "스마트시티", "tech")


def test_no_categories_means_every_category() -> None:
    assert parse_categories("") == ()


def test_timezone_is_checked_and_empty_means_the_site_zone() -> None:
    assert parse_timezone(" Asia/Seoul ") == "Asia/Seoul"
    assert parse_timezone("") is None


def test_wrongly_cased_timezone_suggests_the_right_name() -> None:
    with pytest.raises(ValueError, match="did you mean Asia/Seoul"):
        parse_timezone("asia/seoul")


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Seoul'"):
        parse_timezone("Seoul")


def test_time_without_zone_is_in_the_given_zone() -> None:
    assert parse_time("2024-03-01T09:30:00", SEOUL) == T0
    assert parse_time("2024-03-01T00:30:00Z", SEOUL) == T0
    assert parse_time("", SEOUL) is None


def test_bad_time_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="use ISO 8601"):
        parse_time("3월 1일", UTC)


def test_time_is_formatted_in_utc_with_z() -> None:
    assert format_time(T0.astimezone(SEOUL)) == "2024-03-01T00:30:00Z"
    assert format_time(None) == ""


def test_ip_is_normalised_and_checked() -> None:
    assert parse_ip("2001:DB8::1") == "2001:db8::1"
    with pytest.raises(ValueError, match="not an IP address"):
        parse_ip("300.1.1.1")


def test_suppression_hash_is_stable_and_differs_per_address() -> None:
    first = suppression_hash("minji@example.kr")
    assert first == suppression_hash("minji@example.kr")
    assert len(first) == 64
    assert first != suppression_hash("jisu@example.kr")


# --- CSV ----------------------------------------------------------------------------


def test_good_rows_become_inputs_with_their_line_numbers() -> None:
    items = _csv(
        "email,name,frequency,categories,timezone\n"
        "minji@example.kr,구독자 김민지,weekly,부산;스마트시티,Asia/Seoul\n"
        "jisu@example.kr,구독자 박지수,,,\n"
    )
    assert items == [
        SubscriberInput(
            email="minji@example.kr",
            name="구독자 김민지",
            frequency=Frequency.WEEKLY,
            categories=("부산", "스마트시티"),
            timezone="Asia/Seoul",
            line=2,
        ),
        SubscriberInput(email="jisu@example.kr", name="구독자 박지수", line=3),
    ]


def test_missing_optional_columns_are_allowed() -> None:
    reader = SubscriberCsv(
        io.StringIO("email,name,frequency,categories\nminji@example.kr,김민지,daily,\n"),
        source="s.csv",
    )
    assert reader.updates == {"name", "frequency", "categories"}
    assert [row.timezone for row in _good(list(reader))] == [None]


def test_header_is_case_and_space_insensitive() -> None:
    [row] = _csv(" Email , NAME \nminji@example.kr,김민지\n")
    assert isinstance(row, SubscriberInput)
    assert row.name == "김민지"


def test_byte_order_mark_left_in_the_header_is_ignored() -> None:
    [row] = _csv("\ufeffemail,name\nminji@example.kr,김민지\n")
    assert isinstance(row, SubscriberInput)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"구독자\.csv:1: expected a header line"),
        ("name,frequency\n김민지,daily\n", "no 'email' column"),
        ("email,phone,age\n", r"unknown column\(s\) 'phone', 'age'"),
        ("email,name,name\n", r"column\(s\) given twice: 'name'"),
    ],
)
def test_unusable_header_is_an_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        SubscriberCsv(io.StringIO(text), source="구독자.csv")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("not-an-address,김민지,daily,,", "invalid address 'not-an-address'"),
        (",김민지,daily,,", "the email cell is empty"),
        ("minji@example.kr,김민지,monthly,,", "unknown frequency 'monthly'"),
        ("minji@example.kr,김민지,daily,,Seoul", "unknown time zone 'Seoul'"),
        ("minji@example.kr,김민지,daily", "3 fields, but the header has 5"),
        ("minji@example.kr,김민지\x07,daily,,", "control characters"),
    ],
)
def test_bad_row_is_reported_with_line_and_reason(row: str, reason: str) -> None:
    items = _csv(
        "email,name,frequency,categories,timezone\n"
        f"jisu@example.kr,구독자 박지수,daily,,\n{row}\nhana@example.kr,하나,weekly,,\n"
    )
    [bad] = _bad(items)
    assert bad.line == 3
    assert reason in bad.reason
    assert [row.email for row in _good(items)] == ["jisu@example.kr", "hana@example.kr"]


def test_duplicate_address_in_the_file_is_a_bad_row_naming_the_first_line() -> None:
    items = _csv(
        "email,name\nminji@example.kr,김민지\njisu@example.kr,박지수\nMINJI@example.kr,민지\n"
    )
    [bad] = _bad(items)
    assert bad.line == 4
    assert "duplicate of line 2" in bad.reason
    assert [row.name for row in _good(items)] == ["김민지", "박지수"]


def test_bad_export_columns_are_bad_rows() -> None:
    items = _csv(
        "email,status,created,consent_ip\n"
        "a@example.kr,gone,,\n"
        "b@example.kr,active,yesterday,\n"
        "c@example.kr,active,,1.2.3.999\n"
    )
    assert [(bad.line, bad.reason.split(": ", 1)[1][:20]) for bad in _bad(items)] == [
        (2, "unknown status 'gone"),
        (3, "'yesterday' is not a"),
        (4, "consent_ip '1.2.3.99"),
    ]


def test_line_numbers_count_lines_inside_quoted_fields() -> None:
    items = _csv('email,name\nminji@example.kr,"구독자\n김민지"\nbad,x\n')
    [bad] = _bad(items)
    assert bad.line == 4
    assert _good(items)[0].name == "구독자 김민지"


def test_blank_lines_are_skipped() -> None:
    items = _csv("email,name\n\nminji@example.kr,김민지\n\n")
    assert [row.line for row in _good(items)] == [3]


def test_consent_source_defaults_to_the_one_given() -> None:
    [row] = _csv("email\nminji@example.kr\n", consent_source="import 구독자.csv")
    assert isinstance(row, SubscriberInput)
    assert row.consent_source == "import 구독자.csv"


def test_dates_without_zone_are_in_the_assumed_zone() -> None:
    [row] = _csv("email,created\nminji@example.kr,2024-03-01 09:30\n", assume_timezone=SEOUL)
    assert isinstance(row, SubscriberInput)
    assert row.created == T0


def test_updates_leave_identity_creation_and_consent_alone() -> None:
    reader = SubscriberCsv(io.StringIO(",".join(EXPORT_COLUMNS) + "\n"), source="x.csv")
    assert reader.updates == {
        "name",
        "frequency",
        "categories",
        "timezone",
        "status",
        "confirmed",
        "unsubscribed",
    }


# --- output -------------------------------------------------------------------------


def _subscriber() -> Subscriber:
    return Subscriber(
        id=7,
        email="minji@example.kr",
        name="구독자 김민지",
        status=SubscriberStatus.UNSUBSCRIBED,
        frequency=Frequency.WEEKLY,
        categories=("부산", "스마트시티"),
        timezone="Asia/Seoul",
        created=T0,
        confirmed=T0 + timedelta(minutes=5),
        unsubscribed=T0 + timedelta(days=3, microseconds=12),
        consent_source="web",
        consent_ip="203.0.113.7",
    )


def test_export_row_reads_back_as_the_same_subscriber() -> None:
    text = "".join(csv_lines([export_row(_subscriber())]))
    [row] = _csv(text)
    assert row == SubscriberInput(
        email="minji@example.kr",
        name="구독자 김민지",
        frequency=Frequency.WEEKLY,
        categories=("부산", "스마트시티"),
        timezone="Asia/Seoul",
        status=SubscriberStatus.UNSUBSCRIBED,
        created=T0,
        confirmed=T0 + timedelta(minutes=5),
        unsubscribed=T0 + timedelta(days=3, microseconds=12),
        consent_source="web",
        consent_ip="203.0.113.7",
        line=2,
    )


def test_csv_lines_start_with_the_header_and_end_lines_with_crlf() -> None:
    lines = list(csv_lines([export_row(_subscriber())]))
    assert lines[0] == ",".join(EXPORT_COLUMNS) + "\r\n"
    assert lines[1].startswith("minji@example.kr,구독자 김민지,weekly,부산;스마트시티,")


def test_json_form_keeps_korean_and_lists_categories() -> None:
    data = subscriber_json(_subscriber())
    assert data["name"] == "구독자 김민지"
    assert data["categories"] == ["부산", "스마트시티"]
    assert data["unsubscribed"] == "2024-03-04T00:30:00.000012Z"


def test_decoding_reports_the_line_of_an_undecodable_byte() -> None:
    chunks = [
        b"email,name\n",
        "a@example.kr,김민지\n".encode(),
        "b@example.kr,박지수\n".encode("cp949"),
    ]
    lines = decoded_lines(chunks, encoding="utf-8-sig", source="구독자.csv")
    assert next(lines) == "email,name\n"
    assert next(lines) == "a@example.kr,김민지\n"
    with pytest.raises(CsvFormatError, match=r"구독자\.csv:3: the file is not valid utf-8-sig"):
        next(lines)


def test_decoding_drops_a_byte_order_mark() -> None:
    chunks = ["\ufeffemail\n".encode()]
    assert list(decoded_lines(chunks, encoding="utf-8-sig", source="s.csv")) == ["email\n"]


@pytest.mark.parametrize(("encoding", "message"), [("klingon", "unknown"), ("utf-16", "ASCII")])
def test_unusable_encodings_are_refused(encoding: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_encoding(encoding)
