"""The subscriber's path in a real browser: headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright) against the app on a real uvicorn.

Open ``/``, fill in the form, submit, read the confirmation email from the outbox, open its
link and press the button, then open the unsubscribe link and press the button.
Screenshots go to tmp_path; with FEEDSVC_TEST_ARTIFACTS=DIR a copy is kept there. Skipped,
saying why, without /usr/bin/chromium or the playwright package.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from feedsvc.models import SubscriberStatus
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage.subscribers import get_subscriber
from tests.web.test_uvicorn import served
from tests.web_helpers import WebSite, confirm_link

pytestmark = pytest.mark.browser
__all__ = ["served"]  # the fixture, imported for this module's tests


def _shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("FEEDSVC_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    assert path.stat().st_size > 5_000


def _status(site: WebSite, address: str) -> SubscriberStatus | None:
    with site.store.read() as conn:
        found = get_subscriber(conn, address)
    return None if found is None else found.status


def test_subscribe_confirm_and_unsubscribe_in_a_browser(
    browser: Any, served: tuple[WebSite, str], tmp_path: Path
) -> None:
    site, base = served
    context = browser.new_context(viewport={"width": 1024, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "테스트 사이트"
    assert page.get_by_text("해운대 바다축제 개막").is_visible()
    _shoot(page, tmp_path, "web-home.png")
    page.fill("#email", "minji.browser@example.kr")
    page.fill("#name", "김민지")
    page.get_by_label("일주일에 한 번").check()
    page.get_by_label("축제").check()
    page.get_by_role("button", name="구독 신청").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "메일함을 확인해 주세요"
    _shoot(page, tmp_path, "web-subscribed.png")

    deadline = time.monotonic() + 5
    while not site.messages():
        assert time.monotonic() < deadline, "no confirmation email in the outbox"
        time.sleep(0.05)
    (message,) = site.messages()
    page.goto(base + confirm_link(message))
    assert page.locator("h1").inner_text() == "구독 확인"
    assert _status(site, "minji.browser@example.kr") is SubscriberStatus.PENDING
    _shoot(page, tmp_path, "web-confirm.png")
    page.get_by_role("button", name="구독 확인하기").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "구독이 확인되었습니다"
    assert _status(site, "minji.browser@example.kr") is SubscriberStatus.ACTIVE
    _shoot(page, tmp_path, "web-confirmed.png")

    token = site.tokens.make(Purpose.UNSUBSCRIBE, 1, "minji.browser@example.kr")
    page.goto(f"{base}/unsubscribe/{token}")
    assert (
        _status(site, "minji.browser@example.kr") is SubscriberStatus.ACTIVE
    )  # opening changes nothing
    _shoot(page, tmp_path, "web-unsubscribe.png")
    page.get_by_role("button", name="구독 해지하기").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "구독이 해지되었습니다"
    assert _status(site, "minji.browser@example.kr") is SubscriberStatus.UNSUBSCRIBED
    _shoot(page, tmp_path, "web-unsubscribed.png")

    phone = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=1)
    small = phone.new_page()
    small.goto(base + "/")
    assert small.evaluate("document.documentElement.scrollWidth") <= 375
    _shoot(small, tmp_path, "web-home-phone.png")
    phone.close()
    context.close()
