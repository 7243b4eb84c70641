"""Subscribers' categories are checked against the site's: those of the posts live in the
store, matched by slug as digests match them ('Smart City' = 'smart-city'). The command
line warns (``--strict``: refuses, nothing stored); the web forms answer 400 naming the
field (issue 13, item 4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc.cli.main import main
from feedsvc.models import SubscriberStatus
from feedsvc.newsletter.categories import SiteCategories
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage import open_store
from feedsvc.storage.subscribers import get_subscriber
from tests.digest_helpers import add_subscriber, make_post, store_post
from tests.web_helpers import WebSite, confirm_link

HEADER = "email,name,frequency,categories,timezone\n"
SITE_HAS = "the site has: 부산, 축제, 스마트시티, Smart City"


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)
    monkeypatch.delenv("FEEDSVC_NOW", raising=False)


class Site:
    """A config.yaml on one store, with or without published posts."""

    def __init__(self, folder: Path, url: str, *, posts: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "config.yaml"
        self.config.write_text(
            f"site:\n  timezone: Asia/Seoul\nstorage:\n  url: '{url}'\n", encoding="utf-8"
        )
        store = open_store(url)  # created here, so that commands do not say so
        try:
            with store.write() as conn:
                if posts:
                    store_post(conn, make_post("festival", categories=("부산", "축제")))
                    store_post(conn, make_post("expo", categories=("스마트시티", "Smart City")))
        finally:
            store.close()

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), "subscribers", *args])

    def write(self, name: str, content: str) -> Path:
        path = self.folder / name
        path.write_text(content, encoding="utf-8")
        return path

    def listed(self) -> dict[str, list[str]]:
        result = self.run("list", "--format", "json")
        assert result.exit_code == 0, result.output
        return {s["email"]: s["categories"] for s in json.loads(result.stdout)}


@pytest.fixture
def site(tmp_path: Path, store_url: str) -> Site:
    return Site(tmp_path / "부산", store_url, posts=True)


@pytest.fixture
def new_site(tmp_path: Path) -> Site:
    """No post in the store yet (before the first build)."""
    return Site(tmp_path / "새 사이트", f"sqlite:///{tmp_path / 'new.db'}", posts=False)


# --- the rule ------------------------------------------------------------------------------


def test_categories_match_by_slug_in_any_case_and_spacing() -> None:
    site = SiteCategories.of(["부산", "Smart City", "smart-city", "스마트시티"])
    assert site.names == ("부산", "Smart City", "스마트시티")
    assert site.unknown(["smart-city", "SMART  city", " 부산 ", "스마트시티"]) == ()
    assert site.unknown(["스마트씨티", "!!!", "부산"]) == ("스마트씨티", "!!!")


# --- subscribers add -------------------------------------------------------------------------


def test_add_with_an_unknown_category_warns_naming_the_option_and_stores_it(site: Site) -> None:
    result = site.run("add", "minji@example.kr", "--category", "스마트씨티", "--category", "부산")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("added minji@example.kr")
    assert result.stderr.startswith(
        f"feedsvc: warning: --category: no published post has the category '스마트씨티' "
        f"({SITE_HAS});"
    )
    assert "Check the spelling" in result.stderr and "--strict" in result.stderr
    assert site.listed() == {"minji@example.kr": ["스마트씨티", "부산"]}


def test_add_strict_refuses_an_unknown_category_and_stores_nothing(site: Site) -> None:
    result = site.run("add", "minji@example.kr", "--strict", "--category", "스마트씨티")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "feedsvc: --category: no published post has the category '스마트씨티'" in result.stderr
    assert "Nothing was stored (--strict)" in result.stderr
    assert site.listed() == {}


def test_add_strict_takes_a_category_in_another_spelling(site: Site) -> None:
    result = site.run(
        "add", "minji@example.kr", "--strict", "--category", "smart-city", "--category", " 부산 "
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert site.listed() == {"minji@example.kr": ["smart-city", "부산"]}


def test_add_on_a_site_without_posts_warns_and_stores_even_when_strict(new_site: Site) -> None:
    result = new_site.run("add", "minji@example.kr", "--strict", "--category", "부산")
    assert result.exit_code == 0, result.output
    assert "feedsvc: warning: --category '부산': the site has no categories yet" in result.stderr
    assert "Run `feedsvc build` first" in result.stderr
    assert new_site.listed() == {"minji@example.kr": ["부산"]}


def test_add_without_a_category_says_nothing_about_categories(new_site: Site) -> None:
    result = new_site.run("add", "minji@example.kr")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --- subscribers import ----------------------------------------------------------------------

ROWS = (
    HEADER
    + "minji@example.kr,구독자 김민지,weekly,부산;Smart-City,\n"
    + "jisu@example.kr,구독자 박지수,daily,없는분류;스마트시티,\n"
    + "hana@example.kr,구독자 이하나,daily,,\n"
)


def test_import_warns_about_each_row_with_an_unknown_category_naming_the_line(
    site: Site,
) -> None:
    path = site.write("구독자.csv", ROWS)
    result = site.run("import", str(path))
    assert result.exit_code == 0, result.output
    [warning] = result.stderr.splitlines()
    assert warning.startswith(
        f"{path}:3: warning: jisu@example.kr: no published post has the category '없는분류' "
        f"({SITE_HAS}); imported all the same"
    )
    assert "fix the file and import again" in warning and "--strict" in warning
    assert result.stdout == (
        f"{path}: 3 rows: 3 added, 0 updated, 0 bad rows not imported, "
        "1 row with categories no post has (see the warnings)\n"
    )
    assert site.listed()["jisu@example.kr"] == ["없는분류", "스마트시티"]


def test_import_strict_reports_every_unknown_category_and_imports_nothing(site: Site) -> None:
    path = site.write("구독자.csv", ROWS + "yuna@example.kr,,,스마트씨티,\n")
    result = site.run("import", "--strict", str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"{path}:3: error: jisu@example.kr: no published post has the category '없는분류'"
    )
    assert lines[1].startswith(f"{path}:5: error: yuna@example.kr: no published post has")
    assert lines[2].startswith(f"feedsvc: {path}: --strict: 2 rows name categories")
    assert "nothing was imported" in lines[2]
    assert site.listed() == {}


def test_import_strict_of_known_categories_imports_them(site: Site) -> None:
    path = site.write("구독자.csv", HEADER + "minji@example.kr,,,부산;smart city;축제,\n")
    result = site.run("import", "--strict", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert site.listed() == {"minji@example.kr": ["부산", "smart city", "축제"]}


def test_import_on_a_site_without_posts_warns_once_and_imports(new_site: Site) -> None:
    path = new_site.write("구독자.csv", ROWS)
    result = new_site.run("import", "--strict", str(path))
    assert result.exit_code == 0, result.output
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"{path}:2: warning: the site has no categories yet")
    assert "Run `feedsvc build` first" in warning
    assert len(new_site.listed()) == 3


# --- the web forms ---------------------------------------------------------------------------


def test_the_subscribe_form_refuses_an_unknown_category_naming_the_field(web: WebSite) -> None:
    data = {"email": "minji@example.kr", "csrf": web.csrf(), "categories": ["부산", "없는분류"]}
    response = web.post("/subscribe", data=data)
    assert response.status_code == 400
    assert "관심 분류(categories)" in response.text and "&#39;없는분류&#39;" in response.text
    assert 'action="/subscribe"' in response.text
    with web.store.read() as conn:
        assert get_subscriber(conn, "minji@example.kr") is None
    assert web.messages() == []


def test_a_json_sign_up_with_an_unknown_category_is_a_400_naming_the_field(web: WebSite) -> None:
    body = {"email": "minji@example.kr", "categories": ["스마트씨티"]}
    response = web.post("/subscribe", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == "categories"
    assert "'스마트씨티'" in response.json()["error"]
    assert web.messages() == []


def test_a_sign_up_with_categories_in_another_spelling_is_taken(web: WebSite) -> None:
    response = web.post("/subscribe", json={"email": "minji@example.kr", "categories": [" 축제 "]})
    assert response.status_code == 202


def _preferences(web: WebSite, categories: tuple[str, ...]) -> str:
    with web.store.write() as conn:
        ident = add_subscriber(conn, "minji@example.kr", categories=categories)
    return "/preferences/" + web.tokens.make(Purpose.PREFERENCES, ident, "minji@example.kr")


def _boxes(page: str) -> list[tuple[str, bool]]:
    found = re.findall(r'name="categories" value="([^"]+)"( checked)?', page)
    return [(value, bool(checked)) for value, checked in found]


def test_preferences_offer_the_sites_categories_and_refuse_others(web: WebSite) -> None:
    url = _preferences(web, ("부산",))
    page = web.get(url).text
    assert sorted(_boxes(page)) == [
        ("교통", False),
        ("부산", True),
        ("스마트시티", False),
        ("축제", False),
    ]
    bad = web.post(url, data={"csrf": web.csrf(url), "categories": ["교통", "없는분류"]})
    assert bad.status_code == 400
    assert "관심 분류(categories)" in bad.text and "&#39;없는분류&#39;" in bad.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.categories == ("부산",)


def test_preferences_keep_the_subscribers_own_category_no_post_has_unless_unticked(
    web: WebSite,
) -> None:
    url = _preferences(web, ("부산", "행사"))
    page = web.get(url).text
    assert ("행사", True) in _boxes(page) and "아직 이 분류의 글이 없습니다" in page
    kept = web.post(url, data={"csrf": web.csrf(url), "categories": ["부산", "행사"]})
    assert kept.status_code == 200 and "바뀐 내용이 없습니다" in kept.text
    dropped = web.post(url, data={"csrf": web.csrf(url), "categories": ["부산"]})
    assert dropped.status_code == 200 and "설정을 저장했습니다" in dropped.text
    assert ("행사", True) not in _boxes(dropped.text)
    again = web.post(url, data={"csrf": web.csrf(url), "categories": ["행사"]})
    assert again.status_code == 400  # no longer the subscriber's own


def test_a_confirmed_sign_up_keeps_its_known_categories(web: WebSite) -> None:
    data = {"email": "minji@example.kr", "csrf": web.csrf(), "categories": ["축제", "교통"]}
    assert web.post("/subscribe", data=data).status_code == 200
    [message] = web.messages()
    assert web.post(confirm_link(message)).status_code == 200
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.status is SubscriberStatus.ACTIVE
    assert found.categories == ("축제", "교통")
