"""The confirmation link through httpx's ASGI transport: opening it (GET, or HEAD as mail
link scanners do) only shows a button; the button's POST confirms; a link from before an
unsubscribe never brings the address back (issue 14, items 4 and 7)."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage

from feedsvc.clock import FixedClock
from feedsvc.models import SubscriberEventKind, SubscriberStatus
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.storage.subscribers import events_of, get_subscriber
from tests.web_helpers import SECRET, WebSite, confirm_link

BAD_LINK = "링크가 올바르지 않거나 만료되었습니다"


def sign_up(web: WebSite, address: str) -> None:
    data = {"email": address, "csrf": web.csrf(), "name": "김민지", "frequency": "weekly"}
    assert web.post("/subscribe", data=data).status_code == 200


def status_of(web: WebSite, address: str) -> SubscriberStatus:
    with web.store.read() as conn:
        found = get_subscriber(conn, address)
    assert found is not None
    return found.status


def mails_to(web: WebSite, address: str) -> list[EmailMessage]:
    return [m for m in web.messages() if address in str(m["To"])]


# --- item 4: GET and HEAD change nothing ------------------------------------------------


def test_head_and_get_of_the_confirm_link_leave_the_subscriber_pending_and_post_confirms(
    web: WebSite,
) -> None:
    """A mail scanner that opens the link (HEAD or GET) confirms nothing; the page's
    button (a POST to the same URL) does, once; later visits say it is done."""
    sign_up(web, "민지@예시.한국")
    (message,) = web.messages()
    link = confirm_link(message)

    head = web.request("HEAD", link)
    assert head.status_code == 200 and head.content == b""
    assert status_of(web, "민지@예시.한국") is SubscriberStatus.PENDING

    page = web.get(link)
    assert page.status_code == 200
    assert "구독 확인하기" in page.text and "버튼을 누르기 전에는" in page.text
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert form is not None and form.group(1) == link
    assert "민지@예시.한국" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert status_of(web, "민지@예시.한국") is SubscriberStatus.PENDING

    web.cookies.clear()  # the button works without any cookie: the token is the credential
    done = web.post(link)
    assert done.status_code == 200 and "구독이 확인되었습니다" in done.text
    assert status_of(web, "민지@예시.한국") is SubscriberStatus.ACTIVE

    again = web.post(link)
    assert again.status_code == 200 and "이미 구독 중입니다" in again.text
    shown = web.get(link)
    assert "이미 구독 중입니다" in shown.text and "<form" not in shown.text
    with web.store.read() as conn:
        found = get_subscriber(conn, "민지@예시.한국")
        assert found is not None
        kinds = [e.kind for e in events_of(conn, found.id)]
    assert kinds == [SubscriberEventKind.SUBSCRIBED, SubscriberEventKind.CONFIRMED]


def test_a_bad_or_expired_confirm_link_gets_the_bad_link_page_on_get_head_and_post(
    web: WebSite,
) -> None:
    sign_up(web, "pending@example.kr")
    with web.store.read() as conn:
        found = get_subscriber(conn, "pending@example.kr")
    assert found is not None
    good = web.tokens.make(Purpose.CONFIRM, found.id, found.email)

    eight_days_ago = FixedClock(web.clock.now() - timedelta(days=8))
    tokens = {
        "forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "wrong purpose": web.tokens.make(Purpose.UNSUBSCRIBE, found.id, found.email),
        "other address": web.tokens.make(Purpose.CONFIRM, found.id, "someone@example.kr"),
        "expired": Tokens(SECRET, clock=eight_days_ago).make(
            Purpose.CONFIRM, found.id, found.email
        ),
    }
    for reason, token in tokens.items():
        for method in ("GET", "POST"):
            response = web.request(method, f"/confirm/{token}")
            assert response.status_code == 400, (reason, method)
            assert BAD_LINK in response.text and "Traceback" not in response.text
        assert web.request("HEAD", f"/confirm/{token}").status_code == 400, reason
    assert status_of(web, "pending@example.kr") is SubscriberStatus.PENDING


# --- item 7: a link from before an unsubscribe -------------------------------------------


def test_a_confirm_link_from_before_the_unsubscribe_is_refused_and_the_new_one_works(
    web: WebSite,
) -> None:
    """She subscribes (link A) and confirms, then unsubscribes; someone else signs her up
    again (link B). Link A, posted now, is refused with a page saying why and she stays
    unsubscribed; link B confirms; afterwards either link only says it is done."""
    address = "sora@example.kr"
    sign_up(web, address)
    (first,) = mails_to(web, address)
    link_a = confirm_link(first)
    assert web.post(link_a).status_code == 200
    assert status_of(web, address) is SubscriberStatus.ACTIVE

    with web.store.read() as conn:
        found = get_subscriber(conn, address)
    assert found is not None
    leave = web.tokens.make(Purpose.UNSUBSCRIBE, found.id, address)
    web.clock.advance(timedelta(days=1))
    left = web.post(f"/unsubscribe/{leave}", data={"List-Unsubscribe": "One-Click"})
    assert left.status_code == 200
    assert status_of(web, address) is SubscriberStatus.UNSUBSCRIBED

    web.clock.advance(timedelta(hours=2))
    web.cookies.clear()  # someone else, in another browser
    sign_up(web, address)
    second = [m for m in mails_to(web, address) if m["Message-ID"] != first["Message-ID"]]
    assert len(second) == 1
    link_b = confirm_link(second[0])
    assert link_b != link_a

    for method in ("POST", "GET"):
        refused = web.request(method, link_a)
        assert refused.status_code == 400, method
        assert "구독을 해지하기 전에 보낸 링크" in refused.text
        assert "가장 최근에 받은 확인 메일" in refused.text
    assert status_of(web, address) is SubscriberStatus.UNSUBSCRIBED

    assert "구독 확인하기" in web.get(link_b).text
    done = web.post(link_b)
    assert done.status_code == 200 and "구독이 확인되었습니다" in done.text
    assert status_of(web, address) is SubscriberStatus.ACTIVE
    for link in (link_a, link_b):
        shown = web.get(link)
        assert shown.status_code == 200 and "이미 구독 중입니다" in shown.text
    with web.store.read() as conn:
        kinds = [e.kind for e in events_of(conn, found.id)]
    assert kinds.count(SubscriberEventKind.CONFIRMED) == 2
