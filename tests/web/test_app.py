"""The web app through httpx's ASGI transport: feeds, pages, sign-up, confirm,
unsubscribe, preferences, operations, and every bad input."""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc.models import SubscriberEventKind, SubscriberStatus
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage.subscribers import events_of, get_subscriber
from feedsvc.web.ratelimit import RateLimiter
from tests.web.test_edge import call
from tests.web_helpers import CLIENT_IP, WebSite, confirm_link, make_site

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def subscribe(web: WebSite, address: str = "민지@예시.한국", **fields: str) -> int:
    data = {"email": address, "csrf": web.csrf(), "frequency": "weekly", **fields}
    return web.post("/subscribe", data=data).status_code


def active_subscriber(web: WebSite, address: str = "minji@example.kr") -> int:
    assert subscribe(web, address) == 200
    (message,) = [m for m in web.messages() if address in str(m["To"])]
    assert web.post(confirm_link(message)).status_code == 200
    with web.store.read() as conn:
        found = get_subscriber(conn, address)
    assert found is not None and found.status is SubscriberStatus.ACTIVE
    return found.id


# --- feeds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
    ],
)
def test_feeds_are_served_with_type_etag_last_modified_and_cache_control(
    web: WebSite, path: str, media: str
) -> None:
    response = web.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media
    assert response.content == (web.settings.output_dir / path[1:]).read_bytes()
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    # From the content: the newest post's date (31 May, Seoul), never "now".
    assert response.headers["last-modified"] == "Thu, 30 May 2024 15:00:00 GMT"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_conditional_get_answers_304_for_the_etag_and_for_the_date(web: WebSite) -> None:
    first = web.get("/feed.xml")
    by_tag = web.get("/feed.xml", headers={"If-None-Match": first.headers["etag"]})
    assert by_tag.status_code == 304 and by_tag.content == b""
    assert by_tag.headers["etag"] == first.headers["etag"]
    weak = web.get("/feed.xml", headers={"If-None-Match": f'"x", W/{first.headers["etag"]}'})
    assert weak.status_code == 304
    by_date = web.get("/feed.xml", headers={"If-Modified-Since": first.headers["last-modified"]})
    assert by_date.status_code == 304
    older = web.get("/feed.xml", headers={"If-Modified-Since": "Wed, 01 May 2024 00:00:00 GMT"})
    assert older.status_code == 200
    other = web.get("/feed.xml", headers={"If-None-Match": '"다른-태그"'.encode().hex()})
    assert other.status_code == 200
    garbage = web.get("/feed.xml", headers={"If-Modified-Since": "어제".encode()})
    assert garbage.status_code == 200


def test_gzip_only_when_asked(web: WebSite) -> None:
    plain = web.get("/feed.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    packed = web.request("GET", "/feed.xml", headers={"Accept-Encoding": "gzip"}, extensions={})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == plain.content  # httpx decodes it
    assert int(packed.headers["content-length"]) == len(gzip.compress(plain.content, mtime=0)) or (
        int(packed.headers["content-length"]) < len(plain.content)
    )
    refused = web.get("/feed.xml", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_head_gives_the_headers_and_no_body(web: WebSite) -> None:
    got = web.get("/atom.xml", headers={"Accept-Encoding": "identity"})
    head = web.request("HEAD", "/atom.xml", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["etag"] == got.headers["etag"]


def test_category_feeds_with_korean_names_are_served(web: WebSite) -> None:
    found = sorted(
        p.relative_to(web.settings.output_dir) for p in web.settings.output_dir.rglob("feed.xml")
    )
    category = next(p for p in found if p.parts[0] == "categories")
    response = web.get("/" + "/".join(category.parts))
    assert response.status_code == 200
    assert "부산" in response.text or "축제" in response.text or "교통" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/nothing.xml",
        "/../state.db",
        "/public/feed.xml",
        "/tags/x/y/feed.xml",
    ],
)
def test_unknown_and_escaping_paths_are_404(web: WebSite, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert "페이지를 찾을 수 없습니다" in response.text


def test_new_bytes_from_a_build_are_served_with_a_new_etag(web: WebSite) -> None:
    before = web.get("/feed.json")
    target = web.settings.output_dir / "feed.json"
    target.write_bytes(target.read_bytes().replace("해운대".encode(), "광안리".encode()))
    after = web.get("/feed.json")
    assert after.headers["etag"] != before.headers["etag"]
    assert "광안리" in after.text
    stale = web.get("/feed.json", headers={"If-None-Match": before.headers["etag"]})
    assert stale.status_code == 200


# --- pages -----------------------------------------------------------------------------


def test_home_shows_title_posts_form_and_feed_autodiscovery(web: WebSite) -> None:
    page = web.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.text
    assert "<title>테스트 사이트</title>" in text
    assert "해운대 바다축제 개막" in text
    assert "시내버스 노선 개편 &lt;안내&gt;" in text  # escaped
    assert 'action="/subscribe"' in text and 'name="email"' in text
    assert '<link rel="alternate" type="application/rss+xml"' in text
    assert 'href="/atom.xml"' in text and 'href="/feed.json"' in text
    assert 'value="축제"' in text  # categories to choose from
    assert "<script" not in text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert "feedsvc_csrf" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()


# --- subscribe -------------------------------------------------------------------------


def test_subscribing_by_form_makes_a_pending_subscriber_and_sends_one_confirmation(
    web: WebSite,
) -> None:
    assert subscribe(web, "민지@예시.한국", name="김민지", categories="축제") == 200
    with web.store.read() as conn:
        found = get_subscriber(conn, "민지@예시.한국")
        assert found is not None
        events = events_of(conn, found.id)
    assert found.status is SubscriberStatus.PENDING
    assert found.consent_source == "web" and found.consent_ip == CLIENT_IP
    assert found.name == "김민지" and found.categories == ("축제",)
    assert found.frequency.value == "weekly"
    assert [e.kind for e in events] == [SubscriberEventKind.SUBSCRIBED]
    assert events[0].actor == "web" and events[0].detail["ip"] == CLIENT_IP
    (message,) = web.messages()
    assert "구독을 확인해 주세요" in str(message["Subject"])
    assert "confirm/" in confirm_link(message)


def test_the_answer_is_the_same_for_new_pending_active_and_unsubscribed_addresses(
    web: WebSite,
) -> None:
    active_subscriber(web, "active@example.kr")
    web.clock.advance(timedelta(hours=2))

    def answer(address: str) -> str:
        response = web.post("/subscribe", data={"email": address, "csrf": web.csrf()})
        assert response.status_code == 200
        return re.sub(r'value="[^"]+"', "", response.text)

    fresh = answer("new@example.kr")
    assert answer("new@example.kr") == fresh  # pending now
    assert answer("active@example.kr") == fresh
    json_answers = {
        web.post("/subscribe", json={"email": a}).text
        for a in ("x@example.kr", "active@example.kr")
    }
    assert len(json_answers) == 1


def test_repeated_subscribes_send_one_confirmation_per_interval(web: WebSite) -> None:
    for _ in range(3):
        assert subscribe(web, "repeat@example.kr") == 200
    assert len(web.messages()) == 1
    web.clock.advance(web.settings.security.confirm_interval + timedelta(seconds=1))
    web.clock.advance(timedelta(seconds=1))
    assert subscribe(web, "REPEAT@example.kr") == 200
    assert len(web.messages()) == 2


def test_an_active_address_gets_no_new_email(web: WebSite) -> None:
    active_subscriber(web, "already@example.kr")
    web.clock.advance(timedelta(days=1))
    assert subscribe(web, "already@example.kr") == 200
    assert len(web.messages()) == 1


def test_subscribing_by_json(web: WebSite) -> None:
    response = web.post(
        "/subscribe",
        json={"email": "json@example.kr", "frequency": "daily", "categories": ["교통"]},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "check-your-inbox"
    with web.store.read() as conn:
        found = get_subscriber(conn, "json@example.kr")
    assert found is not None and found.categories == ("교통",)
    assert len(web.messages()) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "JSON을 읽을 수 없습니다"),
        (b'["a@example.kr"]', "JSON 객체"),
        (b"{}", "이메일 주소를 입력해"),
        ('{"email": "없는주소"}'.encode(), "형식이 올바르지 않습니다"),
        (b'{"email": 42}', "이메일 주소를 입력해"),
        (b'{"email": "a@example.kr", "frequency": "hourly"}', "받는 주기 'hourly'은(는)"),
        (b'{"email": "a@example.kr", "categories": [1, 2]}', "글자의 목록"),
        (b"\xff\xfe", "JSON을 읽을 수 없습니다"),
    ],
)
def test_bad_json_is_a_400_and_writes_nothing(web: WebSite, body: bytes, reason: str) -> None:
    response = web.post("/subscribe", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert web.messages() == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "이메일 주소를 입력해"),
        ({"email": "  "}, "이메일 주소를 입력해"),
        ({"email": "민지@"}, "형식이 올바르지 않습니다"),
        ({"email": "a@localhost"}, "형식이 올바르지 않습니다"),
        ({"email": "a@example.kr", "frequency": "매시간"}, "받는 주기 &#39;매시간&#39;은(는)"),
    ],
)
def test_bad_form_input_shows_the_form_again_with_the_reason(
    web: WebSite, fields: dict[str, str], reason: str
) -> None:
    response = web.post("/subscribe", data={**fields, "csrf": web.csrf()})
    assert response.status_code == 400
    assert reason in response.text and 'action="/subscribe"' in response.text
    assert web.messages() == []


def test_a_filled_honeypot_is_answered_kindly_and_ignored(web: WebSite) -> None:
    response = web.post(
        "/subscribe", data={"email": "bot@example.kr", "website": "http://spam", "csrf": web.csrf()}
    )
    assert response.status_code == 200 and "메일함을 확인해 주세요" in response.text
    with web.store.read() as conn:
        assert get_subscriber(conn, "bot@example.kr") is None
    assert web.messages() == []


def test_a_form_without_a_valid_csrf_token_is_refused(web: WebSite) -> None:
    web.csrf()
    missing = web.post("/subscribe", data={"email": "x@example.kr"})
    forged = web.post("/subscribe", data={"email": "x@example.kr", "csrf": "abc.def.ghi"})
    web.cookies.clear()
    no_cookie = web.post("/subscribe", data={"email": "x@example.kr", "csrf": web.csrf() + "x"})
    for response in (missing, forged, no_cookie):
        assert response.status_code == 403
        assert "양식이 만료되었습니다" in response.text
    with web.store.read() as conn:
        assert get_subscriber(conn, "x@example.kr") is None


def test_oversized_bodies_are_413(web: WebSite) -> None:
    big = "가" * 20_000
    declared = web.post(
        "/subscribe", data={"email": "a@example.kr", "name": big, "csrf": web.csrf()}
    )
    assert declared.status_code == 413 and "요청이 너무 큽니다" in declared.text

    async def chunks() -> object:
        for _ in range(40):
            yield b"x" * 1024

    streamed = web.post(
        "/subscribe", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_other_content_types_are_415(web: WebSite) -> None:
    response = web.post(
        "/subscribe", content=b"a@example.kr", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_subscribing_is_rate_limited_per_ip(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        f"sqlite:///{tmp_path / 'rl.db'}",
        subscribe_limit=RateLimiter(burst=2, per_second=0.001),
    )
    try:
        codes = [
            site.post("/subscribe", json={"email": f"u{i}@example.kr"}).status_code
            for i in range(3)
        ]
        assert codes == [202, 202, 429]
        limited = site.post("/subscribe", json={"email": "u9@example.kr"})
        assert int(limited.headers["retry-after"]) > 0
        form = site.post("/subscribe", data={"email": "u9@example.kr"})
        assert form.status_code == 429 and "요청이 너무 많습니다" in form.text
    finally:
        site.store.close()


# --- confirm ---------------------------------------------------------------------------


def test_the_confirmation_link_activates_and_records_the_event(web: WebSite) -> None:
    subscribe(web, "confirm@example.kr")
    (message,) = web.messages()
    page = web.post(confirm_link(message))
    assert page.status_code == 200 and "구독이 확인되었습니다" in page.text
    again = web.post(confirm_link(message))
    assert again.status_code == 200 and "이미 구독 중입니다" in again.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "confirm@example.kr")
        assert found is not None
        kinds = [e.kind for e in events_of(conn, found.id)]
    assert found.status is SubscriberStatus.ACTIVE and found.confirmed == web.clock.now()
    assert kinds == [SubscriberEventKind.SUBSCRIBED, SubscriberEventKind.CONFIRMED]


def bad_tokens(web: WebSite, subscriber_id: int, address: str) -> dict[str, str]:
    good = web.tokens.make(Purpose.CONFIRM, subscriber_id, address)
    return {
        "forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "truncated": good[: len(good) // 2],
        "wrong purpose": web.tokens.make(Purpose.UNSUBSCRIBE, subscriber_id, address),
        "other address": web.tokens.make(Purpose.CONFIRM, subscriber_id, "someone@example.kr"),
        "empty-ish": "x",
        "unknown id": web.tokens.make(Purpose.CONFIRM, 99999, address),
    }


def test_bad_confirmation_tokens_get_a_400_page_and_change_nothing(web: WebSite) -> None:
    subscribe(web, "pending@example.kr")
    with web.store.read() as conn:
        found = get_subscriber(conn, "pending@example.kr")
    assert found is not None
    for reason, token in bad_tokens(web, found.id, found.email).items():
        response = web.get(f"/confirm/{token}")
        assert response.status_code == 400, reason
        assert "링크가 올바르지 않거나 만료되었습니다" in response.text
        assert "Traceback" not in response.text
    with web.store.read() as conn:
        after = get_subscriber(conn, "pending@example.kr")
    assert after is not None and after.status is SubscriberStatus.PENDING


def test_an_expired_confirmation_link_is_refused(web: WebSite) -> None:
    """The link's age is the app's clock's: mailed at the clock's time (2024, years before
    the system's), it works a week later and not eight days later."""
    subscribe(web, "late@example.kr")
    (message,) = web.messages()
    link = confirm_link(message)
    web.clock.advance(timedelta(days=7))
    assert web.get(link).status_code == 200  # opening shows the button; confirms nothing
    web.clock.advance(timedelta(days=1))
    response = web.get(link)
    assert response.status_code == 400 and "만료" in response.text
    assert web.post(link).status_code == 400
    with web.store.read() as conn:
        after = get_subscriber(conn, "late@example.kr")
    assert after is not None and after.status is SubscriberStatus.PENDING


def test_a_form_older_than_two_days_by_the_apps_clock_is_refused(web: WebSite) -> None:
    data = {"email": "slow@example.kr", "csrf": web.csrf(), "frequency": "weekly"}
    web.clock.advance(timedelta(days=2, seconds=1))
    stale = web.post("/subscribe", data=data)
    assert stale.status_code == 403 and "양식이 만료되었습니다" in stale.text
    web.clock.advance(timedelta(days=-4))  # a form from the clock's future is no good either
    assert web.post("/subscribe", data=data).status_code == 403
    web.clock.advance(timedelta(days=2))
    assert web.post("/subscribe", data={**data, "csrf": web.csrf()}).status_code == 200


# --- unsubscribe -----------------------------------------------------------------------


def test_opening_the_unsubscribe_link_shows_a_button_and_changes_nothing(web: WebSite) -> None:
    ident = active_subscriber(web)
    token = web.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    page = web.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert "구독 해지하기" in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.status is SubscriberStatus.ACTIVE


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_is_200_without_cookie_or_csrf_and_idempotent(
    web: WebSite, encoding: str
) -> None:
    ident = active_subscriber(web)
    token = web.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    web.cookies.clear()
    kwargs: dict[str, object] = (
        {"data": ONE_CLICK}
        if encoding == "urlencoded"
        else {"files": {"List-Unsubscribe": (None, b"One-Click")}}
    )
    first = web.post(f"/unsubscribe/{token}", **kwargs)
    second = web.post(f"/unsubscribe/{token}", **kwargs)
    for response in (first, second):
        assert response.status_code == 200
        assert "location" not in response.headers
        assert "구독이 해지되었습니다" in response.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
        assert found is not None
        events = events_of(conn, found.id)
    assert found.status is SubscriberStatus.UNSUBSCRIBED
    unsubscribed = [e for e in events if e.kind is SubscriberEventKind.UNSUBSCRIBED]
    assert len(unsubscribed) == 1
    assert unsubscribed[0].actor == "web" and unsubscribed[0].detail["ip"] == CLIENT_IP
    page = web.get(f"/unsubscribe/{token}")
    assert "이미 구독이 해지되어 있습니다" in page.text


def test_one_click_needs_the_rfc_8058_body_and_a_valid_token(web: WebSite) -> None:
    ident = active_subscriber(web)
    token = web.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    assert web.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "예"}).status_code == 400
    assert web.post(f"/unsubscribe/{token}", content=b"", headers={}).status_code == 400
    wrong = web.tokens.make(Purpose.PREFERENCES, ident, "minji@example.kr")
    assert web.post(f"/unsubscribe/{wrong}", data=ONE_CLICK).status_code == 400
    assert web.post(f"/unsubscribe/{token[:-3]}", data=ONE_CLICK).status_code == 400
    assert web.get(f"/unsubscribe/{token[:10]}").status_code == 400
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.status is SubscriberStatus.ACTIVE


def test_an_old_confirmation_link_does_not_undo_an_unsubscribe(web: WebSite) -> None:
    ident = active_subscriber(web)
    (message,) = web.messages()
    token = web.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    web.clock.advance(timedelta(minutes=5))
    web.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert web.post(confirm_link(message)).status_code == 400
    # Asking again on the site, and confirming that, brings the address back.
    web.clock.advance(timedelta(hours=2))
    assert subscribe(web, "minji@example.kr") == 200
    latest = web.messages()
    assert len(latest) == 2
    (newer,) = [m for m in latest if m["Message-ID"] != message["Message-ID"]]
    assert web.post(confirm_link(newer)).status_code == 200
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.status is SubscriberStatus.ACTIVE


# --- preferences -----------------------------------------------------------------------


def test_preferences_are_changed_with_the_form_and_recorded(web: WebSite) -> None:
    ident = active_subscriber(web)
    url = "/preferences/" + web.tokens.make(Purpose.PREFERENCES, ident, "minji@example.kr")
    page = web.get(url)
    assert page.status_code == 200 and "구독 설정" in page.text
    data = {
        "csrf": web.csrf(url),
        "frequency": "immediate",
        "categories": ["교통", "축제"],
        "timezone": "Europe/Berlin",
    }
    saved = web.post(url, data=data)
    assert saved.status_code == 200 and "설정을 저장했습니다" in saved.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
        assert found is not None
        events = events_of(conn, found.id)
    assert found.frequency.value == "immediate"
    assert found.categories == ("교통", "축제") and found.timezone == "Europe/Berlin"
    assert events[-1].kind is SubscriberEventKind.UPDATED and events[-1].detail["ip"] == CLIENT_IP
    same = web.post(url, data={**data, "csrf": web.csrf(url)})
    assert "바뀐 내용이 없습니다" in same.text


def test_preferences_refuse_bad_input_csrf_and_tokens(web: WebSite) -> None:
    ident = active_subscriber(web)
    url = "/preferences/" + web.tokens.make(Purpose.PREFERENCES, ident, "minji@example.kr")
    assert web.post(url, data={"frequency": "weekly"}).status_code == 403
    sent = {"csrf": web.csrf(url), "frequency": "daily", "timezone": "Mars/Olympus"}
    bad_zone = web.post(url, data=sent)
    assert bad_zone.status_code == 400
    assert "시간대 &#39;Mars/Olympus&#39;을(를) 알 수 없습니다" in bad_zone.text
    wrong = web.tokens.make(Purpose.UNSUBSCRIBE, ident, "minji@example.kr")
    assert web.get(f"/preferences/{wrong}").status_code == 400
    with web.store.read() as conn:
        found = get_subscriber(conn, "minji@example.kr")
    assert found is not None and found.frequency.value == "weekly" and found.timezone is None


# --- operations ------------------------------------------------------------------------


def test_healthz_and_metrics(web: WebSite) -> None:
    active_subscriber(web)
    health = web.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "store": "ok"}
    metrics = call(web.app, "GET", "/metrics", ("127.0.0.1", 50000))  # loopback only
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'feedsvc_subscribers{status="active"} 1.0' in text
    assert "feedsvc_posts 3.0" in text
    assert 'feedsvc_deliveries{status="sent"} 0.0' in text
    assert 'feedsvc_confirmations{status="sent"} 1.0' in text
    assert "feedsvc_last_build_duration_seconds" in text
    assert "feedsvc_confirmation_send_seconds_count 1.0" in text


def test_healthz_is_503_when_the_store_is_gone(tmp_path: Path) -> None:
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'gone.db'}")
    from sqlalchemy import create_engine

    site.store.engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'no' / 'x.db'}")
    response = site.get("/healthz")
    assert response.status_code == 503


def test_errors_show_a_plain_page_without_a_stack_trace(tmp_path: Path) -> None:
    broken = tmp_path / "my-templates"
    broken.mkdir()
    (broken / "index.html.j2").write_text("{{ 없는.값 }}", encoding="utf-8")
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'err.db'}")
    from feedsvc.templating import _environment

    site.app.state.web.env = _environment(broken, "ko")
    try:
        response = site.get("/")
        assert response.status_code == 500
        assert "일시적인 오류가 났습니다" in response.text
        assert "Traceback" not in response.text and "없는" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        wrong_method = site.request("PUT", "/subscribe")
        assert wrong_method.status_code == 405
    finally:
        site.store.close()


def test_nothing_redirects_anywhere(web: WebSite) -> None:
    for url in ("/?next=https://evil.example", "//evil.example/", "/subscribe?next=//evil"):
        response = web.get(url)
        assert "location" not in response.headers
