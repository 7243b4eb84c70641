"""Every page and email in headless Chromium at a phone's 390 px and a desktop's 1280 px,
light and dark, for a Korean and an English site (issue 17, item 4): nothing scrolls
sideways, ``<html lang>`` is the site's, every form field has a label, and the buttons'
computed colours reach 4.5:1. Screenshots go to tmp_path (FEEDSVC_TEST_ARTIFACTS=DIR keeps
a copy). Skipped, saying why, without /usr/bin/chromium or the playwright package.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from feedsvc.delivery.mime import html_part
from feedsvc.newsletter.messages import Sender, render_digest
from feedsvc.newsletter.tokens import Purpose
from feedsvc.templating import environment
from tests.digest_helpers import digest_settings, minji, sample_content
from tests.test_contrast import AA, contrast
from tests.web.test_uvicorn import free_port
from tests.web_helpers import WebSite, make_site

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)
SCHEMES = ("light", "dark")
ADDRESS = "minji.layout@example.kr"
# Every input the subscriber fills in has a <label>, and every control is named.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && !e.closest('.trap'))
  .filter(e => !(e.labels && e.labels.length) && !e.closest('label'))
  .map(e => e.name || e.id)"""
# Buttons with a background of their own (a transparent one is text on the page).
BUTTONS = """() => [...document.querySelectorAll('button, a.button')]
  .filter(e => e.offsetParent !== null)
  .map(e => { const s = getComputedStyle(e);
              return [e.textContent.trim(), s.color, s.backgroundColor]; })
  .filter(([, , background]) => !background.startsWith('rgba(0, 0, 0, 0)'))"""


@pytest.fixture(params=["ko", "en"])
def served_in(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WebSite, str]]:
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'layout.db'}", language=request.param)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(site.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield site, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        site.store.close()


def _rgb(css: str) -> tuple[float, float, float]:
    found = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert found is not None, css
    red, green, blue = (int(v) / 255 for v in found.groups())
    return (red, green, blue)


def _shoot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("FEEDSVC_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _check(page: Any, width: int, language: str, name: str) -> None:
    where = f"{name} at {width} px"
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{where}: {scroll} px wide, scrolls sideways"
    assert page.evaluate("document.documentElement.lang") == language, where
    assert page.evaluate(UNLABELLED) == [], f"{where}: inputs without a label"
    for text, colour, background in page.evaluate(BUTTONS):
        ratio = contrast(_rgb(colour), _rgb(background))
        assert ratio >= AA, f"{where}: the button {text!r} is {ratio:.2f}:1"


def _pages(site: WebSite, confirm: str) -> dict[str, str]:
    """Name → URL of every page a subscriber meets (GET)."""
    prefs = site.tokens.make(Purpose.PREFERENCES, 1, ADDRESS)
    unsubscribe = site.tokens.make(Purpose.UNSUBSCRIBE, 1, ADDRESS)
    return {
        "home": "/",
        "confirm": confirm,
        "preferences": f"/preferences/{prefs}",
        "unsubscribe": f"/unsubscribe/{unsubscribe}",
        "not-found": "/nowhere",
        "bad-link": "/confirm/nonsense",
    }


def _context(browser: Any, width: int, scheme: str, *, offline: bool = False) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, device_scale_factor=1
    )
    if offline:
        # An email opened from a file: nothing from the network (no images needed).
        context.route("http://**/*", lambda route: route.abort())
        context.route("https://**/*", lambda route: route.abort())
    return context


def _visit(browser: Any, language: str, urls: dict[str, str], shots: Path, stage: str) -> None:
    """Open every URL in every size and scheme and check it; on the home page, also sign
    up (a new address each time) and check the notice that follows. Emails (``stage``
    "email") are files, opened offline."""
    for width in WIDTHS:
        for scheme in SCHEMES:
            context = _context(browser, width, scheme, offline=stage == "email")
            page = context.new_page()
            for name, url in urls.items():
                page.goto(url)
                _check(page, width, language, f"{stage} {name}")
                _shoot(page, shots, f"{language}-{stage}-{name}-{width}-{scheme}")
                if name == "home":
                    page.fill("#email", f"layout.{width}.{scheme}@example.kr")
                    page.locator("form[action='/subscribe'] button[type=submit]").click()
                    page.wait_for_load_state()
                    _check(page, width, language, "check your inbox")
                    _shoot(page, shots, f"{language}-subscribed-{width}-{scheme}")
            context.close()


def _confirmation_html(site: WebSite, base: str) -> str:
    """Sign up through the page; the confirmation email's HTML, from the outbox."""
    import httpx

    with httpx.Client(base_url=base) as client:
        form = client.get("/").text
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        assert found is not None
        sent = {"email": ADDRESS, "frequency": "weekly", "csrf": found.group(1)}
        assert client.post("/subscribe", data=sent).status_code == 200
    deadline = time.monotonic() + 5
    while not site.messages():
        assert time.monotonic() < deadline, "no confirmation email in the outbox"
        time.sleep(0.05)
    (message,) = site.messages()
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def test_pages_and_emails_fit_a_phone_and_a_desktop_light_and_dark(
    browser: Any, served_in: tuple[WebSite, str], tmp_path: Path
) -> None:
    site, base = served_in
    language = site.settings.site.language
    emails = tmp_path / "emails"
    emails.mkdir()
    (emails / "confirm.html").write_text(_confirmation_html(site, base), encoding="utf-8")
    # The subscriber confirms, so that the preferences and unsubscribe pages are theirs.
    (message,) = site.messages()
    text = message.get_body(("plain",))
    assert text is not None
    link = re.search(r"(/confirm/\S+)", str(text.get_content()))
    assert link is not None
    settings = digest_settings(site={"language": language})
    digest = render_digest(Sender.from_settings(settings), sample_content(), environment(settings))
    digest_html = html_part(digest.personalise(minji()).data)
    (emails / "digest.html").write_text(digest_html, encoding="utf-8")
    shots = tmp_path / "shots"
    shots.mkdir()
    urls = {name: base + url for name, url in _pages(site, link.group(1)).items()}
    _visit(browser, language, urls, shots, "page")
    files = {name: (emails / f"{name}.html").as_uri() for name in ("confirm", "digest")}
    _visit(browser, language, files, shots, "email")
    # Press the buttons once: then the same links show "already confirmed" and "already
    # unsubscribed" in every size and scheme.
    page = _context(browser, 390, "dark").new_page()
    for name, button in (("confirm", "button[type=submit]"), ("unsubscribe", "button.danger")):
        page.goto(urls[name])
        page.locator(button).click()
        page.wait_for_load_state()
        _check(page, 390, language, f"after {name}")
        _shoot(page, shots, f"{language}-{name}-done-390-dark")
    page.context.close()
    done = {name: urls[name] for name in ("confirm", "unsubscribe")}
    _visit(browser, language, done, shots, "after")


def test_the_preferences_page_offers_the_browsers_time_zone(
    browser: Any, served_in: tuple[WebSite, str], tmp_path: Path
) -> None:
    """The optional script (CSP: scripts from the site only) offers the browser's zone;
    one press selects it, saving stores it. Without the zone in the list, nothing shows."""
    site, base = served_in
    _confirmation_html(site, base)
    url = base + _pages(site, "/")["preferences"]
    context = browser.new_context(
        viewport={"width": 390, "height": 900}, timezone_id="Europe/Berlin", device_scale_factor=1
    )
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    page.goto(url)
    offer = page.locator("#timezone-guess button")
    offer.wait_for(state="visible")
    assert "Europe/Berlin" in offer.inner_text()
    offer.click()
    assert page.locator("#timezone").input_value() == "Europe/Berlin"
    _shoot(page, tmp_path, f"{site.settings.site.language}-timezone-guess")
    page.locator("form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#timezone option[selected]").first.get_attribute("value") == (
        "Europe/Berlin"
    )
    assert page.locator("#timezone-guess").is_hidden()  # the browser's zone is chosen now
    assert [text for text in refused if "Content Security Policy" in text] == []
    context.close()
