"""What a site owner gets from the web app in the first hour (issue 17): a page per post
when the daemon is the site, a log line for each sign-up, confirmation, unsubscribe and
preference change with the address masked, and an access log when asked for."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.newsletter.subscribers import mask_address
from feedsvc.newsletter.tokens import Purpose
from feedsvc.web.middleware import loggable_path
from tests.web.test_app import active_subscriber
from tests.web_helpers import POSTS, WebSite, make_site

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def own_site(tmp_path: Path, store_url: str) -> Iterator[WebSite]:
    """The daemon is the site: site.url is the public URL."""
    site = make_site(
        tmp_path,
        store_url,
        sections={"site": {"url": "http://testserver/"}, "server": {"access_log": True}},
        feed_check_every=0.0,
    )
    try:
        yield site
    finally:
        site.store.close()


def test_every_post_on_the_home_page_has_a_page_when_the_daemon_is_the_site(
    own_site: WebSite,
) -> None:
    assert own_site.settings.serves_site
    home = own_site.get("/")
    links = re.findall(r'<a class="title" href="([^"]+)">', home.text)
    assert len(links) == len(POSTS)
    for link in links:
        assert link.startswith("http://testserver/")
        page = own_site.get(link.removeprefix("http://testserver"))
        assert page.status_code == 200, link
        assert page.headers["content-type"].startswith("text/html")
        assert "에 대한 본문입니다" in page.text
        assert 'href="/#subscribe"' in page.text and 'href="/feed.xml"' in page.text
    bus = own_site.get("/2024/05/29/bus/")
    assert "시내버스 노선 개편 &lt;안내&gt;" in bus.text  # the title, escaped once
    assert "2024년 5월 29일" in bus.text  # the date in the site's zone (Asia/Seoul)
    assert own_site.get("/2024/05/29/bus").status_code == 200  # without the slash too
    assert own_site.request("HEAD", "/2024/05/29/bus/").status_code == 200


def test_feeds_still_answer_and_other_paths_are_404_on_the_daemon_as_the_site(
    own_site: WebSite,
) -> None:
    feed = own_site.get("/feed.xml")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith(
        "application/rss+xml"
    )
    assert own_site.get("/categories/부산/feed.xml").status_code == 200
    for path in ("/2024/05/29/없는-글/", "/wp-admin/", "/categories/없음/feed.xml"):
        assert own_site.get(path).status_code == 404, path


def test_no_post_pages_when_the_posts_live_elsewhere(web: WebSite) -> None:
    """site.url https://news.example.kr/ is not this daemon: its paths are not served."""
    assert not web.settings.serves_site
    assert web.get("/2024/05/29/bus/").status_code == 404
    assert web.get("/feed.xml").status_code == 200


def test_subscribers_actions_are_logged_with_masked_addresses(
    own_site: WebSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.subscribers")
    ident = active_subscriber(own_site, "minji@example.kr")
    url = "/preferences/" + own_site.tokens.make(Purpose.PREFERENCES, ident, "minji@example.kr")
    data = {"csrf": own_site.csrf(url), "frequency": "immediate", "timezone": "Europe/Berlin"}
    assert own_site.post(url, data=data).status_code == 200
    token = own_site.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    assert own_site.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "feedsvc.subscribers"]
    assert lines == [
        "sign-up: m***@example.kr (confirmation email queued)",
        "confirmed: m***@example.kr",
        "preferences changed: m***@example.kr (frequency, timezone)",
        "unsubscribed: m***@example.kr (one-click link)",
    ]
    assert "minji@example.kr" not in caplog.text


def test_the_access_log_hides_email_link_tokens(
    own_site: WebSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.access")
    token = own_site.tokens.make(Purpose.UNSUBSCRIBE, 1, "minji@example.kr")
    own_site.get("/")
    own_site.get(f"/unsubscribe/{token}?utm=메일")
    own_site.get("/없는-쪽")
    lines = [r.getMessage() for r in caplog.records if r.name == "feedsvc.access"]
    assert len(lines) == 3
    assert re.fullmatch(r'203\.0\.113\.7 "GET /" 200 \d+ [\d.]+ ms', lines[0]), lines[0]
    assert lines[1].startswith('203.0.113.7 "GET /unsubscribe/…" ')
    assert " 404 " in lines[2]
    assert token not in caplog.text and "utm" not in caplog.text


def test_no_access_log_unless_asked(web: WebSite, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.access")
    web.get("/")
    assert not [r for r in caplog.records if r.name == "feedsvc.access"]


@given(st.emails())
def test_a_masked_address_keeps_the_domain_and_hides_the_mailbox(address: str) -> None:
    local, _, domain = address.rpartition("@")
    masked = mask_address(address)
    assert masked == f"{local[0]}***@{domain}"
    assert (local not in masked) or len(local) == 1


@given(st.sampled_from(["confirm", "unsubscribe", "preferences"]), st.text(min_size=1))
def test_no_token_path_shows_its_token(route: str, token: str) -> None:
    token = token.replace("/", "")
    if token:
        shown = loggable_path(f"/{route}/{token}")
        assert shown == f"/{route}/…"


def test_a_post_that_goes_live_later_gets_its_page_then(own_site: WebSite) -> None:
    """Asked for before its date, a post's page is 404; once it is live, the same path
    answers (the path index is read again when a path it does not know is asked for)."""
    own_site.clock.advance(timedelta(days=-2))  # 2024-05-30 12:00 KST
    assert own_site.get("/2024/05/29/bus/").status_code == 200
    assert own_site.get("/2024/05/31/haeundae/").status_code == 404
    own_site.clock.advance(timedelta(days=2))
    assert own_site.get("/2024/05/31/haeundae/").status_code == 200
