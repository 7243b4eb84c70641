"""The whole product in the site's language (issue 17, item 3): every page, the
confirmation email and a digest, for a Korean and an English site, carry ``<html lang>`` of
that language and no text of the other (site titles, posts and addresses aside); digest
subjects follow the language by default; a site in another language reads English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from feedsvc.config import DigestSettings
from feedsvc.messages import LOCALES
from feedsvc.newsletter.messages import Sender, render_digest
from feedsvc.newsletter.tokens import Purpose
from feedsvc.templating import environment
from tests.digest_helpers import digest_settings, make_post, minji, sample_content, sample_posts
from tests.web_helpers import POSTS, WebSite, confirm_link, html_tree, make_site

HANGUL = re.compile(r"[\uac00-\ud7a3]")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%")
OWNER_IDS = r'^msgid "(cli|store|archive|bounces|config|content)\.'
DEFAULT_SUBJECT = DigestSettings.model_fields["subject"].default
# What the site's owner and its posts write: in Korean whatever the site's language.
USER_TEXT = (
    "테스트 사이트",
    "부산의 시정 소식과 생활 정보",
    "부산 시정 소식 편집팀",
    "부산 시정 소식",
    *(title for title, _date, _cats in POSTS.values()),
    *(name for _title, _date, cats in POSTS.values() for name in cats.strip("[]").split(", ")),
    *(text for post in sample_posts() for text in (post.meta.title, post.summary)),
    *(name for post in sample_posts() for name in post.meta.categories),
)


def _english_texts() -> list[str]:
    """The English catalogue's fixed pieces of 8+ characters (placeholders cut out)."""
    source = (LOCALES / "en.po").read_text(encoding="utf-8")
    # What subscribers read: not the site owner's (the command line, the store, the build).
    blocks = [b for b in source.split("\n\n") if not re.search(OWNER_IDS, b, re.MULTILINE)]
    strings = re.findall(r'^msgstr(?:\[\d\])? "(.+)"$', "\n\n".join(blocks), re.MULTILINE)
    pieces = [piece.strip() for s in strings for piece in PLACEHOLDER.split(s)]
    return sorted({piece for piece in pieces if len(piece) >= 8})


def visible_text(html: str) -> str:
    """What a reader sees of ``html``: text, and the attributes browsers show (not the
    email's hidden preheader: the posts' summaries, cut)."""
    tree = html_tree(html)
    for hidden in tree.xpath("//style | //script | //div[contains(@style, 'display: none')]"):
        hidden.drop_tree()
    shown = [tree.text_content()]
    for attribute in ("title", "placeholder", "alt", "aria-label", "label"):
        shown += tree.xpath(f"//@{attribute}")
    return "\n".join(str(text) for text in shown)


def assert_in_language(text: str, language: str, where: str) -> None:
    if language == "en":
        for user in sorted(USER_TEXT, key=len, reverse=True):
            text = text.replace(user, "")
        found = HANGUL.findall(text)
        assert not found, f"{where}: Korean on an English site: {''.join(found)[:80]!r}"
    else:
        found = [piece for piece in _english_texts() if piece in text]
        assert not found, f"{where}: English on a Korean site: {found}"


def html_lang(html: str) -> str:
    return str(html_tree(html).get("lang"))


@pytest.fixture(params=["ko", "en"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebSite]:
    made = make_site(tmp_path, f"sqlite:///{tmp_path / 'lang.db'}", language=request.param)
    try:
        yield made
    finally:
        made.store.close()


def _pages(site: WebSite) -> dict[str, str]:
    """Every page a subscriber meets, by name: sign-up, confirm, preferences (also with a
    refused form), unsubscribe, the notices, and error pages."""
    pages = {"home": site.get("/").text}
    sent = {"email": "minji@example.kr", "frequency": "weekly", "csrf": site.csrf()}
    pages["check inbox"] = site.post("/subscribe", data=sent).text
    pages["bad sign-up"] = site.post(
        "/subscribe", data={"email": "minji@", "csrf": site.csrf()}
    ).text
    (message,) = site.messages()
    link = confirm_link(message)
    pages["confirm"] = site.get(link).text
    pages["confirmed"] = site.post(link).text
    pages["already confirmed"] = site.get(link).text
    prefs = "/preferences/" + site.tokens.make(Purpose.PREFERENCES, 1, "minji@example.kr")
    pages["preferences"] = site.get(prefs).text
    refused = {"csrf": site.csrf(prefs), "frequency": "daily", "timezone": "Seoul"}
    pages["preferences refused"] = site.post(prefs, data=refused).text
    unsubscribe = "/unsubscribe/" + site.tokens.make(Purpose.UNSUBSCRIBE, 1, "minji@example.kr")
    pages["unsubscribe"] = site.get(unsubscribe).text
    one_click = {"List-Unsubscribe": "One-Click"}
    pages["unsubscribed"] = site.post(unsubscribe, data=one_click).text
    pages["already unsubscribed"] = site.get(unsubscribe).text
    pages["bad link"] = site.get("/unsubscribe/nonsense").text
    pages["not found"] = site.get("/nowhere").text
    pages["wrong method"] = site.request("PUT", "/subscribe").text
    pages["unsupported"] = site.post(
        "/subscribe", content=b"x", headers={"Content-Type": "x/y"}
    ).text
    return pages


def test_every_page_is_in_the_sites_language(site: WebSite) -> None:
    language = site.settings.site.language
    pages = _pages(site)
    for name, html in pages.items():
        assert html_lang(html) == language, name
        assert_in_language(visible_text(html), language, name)
    refusal = {"ko": "시간대 'Seoul'을(를) 알 수 없습니다", "en": "Time zone 'Seoul' is not known"}
    assert refusal[language] in visible_text(pages["preferences refused"])


def _parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    return str(html.get_content()), str(text.get_content())


def test_the_confirmation_email_is_in_the_sites_language(site: WebSite) -> None:
    language = site.settings.site.language
    sent = {"email": "minji@example.kr", "frequency": "weekly", "csrf": site.csrf()}
    site.post("/subscribe", data=sent)
    (message,) = site.messages()
    html, text = _parts(message)
    assert html_lang(html) == language
    assert_in_language(visible_text(html), language, "confirmation (HTML)")
    assert_in_language(text, language, "confirmation (text)")
    subject = {"ko": "테스트 사이트 구독을 확인해 주세요", "en": "Please confirm your subscription"}
    assert subject[language] in str(message["Subject"])
    assert_in_language(str(message["Subject"]), language, "confirmation subject")


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_digest_and_its_default_subject_are_in_the_sites_language(language: str) -> None:
    settings = digest_settings(site={"language": language}, digest={"subject": DEFAULT_SUBJECT})
    sender = Sender.from_settings(settings)
    template = render_digest(sender, sample_content(), environment(settings))
    html, text = _parts(parse(template.personalise(minji()).data))
    assert html_lang(html) == language
    assert_in_language(visible_text(html), language, "digest (HTML)")
    assert_in_language(text, language, "digest (text)")
    expected = {"ko": "부산 시정 소식: 새 글 3편", "en": "부산 시정 소식: 3 new posts"}
    assert template.subject == expected[language]
    one = sample_content((make_post("one", title="해운대 소식"),))
    single = render_digest(sender, one, environment(settings)).subject
    assert (
        single == {"ko": "부산 시정 소식: 새 글 1편", "en": "부산 시정 소식: 1 new post"}[language]
    )


def test_a_site_in_a_language_without_a_catalogue_reads_english(tmp_path: Path) -> None:
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'fr.db'}", language="fr-CA")
    try:
        home = site.get("/").text
        assert html_lang(home) == "en"
        assert "Get new posts by email" in home
        assert_in_language(visible_text(home), "en", "home (fr-CA)")
    finally:
        site.store.close()


def test_a_korean_region_tag_reads_korean_under_its_own_tag(tmp_path: Path) -> None:
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'kr.db'}", language="ko-KR")
    try:
        home = site.get("/").text
        assert html_lang(home) == "ko-KR" and "이메일로 새 글 받아 보기" in home
    finally:
        site.store.close()


def test_a_template_override_replaces_a_text_in_any_language(tmp_path: Path) -> None:
    """A site's own template wins over the catalogue: any text can be replaced."""
    own = tmp_path / "own-templates"
    own.mkdir()
    (own / "notice.html.j2").write_text(
        '{% extends "_page.html.j2" %}{% block content %}<h1>고마워요! {{ title }}</h1>'
        "{% endblock %}",
        encoding="utf-8",
    )
    site = make_site(tmp_path, f"sqlite:///{tmp_path / 'own.db'}", language="en")
    from feedsvc.templating import _environment

    site.app.state.web.env = _environment(own, "en")
    sent = {"email": "minji@example.kr", "frequency": "weekly", "csrf": site.csrf()}
    try:
        page = site.post("/subscribe", data=sent).text
        assert "<h1>고마워요! Check your inbox</h1>" in page
    finally:
        site.store.close()


def parse(data: bytes) -> EmailMessage:
    from tests.newsletter.test_messages import parsed

    return parsed(data)


def test_the_home_page_shows_the_site_title_once_as_its_heading(site: WebSite) -> None:
    tree = html_tree(site.get("/").text)
    title = site.settings.site.title
    assert [h.text_content() for h in tree.xpath("//h1")] == [title]
    assert tree.xpath("//header") == []  # no brand line above it
    assert html_tree(site.get("/nowhere").text).xpath("//header/a[@class='brand']")
