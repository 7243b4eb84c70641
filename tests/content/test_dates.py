"""feedsvc.content.dates: what Ruby's Time.parse reads (as Jekyll does), and a post whose
front-matter date cannot be read published with its file name's date and a warning.

The expected values are Ruby's readings, worked out from Date._parse (ext/date/
date_parse.c) and Time.parse/make_time (lib/time.rb) with the site's zone as local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.config import settings_from_mapping
from feedsvc.content.dates import read_date, to_datetime
from feedsvc.content.posts import ParsedSource, parse_source
from feedsvc.errors import ContentError
from feedsvc.models import Severity

LA = ZoneInfo("America/Los_Angeles")
SEOUL = ZoneInfo("Asia/Seoul")
PST = timezone(timedelta(hours=-8))
KST = timezone(timedelta(hours=9))
IST = timezone(timedelta(hours=5, minutes=30))


def at(*parts: int, tz: object = LA) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[arg-type,misc]


# value, the moment on a site in America/Los_Angeles (jekyllrb.com's zone), what is left out
RUBY_READINGS = [
    # the real-world typo from jekyllrb.com's news: a stray year. The zone after it is not
    # the time's (Date._parse takes a zone only right after the time), so the time is local.
    ("2023-01-29 18:30:22 2023 -0800", at(2023, 1, 29, 18, 30, 22), "2023 -0800"),
    ("2023-01-29 18:30:22 -0800", at(2023, 1, 29, 18, 30, 22, tz=PST), ""),
    ("2023-01-29 18:30", at(2023, 1, 29, 18, 30), ""),
    ("2023-01-29T18:30:22.123+09:00", datetime(2023, 1, 29, 18, 30, 22, 123000, KST), ""),
    ("Jan 29 2023", at(2023, 1, 29), ""),
    ("January 29, 2023", at(2023, 1, 29), ""),
    ("January 29, 2023 6:30 PM", at(2023, 1, 29, 18, 30), ""),
    ("29 Jan 2023 18:30", at(2023, 1, 29, 18, 30), ""),
    ("29 January 2023", at(2023, 1, 29), ""),
    ("29-Jan-2023", at(2023, 1, 29), ""),
    ("Sun, 29 Jan 2023 18:30:22 -0800", at(2023, 1, 29, 18, 30, 22, tz=PST), ""),  # RFC 2822
    ("Sun, 29 Jan 2023 18:30:22 GMT", datetime(2023, 1, 29, 18, 30, 22, tzinfo=UTC), ""),
    ("Sun, 29 Jan 2023 18:30:22 PST", at(2023, 1, 29, 18, 30, 22, tz=PST), ""),  # RFC 822
    ("Sunday, January 29th, 2023", at(2023, 1, 29), ""),
    ("2023/01/29", at(2023, 1, 29), ""),
    ("2023/1/29 9:05", at(2023, 1, 29, 9, 5), ""),
    ("29/01/2023", at(2023, 1, 29), ""),  # day first: Ruby takes the long number as the year
    ("29.01.2023", at(2023, 1, 29), ""),
    ("2023.01.29 18:30", at(2023, 1, 29, 18, 30), ""),
    ("20230129", at(2023, 1, 29), ""),
    ("20230129T183022Z", datetime(2023, 1, 29, 18, 30, 22, tzinfo=UTC), ""),
    ("2023-01-29 6pm", at(2023, 1, 29, 18), ""),
    ("2023-01-29 12:15 am", at(2023, 1, 29, 0, 15), ""),
    ("2023-01-29 18:30:22 UTC", datetime(2023, 1, 29, 18, 30, 22, tzinfo=UTC), ""),
    ("2023-01-29 18:30 +0530", at(2023, 1, 29, 18, 30, tz=IST), ""),
    ("2023-01-29 18:30 -08", at(2023, 1, 29, 18, 30, tz=PST), ""),
    ("29 Jan 23", at(2023, 1, 29), ""),  # two-digit years are 1969–2068
    ("29 Jan 69", at(1969, 1, 29), ""),
    ("Jan 2023", at(2023, 1, 1), ""),  # what is missing below the year is its first
    ("2024-1-2", at(2024, 1, 2), ""),
    # zones Time.zone_offset does not know are left out: the time is local
    ("2023-01-29 18:30:22 +9", at(2023, 1, 29, 18, 30, 22), "+9"),
    ("2023-01-29 18:30 KST", at(2023, 1, 29, 18, 30), "KST"),
    (
        "Mon Jan 30 2023 10:00:00 GMT+0900 (Korean Standard Time)",  # JavaScript's Date
        at(2023, 1, 30, 10),
        "GMT+0900",
    ),
]


@pytest.mark.parametrize(("value", "moment", "ignored"), RUBY_READINGS)
def test_date_strings_are_read_as_ruby_time_parse_reads_them(
    value: str, moment: datetime, ignored: str
) -> None:
    got, left_out = read_date(value, LA)
    assert got == moment
    assert got is not None and got.utcoffset() == moment.utcoffset()
    assert left_out == ignored


def test_the_site_zone_names_its_own_abbreviation() -> None:
    """As Ruby does with TZ=Asia/Seoul: KST is the local zone's name, and so understood."""
    moment, ignored = read_date("2023-01-29 18:30 KST", SEOUL)
    assert (moment, ignored) == read_date("2023-01-29 18:30 +09:00", SEOUL)
    assert moment is not None and moment.utcoffset() == timedelta(hours=9) and not ignored


def test_the_stray_year_on_a_site_in_seoul_is_seoul_time_as_jekyll_reads_it() -> None:
    moment, _ = read_date("2023-01-29 18:30:22 2023 -0800", SEOUL)
    assert moment == datetime(2023, 1, 29, 18, 30, 22, tzinfo=SEOUL)


@pytest.mark.parametrize(
    "value",
    [
        "어제 오후",
        "Jan 29",  # no year: Ruby takes it from the clock, and the post would move yearly
        "18:30",
        "1/29/2023",  # Ruby reads month 29
        "2023-02-30",  # Ruby rolls it into March; a mistake is better told
        "2023-13-01",
        "",
        "nonsense",
    ],
)
def test_what_is_no_date_stays_no_date(value: str) -> None:
    assert to_datetime(value, LA) is None


def test_the_iso_fast_path_keeps_its_readings() -> None:
    """fromisoformat reads these first; Ruby agrees on each."""
    for value in ("2023-01-29", "2023-01-29 18:30:22", "2023-01-29T18:30:22+09:00"):
        fast = to_datetime(value, SEOUL)
        assert fast is not None and fast == to_datetime(value + " ", SEOUL)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2068, 12, 31)),
    st.sampled_from(
        [
            "%Y-%m-%d %H:%M:%S",
            "%d %b %Y %H:%M:%S",
            "%b %d %Y %H:%M:%S",
            "%Y/%m/%d %H:%M:%S",
            "%a, %d %b %Y %H:%M:%S +0900",
        ]
    ),
)
def test_every_written_form_reads_back_the_moment(moment: datetime, form: str) -> None:
    moment = moment.replace(microsecond=0)
    expected = moment.replace(tzinfo=KST if form.endswith("+0900") else SEOUL)
    assert to_datetime(moment.strftime(form), SEOUL) == expected


# --- in a post --------------------------------------------------------------------------

OPTIONS = settings_from_mapping(
    {"site": {"url": "https://jekyllrb.com/", "timezone": "America/Los_Angeles"}}
).parse_options


def parse(text: str, path: str) -> ParsedSource:
    return parse_source(path, text.encode("utf-8"), OPTIONS)


def test_the_stray_year_publishes_the_post_with_a_warning_naming_the_line() -> None:
    parsed = parse(
        "---\ntitle: Jekyll 3.9.3 Released\ndate: 2023-01-29 18:30:22 2023 -0800\n---\nb\n",
        "_posts/2023-01-29-jekyll-3-9-3-released.markdown",
    )
    assert parsed.date == datetime(2023, 1, 29, 18, 30, 22, tzinfo=PST)
    assert parsed.date_source == "front_matter"
    [warning] = parsed.warnings
    assert warning.severity is Severity.WARNING and warning.line == 3
    assert "'date'" in warning.reason and "'2023 -0800' is left out" in warning.reason
    assert "2024-01-02T10:00:00+09:00" in warning.reason  # how to write it


@pytest.mark.parametrize(
    "value",
    ["어제 오후", "'2023-02-30'", "[2023, 1, 29]", "0001-01-01T00:00:00+09:00"],
)
def test_an_unreadable_date_falls_back_to_the_file_name_with_a_warning(value: str) -> None:
    parsed = parse(f"---\ntitle: 부산 여행\n\ndate: {value}\n---\n본문\n", "2023-05-06-부산.md")
    assert parsed.date == datetime(2023, 5, 6, tzinfo=LA)
    assert parsed.date_source == "file_name"
    [warning] = parsed.warnings
    assert (warning.path, warning.line, warning.severity) == (
        "2023-05-06-부산.md",
        4,
        Severity.WARNING,
    )
    assert "'date'" in warning.reason and "date in its file name (2023-05-06)" in warning.reason
    assert "write it as" in warning.reason or "use a real date" in warning.reason


def test_a_date_elsewhere_in_the_name_is_a_fallback_too() -> None:
    parsed = parse("---\npubDate: 지난주\n---\n본문\n", "notes/회의-2023-05-06.md")
    assert parsed.date == datetime(2023, 5, 6, tzinfo=LA) and parsed.warnings


def test_without_a_date_in_the_name_an_unreadable_date_is_still_an_error() -> None:
    with pytest.raises(ContentError) as caught:
        parse("---\ntitle: t\ndate: 어제 오후\n---\n", "메모.md")
    assert "'date'" in caught.value.reason and caught.value.line == 3


def test_a_readable_date_has_no_warning() -> None:
    parsed = parse("---\ndate: Jan 29 2023\n---\n본문\n", "2020-01-01-x.md")
    assert parsed.date == datetime(2023, 1, 29, tzinfo=LA) and parsed.warnings == ()
