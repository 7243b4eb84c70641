"""The preferences page (issue 17, item 5): the time zone from a list grouped by region
with the chosen zone first, errors that name the field, a refused form shown again as it
was sent, and a way to unsubscribe. Through httpx's ASGI transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.newsletter.subscribers import parse_timezone, zone_like
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage.subscribers import get_subscriber
from feedsvc.web.pages import ZONE_REGIONS, zone_groups
from tests.web.test_app import active_subscriber
from tests.web_helpers import WebSite, html_tree, make_site

ADDRESS = "minji@example.kr"


def _url(web: WebSite, ident: int) -> str:
    return "/preferences/" + web.tokens.make(Purpose.PREFERENCES, ident, ADDRESS)


def _select(html: str) -> Any:
    (select,) = html_tree(html).xpath('//select[@name="timezone"]')
    return select


def _chosen(html: str) -> dict[str, object]:
    """What the form shows chosen: frequency, ticked categories, the selected zone."""
    tree = html_tree(html)
    (frequency,) = tree.xpath('//input[@name="frequency"][@checked]/@value')
    (zone,) = _select(html).xpath(".//option[@selected]/@value")
    return {
        "frequency": str(frequency),
        "categories": sorted(
            str(v) for v in tree.xpath('//input[@name="categories"][@checked]/@value')
        ),
        "timezone": str(zone),
    }


def _stored(web: WebSite) -> tuple[str, tuple[str, ...], str | None]:
    with web.store.read() as conn:
        found = get_subscriber(conn, ADDRESS)
    assert found is not None
    return found.frequency.value, found.categories, found.timezone


def test_the_time_zone_is_a_list_grouped_by_region_the_current_zone_first(web: WebSite) -> None:
    ident = active_subscriber(web, ADDRESS)
    url = _url(web, ident)
    select = _select(web.get(url).text)
    options = select.xpath(".//option")
    # No zone chosen yet: the site's zone (an empty value) comes first, and is selected.
    assert options[0].get("value") == "" and options[0].get("selected") is not None
    assert "Asia/Seoul" in options[0].text_content()
    groups = [group.get("label") for group in select.xpath("./optgroup")]
    assert groups == [*ZONE_REGIONS, "UTC"]
    (seoul,) = select.xpath('./optgroup[@label="Asia"]/option[@value="Asia/Seoul"]')
    assert seoul.text_content() == "Seoul"
    (label,) = html_tree(web.get(url).text).xpath('//label[@for="timezone"]')
    assert label.text_content().strip() == "시간대"
    assert "이 시간대의 08:00에 도착합니다" in web.get(url).text  # digest.send_time

    saved = web.post(
        url, data={"csrf": web.csrf(url), "frequency": "weekly", "timezone": "Europe/Berlin"}
    )
    assert saved.status_code == 200 and "설정을 저장했습니다" in saved.text
    select = _select(saved.text)
    first = select.xpath(".//option")[0]
    assert first.getparent().get("label") == "현재 설정"
    assert first.get("value") == "Europe/Berlin" and first.get("selected") is not None
    assert _stored(web)[2] == "Europe/Berlin"


def test_an_unknown_zone_is_named_and_the_form_keeps_what_was_sent(web: WebSite) -> None:
    ident = active_subscriber(web, ADDRESS)
    url = _url(web, ident)
    before = _stored(web)
    sent = {
        "csrf": web.csrf(url),
        "frequency": "immediate",
        "categories": ["축제", "교통"],
        "timezone": "Seoul",
    }
    refused = web.post(url, data=sent)
    assert refused.status_code == 400
    alert = html_tree(refused.text).xpath('//*[@role="alert"]')[0].text_content()
    assert "시간대 'Seoul'을(를) 알 수 없습니다" in alert and "Asia/Seoul" in alert
    assert "저장하지 않았습니다" in alert
    assert _chosen(refused.text) == {
        "frequency": "immediate",
        "categories": ["교통", "축제"],
        "timezone": "Seoul",
    }
    assert _select(refused.text).get("aria-invalid") == "true"
    assert _stored(web) == before  # nothing saved


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("frequency", "hourly", "받는 주기 'hourly'"),
        ("categories", "없는분류", "관심 분류(categories)"),
        ("timezone", "Mars/Olympus", "시간대 'Mars/Olympus'"),
    ],
)
def test_every_refusal_names_its_field(web: WebSite, field: str, value: str, named: str) -> None:
    ident = active_subscriber(web, ADDRESS)
    url = _url(web, ident)
    sent = {"csrf": web.csrf(url), "frequency": "daily", field: value}
    refused = web.post(url, data=sent)
    assert refused.status_code == 400
    alert = html_tree(refused.text).xpath('//*[@role="alert"]')[0].text_content()
    assert named in alert


def test_an_english_site_names_the_field_in_english(tmp_path: Path) -> None:
    web = make_site(tmp_path, f"sqlite:///{tmp_path / 'en.db'}", language="en")
    try:
        ident = active_subscriber(web, ADDRESS)
        url = _url(web, ident)
        sent = {"csrf": web.csrf(url), "frequency": "daily", "timezone": "new york"}
        refused = web.post(url, data=sent)
        alert = html_tree(refused.text).xpath('//*[@role="alert"]')[0].text_content()
        assert "Time zone 'new york' is not known" in alert
        assert "America/New_York" in alert
    finally:
        web.store.close()


def test_the_page_links_to_unsubscribe(web: WebSite) -> None:
    ident = active_subscriber(web, ADDRESS)
    page = html_tree(web.get(_url(web, ident)).text)
    (link,) = page.xpath('//a[starts-with(@href, "/unsubscribe/")]')
    assert ADDRESS in link.text_content()
    unsubscribe = web.get(link.get("href"))
    assert unsubscribe.status_code == 200 and "구독 해지하기" in unsubscribe.text


def test_every_listed_zone_is_accepted_and_every_regional_zone_is_listed() -> None:
    listed = [name for _region, names in zone_groups() for name, _label in names]
    assert len(listed) == len(set(listed))
    assert all(parse_timezone(name) == name for name in listed)
    regional = {z for z in available_timezones() if z.split("/")[0] in ZONE_REGIONS}
    assert regional <= set(listed)


ZONES = sorted(z for z in available_timezones() if z.split("/")[0] in ZONE_REGIONS)


@given(st.sampled_from(ZONES), st.sampled_from([str.lower, str.upper, str.title]))
def test_a_city_typed_alone_suggests_its_zone(zone: str, case: object) -> None:
    """``seoul`` → a zone ending in /Seoul, whatever the case; spaces stand for '_'."""
    city = zone.rpartition("/")[2]
    typed = case(city.replace("_", " "))  # type: ignore[operator]
    found = zone_like(typed)
    assert found is not None and found.rpartition("/")[2].lower() == city.lower()


def test_the_only_script_is_a_file_the_csp_allows(web: WebSite) -> None:
    """The time zone guess is a progressive enhancement: a same-site file, no inline
    script anywhere (the CSP allows neither inline code nor other sites)."""
    ident = active_subscriber(web, ADDRESS)
    page = web.get(_url(web, ident))
    scripts = html_tree(page.text).xpath("//script")
    assert [script.get("src") for script in scripts] == ["/_feedsvc/timezone.js"]
    assert all(not (script.text or "").strip() for script in scripts)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline'; img-src" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    script = web.get("/_feedsvc/timezone.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "Intl.DateTimeFormat" in script.text
    assert "<script" not in web.get("/").text  # other pages have none
