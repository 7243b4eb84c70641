"""A subscriber's whole journey in headless Chromium (issue 17's acceptance), at 390 px
and 1280 px, light and dark, on a Korean and an English site:

home → subscribe → the confirmation email (opened as a file) → confirm → a digest email
(opened as a file) → its preferences link (a time zone from the list, a category) → its
unsubscribe link.

Each step is checked as the layout test checks every page: nothing scrolls sideways,
``<html lang>`` is the site's, every input has a label, buttons and body text reach 4.5:1
— and the store says what the subscriber did. Screenshots go to ``journey/`` below the
test's tmp_path (FEEDSVC_TEST_ARTIFACTS=DIR keeps a copy). Skipped, saying why, without
/usr/bin/chromium or the playwright package. "Your first newsletter in five minutes" in
the README is this journey by hand.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from feedsvc.delivery.mime import html_part
from feedsvc.newsletter.messages import Sender, render_digest
from feedsvc.newsletter.personalise import Personal
from feedsvc.newsletter.tokens import Purpose
from feedsvc.storage.schema import subscribers
from feedsvc.templating import environment
from tests.digest_helpers import digest_settings, sample_content
from tests.scenarios.test_browser_layout import (
    SCHEMES,
    WIDTHS,
    _check,
    _context,
    _rgb,
    _shoot,
    served_in,  # noqa: F401 (the fixture, shared)
)
from tests.test_contrast import AA, contrast
from tests.web_helpers import WebSite

pytestmark = pytest.mark.browser

BODY_TEXT = """() => { const s = getComputedStyle(document.body);
  return [s.color, s.backgroundColor]; }"""
ZONES = {"ko": "Asia/Seoul", "en": "America/New_York"}


def _step(page: Any, width: int, language: str, shots: Path, name: str) -> None:
    """The layout checks, body text's contrast too, and a screenshot."""
    _check(page, width, language, name)
    colour, background = page.evaluate(BODY_TEXT)
    if not background.startswith("rgba(0, 0, 0, 0)"):
        ratio = contrast(_rgb(colour), _rgb(background))
        assert ratio >= AA, f"{name} at {width} px: body text {ratio:.2f}:1"
    _shoot(page, shots, name.replace(" ", "-"))


def _message_to(site: WebSite, address: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        found = [m for m in site.messages() if address in str(m["To"])]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no email to {address} in the outbox"
        time.sleep(0.05)


def _subscriber(site: WebSite, address: str) -> Any:
    with site.store.read() as conn:
        return conn.execute(select(subscribers).where(subscribers.c.email == address)).one()


def _open_email(browser: Any, html: str, folder: Path, name: str, width: int, scheme: str) -> Any:
    """The email's HTML as a file, in a context with no network (as a mail client)."""
    path = folder / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    context = _context(browser, width, scheme, offline=True)
    page = context.new_page()
    page.goto(path.as_uri())
    return page


def _journey(browser: Any, site: WebSite, base: str, width: int, scheme: str, shots: Path) -> None:
    language = site.settings.site.language
    tag = f"{language}-{width}-{scheme}"
    address = f"journey.{width}.{scheme}@example.kr"
    page = _context(browser, width, scheme).new_page()
    # 1. The home page, and the sign-up.
    page.goto(base + "/")
    _step(page, width, language, shots, f"{tag} 1 home")
    page.fill("#email", address)
    page.locator("form[action='/subscribe'] button[type=submit]").click()
    page.wait_for_load_state()
    _step(page, width, language, shots, f"{tag} 2 check your inbox")
    # 2. The confirmation email, as the subscriber's mail client shows it.
    message = _message_to(site, address)
    body = message.get_body(("html",))
    assert body is not None
    email = _open_email(browser, str(body.get_content()), shots, f"{tag}-confirm", width, scheme)
    _step(email, width, language, shots, f"{tag} 3 confirmation email")
    link = email.locator("a[href*='/confirm/']").first.get_attribute("href")
    email.context.close()
    assert link is not None
    # 3. Confirm: a page with a button (mail scanners only GET).
    page.goto(base + link[link.index("/confirm/") :])
    _step(page, width, language, shots, f"{tag} 4 confirm")
    page.locator("button[type=submit]").click()
    page.wait_for_load_state()
    _step(page, width, language, shots, f"{tag} 5 confirmed")
    row = _subscriber(site, address)
    assert row.status == "active"
    # 4. A digest for them, as their mail client shows it, with its two links.
    prefs = site.tokens.make(Purpose.PREFERENCES, row.id, address)
    unsubscribe = site.tokens.make(Purpose.UNSUBSCRIBE, row.id, address)
    person = Personal(
        subscriber_id=row.id,
        email=address,
        name=None,
        unsubscribe_url=f"{base}/unsubscribe/{unsubscribe}",
        preferences_url=f"{base}/preferences/{prefs}",
    )
    settings = digest_settings(site={"language": language})
    digest = render_digest(Sender.from_settings(settings), sample_content(), environment(settings))
    html = html_part(digest.personalise(person).data)
    email = _open_email(browser, html, shots, f"{tag}-digest", width, scheme)
    _step(email, width, language, shots, f"{tag} 6 digest email")
    preferences = email.locator("a[href*='/preferences/']").first.get_attribute("href")
    link = email.locator("a[href*='/unsubscribe/']").first.get_attribute("href")
    email.context.close()
    assert (preferences, link) == (person.preferences_url, person.unsubscribe_url)
    # 5. Its preferences link: a zone from the list, a category.
    page.goto(preferences)
    _step(page, width, language, shots, f"{tag} 7 preferences")
    page.select_option("#timezone", ZONES[language])
    category = page.locator("input[name=categories]").first
    chosen = category.get_attribute("value")
    category.check()
    page.locator("form button[type=submit]").click()
    page.wait_for_load_state()
    _step(page, width, language, shots, f"{tag} 8 preferences saved")
    row = _subscriber(site, address)
    assert row.timezone == ZONES[language] and chosen in row.categories
    # 6. Its unsubscribe link: a page with a button.
    page.goto(link)
    _step(page, width, language, shots, f"{tag} 9 unsubscribe")
    page.locator("button.danger").click()
    page.wait_for_load_state()
    _step(page, width, language, shots, f"{tag} 10 unsubscribed")
    assert _subscriber(site, address).status == "unsubscribed"
    page.context.close()


def test_the_whole_journey_at_a_phone_and_a_desktop_light_and_dark(
    browser: Any,
    served_in: tuple[WebSite, str],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    site, base = served_in
    shots = tmp_path / "journey"
    shots.mkdir()
    for width in WIDTHS:
        for scheme in SCHEMES:
            _journey(browser, site, base, width, scheme, shots)
    assert len(list(shots.glob("*.png"))) == len(WIDTHS) * len(SCHEMES) * 10
    assert re.search(r"\d", "".join(p.name for p in shots.glob("*.png")))
