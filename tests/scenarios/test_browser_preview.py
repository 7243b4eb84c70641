"""A real client's view: the digest HTML in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright; never a downloaded browser).

Screenshots (desktop light, desktop dark, phone) go to the test's tmp_path; set
FEEDSVC_TEST_ARTIFACTS=DIR to keep a copy there, e.g. to look at the design.
Skipped, saying why, where /usr/bin/chromium or the playwright package is missing;
`.ci/run` installs chromium so that CI runs it.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from feedsvc.delivery.mime import html_part
from feedsvc.newsletter.messages import Sender, render_digest
from feedsvc.templating import environment
from tests.digest_helpers import digest_settings, minji, sample_content

pytestmark = pytest.mark.browser


def _png(width: int, height: int) -> bytes:
    """A solid sea-blue PNG, to stand in for remote images (no network in tests)."""
    row = b"\x00" + bytes((40, 110, 170)) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.fixture
def preview(tmp_path: Path) -> Path:
    settings = digest_settings()
    template = render_digest(
        Sender.from_settings(settings), sample_content(), environment(settings)
    )
    path = tmp_path / "digest-preview.html"
    path.write_text(html_part(template.personalise(minji()).data), encoding="utf-8")
    return path


def _page(browser: Any, *, width: int, height: int, dark: bool = False) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme="dark" if dark else "light",
        device_scale_factor=1,
    )
    image = _png(600, 315)

    def answer(route: Any) -> None:
        if route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=image)
        else:
            route.abort()

    context.route("http://**/*", answer)
    context.route("https://**/*", answer)
    return context.new_page()


def _shoot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("FEEDSVC_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    return path


def test_the_preview_shows_the_posts_and_a_working_unsubscribe_link(
    browser: Any, preview: Path, tmp_path: Path
) -> None:
    page = _page(browser, width=1024, height=900)
    page.goto(preview.as_uri())
    titles = page.locator(".post-title").all_inner_texts()
    assert titles == [
        "해운대 바다축제, 6월 1일 개막",
        "부산 스마트시티 박람회 참가 신청 안내",
        "시내버스 노선 개편 & 첫차 시간 변경 <안내>",
    ]
    unsubscribe = page.get_by_role("link", name="구독 해지")
    assert unsubscribe.is_visible()
    assert unsubscribe.get_attribute("href") == minji().unsubscribe_url
    assert page.get_by_role("link", name="구독 설정 변경").is_visible()
    summary = page.locator(".summary").first
    assert summary.is_visible()
    assert summary.inner_text().startswith("올해 해운대 바다축제는 6월 1일부터")
    # The preheader repeats it for the inbox list, but must not show in the message.
    assert page.locator("body > div").first.is_hidden()
    _shoot(page, tmp_path, "digest-light.png")
    page.context.close()


def test_dark_mode_switches_the_colours(browser: Any, preview: Path, tmp_path: Path) -> None:
    page = _page(browser, width=1024, height=900, dark=True)
    page.goto(preview.as_uri())
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    title = page.evaluate("getComputedStyle(document.querySelector('.post-title a')).color")
    assert background == "rgb(16, 17, 20)"
    assert card == "rgb(27, 29, 34)"
    assert title == "rgb(241, 242, 244)"
    _shoot(page, tmp_path, "digest-dark.png")
    page.context.close()


def test_on_a_phone_nothing_overflows_sideways(browser: Any, preview: Path, tmp_path: Path) -> None:
    page = _page(browser, width=375, height=800)
    page.goto(preview.as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    hero = page.locator("img.hero").first
    box = hero.bounding_box()
    assert box is not None and box["width"] <= 375
    _shoot(page, tmp_path, "digest-phone.png")
    page.context.close()
