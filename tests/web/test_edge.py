"""The web edge against strangers (issue 14): who may read /metrics and what it tells, bad
feed paths, sign-up answers that do not depend on the address, bad JSON and media types.
All through the ASGI app (httpx's ASGI transport, or the ASGI callable itself)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from feedsvc.errors import ConfigError
from feedsvc.models import SubscriberStatus
from feedsvc.storage.subscribers import get_subscriber
from feedsvc.web import create_app
from tests.web.test_uvicorn import served
from tests.web_helpers import WebSite, confirm_link, make_site, web_settings

__all__ = ["served"]  # a fixture, used below

TOKEN = "metrics-token-0123456789abcdef"


def call(app: Any, method: str, url: str, client: tuple[str, int], **kwargs: Any) -> httpx.Response:
    """One request to ``app`` as if from ``client`` (the TCP peer's address and port)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, url, **kwargs)

    return anyio.run(go)


def with_token_app(web: WebSite, **server: Any) -> Any:
    """The app of ``web``'s site with extra ``server`` settings (its store and clock)."""
    settings = web_settings(web.root, web.settings.storage.url, server=server)
    return create_app(settings, web.store, web.clock, None, tokens=web.tokens)


# --- item 5: /metrics --------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"])
def test_metrics_are_served_to_a_loopback_peer_without_proxy_headers(
    web: WebSite, peer: str
) -> None:
    response = call(web.app, "GET", "/metrics", (peer, 50000))
    assert response.status_code == 200
    assert "feedsvc_posts 3.0" in response.text


@pytest.mark.parametrize("peer", ["203.0.113.7", "10.0.0.1", "2001:db8::1", "testclient"])
def test_metrics_are_refused_to_other_peers_when_no_token_is_set(web: WebSite, peer: str) -> None:
    response = call(web.app, "GET", "/metrics", (peer, 50000))
    assert response.status_code == 403
    assert "feedsvc_" not in response.text
    assert "server.metrics_token" in response.text


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "198.51.100.9"},
        {"X-Forwarded-For": "127.0.0.1"},
        {"Forwarded": "for=198.51.100.9"},
        {"X-Real-IP": "198.51.100.9"},
    ],
)
def test_metrics_via_a_reverse_proxy_on_loopback_are_refused(
    web: WebSite, header: dict[str, str]
) -> None:
    """Behind a proxy every request comes from 127.0.0.1: a proxied one is not local."""
    response = call(web.app, "GET", "/metrics", ("127.0.0.1", 50000), headers=header)
    assert response.status_code == 403
    assert "feedsvc_" not in response.text


def test_behind_uvicorns_proxy_headers_a_forwarded_loopback_address_is_not_local(
    served: tuple[WebSite, str],
) -> None:
    """uvicorn (proxy_headers on, 127.0.0.1 trusted, as ``feedsvc run`` sets it) turns
    ``X-Forwarded-For: 127.0.0.1`` into a loopback client; the header still refuses it."""
    _, base = served
    with httpx.Client(base_url=base) as client:
        assert client.get("/metrics").status_code == 200
        for forwarded in ("127.0.0.1", "203.0.113.9"):
            spoofed = client.get("/metrics", headers={"X-Forwarded-For": forwarded})
            assert spoofed.status_code == 403, forwarded


def test_with_a_token_metrics_need_it_from_everyone_even_loopback(web: WebSite) -> None:
    app = with_token_app(web, metrics_token=TOKEN)
    good = {"Authorization": f"Bearer {TOKEN}"}
    for peer in ("127.0.0.1", "203.0.113.7"):
        assert call(app, "GET", "/metrics", (peer, 1), headers=good).status_code == 200
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            refused = call(app, "GET", "/metrics", (peer, 1), headers=headers)
            assert refused.status_code == 401, (peer, headers)
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "feedsvc_" not in refused.text


def test_the_metrics_token_can_come_from_the_environment(
    web: WebSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSVC_TEST_METRICS", TOKEN)
    app = with_token_app(web, metrics_token_env="FEEDSVC_TEST_METRICS")
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert call(app, "GET", "/metrics", ("203.0.113.7", 1), headers=good).status_code == 200
    assert call(app, "GET", "/metrics", ("127.0.0.1", 1)).status_code == 401


def test_a_short_metrics_token_is_a_config_error_naming_the_key(
    web: WebSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"server\.metrics_token"):
        web_settings(web.root, web.settings.storage.url, server={"metrics_token": "짧은"})
    monkeypatch.setenv("FEEDSVC_TEST_METRICS", "short")
    with pytest.raises(ConfigError, match=r"server\.metrics_token_env.*FEEDSVC_TEST_METRICS"):
        with_token_app(web, metrics_token_env="FEEDSVC_TEST_METRICS")


def test_metrics_do_not_tell_whether_an_address_was_already_subscribed(web: WebSite) -> None:
    """A new and an active address count as the same outcome."""

    def outcomes() -> str:
        text = call(web.app, "GET", "/metrics", ("127.0.0.1", 1)).text
        return "\n".join(
            line for line in text.splitlines() if line.startswith("feedsvc_subscribe_requests")
        )

    data = {"email": "active@example.kr", "csrf": web.csrf()}
    assert web.post("/subscribe", data=data).status_code == 200
    (message,) = web.messages()
    assert web.post(confirm_link(message)).status_code == 200
    web.clock.advance(timedelta(hours=2))
    before = outcomes()
    web.post("/subscribe", json={"email": "새주소@example.kr"})
    after_new = outcomes()
    web.post("/subscribe", json={"email": "active@example.kr"})
    after_active = outcomes()
    assert 'outcome="queued"' not in after_active and 'outcome="quiet"' not in after_active
    assert 'feedsvc_subscribe_requests_total{outcome="accepted"} 1.0' in before
    assert 'feedsvc_subscribe_requests_total{outcome="accepted"} 2.0' in after_new
    assert 'feedsvc_subscribe_requests_total{outcome="accepted"} 3.0' in after_active


# --- item 10: bad feed paths -------------------------------------------------------------


def test_a_category_name_too_long_for_the_file_system_is_a_quiet_404(
    web: WebSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("가" * 300, "a" * 300):
        response = web.get(f"/categories/{name}/feed.xml")
        assert response.status_code == 404
        assert "페이지를 찾을 수 없습니다" in response.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text


def test_unknown_feed_paths_are_not_kept_in_the_served_feeds(web: WebSite) -> None:
    cache = web.app.state.web.feeds
    assert web.get("/feed.xml").status_code == 200
    kept = len(cache)
    for n in range(300):
        assert web.get(f"/categories/없는-분류-{n}/feed.xml").status_code == 404
    assert len(cache) <= kept + 3  # the home page's feed links may add the other two
    assert web.get("/feed.xml").status_code == 200


# --- item 11: the same work for every address before answering ---------------------------


def raw_post(app: Any, body: bytes, on_answer: Any) -> list[dict[str, Any]]:
    """POST /subscribe (JSON) straight through the ASGI callable; ``on_answer()`` runs the
    moment the last byte of the answer is handed to the server, before the app returns."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/subscribe",
        "raw_path": b"/subscribe",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("203.0.113.7", 40000),
        "server": ("testserver", 80),
    }
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            on_answer()

    async def go() -> None:
        await app(scope, receive, send)

    anyio.run(go)
    return sent


def test_subscribe_answers_before_touching_the_store_for_new_and_active_addresses(
    web: WebSite,
) -> None:
    """Same work on every path: the answer goes out before the sign-up is written or a
    confirmation rendered, whatever the address's state — so its timing tells nothing."""
    data = {"email": "active@example.kr", "csrf": web.csrf()}
    assert web.post("/subscribe", data=data).status_code == 200
    (message,) = web.messages()
    assert web.post(confirm_link(message)).status_code == 200
    web.clock.advance(timedelta(hours=2))

    def state(address: str) -> tuple[Any, ...]:
        with web.store.read() as conn:
            found = get_subscriber(conn, address)
        return (None,) if found is None else (found.status, found.name, len(web.messages()))

    answers: dict[str, bytes] = {}
    for address, name in (("새구독자@example.kr", "새 구독자"), ("active@example.kr", "바뀐 이름")):
        body = f'{{"email": "{address}", "name": "{name}"}}'.encode()
        before = state(address)
        seen_at_answer: list[tuple[Any, ...]] = []

        def on_answer(a: str = address, seen: list[tuple[Any, ...]] = seen_at_answer) -> None:
            seen.append(state(a))

        sent = raw_post(web.app, body, on_answer)
        assert seen_at_answer == [before], address  # nothing written when the answer left
        answers[address] = b"".join(m.get("body", b"") for m in sent)
        assert sent[0]["status"] == 202
    assert len(set(answers.values())) == 1
    with web.store.read() as conn:
        fresh = get_subscriber(conn, "새구독자@example.kr")
        active = get_subscriber(conn, "active@example.kr")
    assert fresh is not None and fresh.status is SubscriberStatus.PENDING  # then written
    assert active is not None and active.status is SubscriberStatus.ACTIVE
    assert len(web.messages()) == 2  # the new address's confirmation, after the answer


# --- item 14: deep JSON and media types ----------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 8_000])
def test_deeply_nested_json_is_a_400_without_a_traceback(
    web: WebSite, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    caplog.set_level(logging.DEBUG)
    for body in ("[" * depth + "]" * depth, '{"email": ' + "[" * depth + "]" * depth + "}"):
        response = web.post(
            "/subscribe", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert "중첩" in response.json()["error"]
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert web.messages() == []


@pytest.mark.parametrize(
    "media",
    ["Application/JSON", "application/json; charset=utf-8", "APPLICATION/JSON ; Charset=UTF-8"],
)
def test_json_media_types_are_matched_case_insensitively_with_parameters(
    web: WebSite, media: str
) -> None:
    response = web.post(
        "/subscribe",
        content='{"email": "대소문자@example.kr"}'.encode(),
        headers={"Content-Type": media},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "check-your-inbox"


@pytest.mark.parametrize(
    "media",
    ["Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded; Charset=UTF-8"],
)
def test_form_media_types_are_matched_case_insensitively(web: WebSite, media: str) -> None:
    csrf = web.csrf()
    body = str(httpx.QueryParams({"email": "양식@example.kr", "csrf": csrf}))
    response = web.post("/subscribe", content=body.encode(), headers={"Content-Type": media})
    assert response.status_code == 200
    assert "메일함을 확인해 주세요" in response.text
    with web.store.read() as conn:
        assert get_subscriber(conn, "양식@example.kr") is not None


def test_brackets_inside_json_strings_do_not_count_as_nesting(web: WebSite) -> None:
    name = r"[[[[[[[[[[{{{{{{{{{{ 괄호 \" 이름 ]]"  # an escaped quote does not end it
    body = f'{{"email": "괄호@example.kr", "name": "{name}", "categories": []}}'
    response = web.post(
        "/subscribe", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


def test_a_sign_up_the_store_cannot_record_is_logged_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The answer went out before the store failed: the log says what was lost, no trace."""
    from sqlalchemy import create_engine

    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'gone.db'}")
    try:
        site.store.engine = create_engine(f"sqlite:///{tmp_path / '없는' / '폴더' / 'x.db'}")
        caplog.set_level(logging.INFO)
        response = site.post("/subscribe", json={"email": "잃어버린@example.kr"})
        assert response.status_code == 202
        lines = [r for r in caplog.records if "was not recorded" in r.getMessage()]
        assert len(lines) == 1 and "sign up again" in lines[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info], caplog.text
    finally:
        site.store.close()
