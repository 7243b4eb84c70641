"""The message catalogue (feedsvc/locales/*.po): complete in Korean and English, every id
the code and templates use is in it and nothing else, plural rules, the language a site
tag reads, and the English fallback."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from feedsvc import templating
from feedsvc.errors import ConfigError
from feedsvc.models import Frequency
from feedsvc.newsletter.labels import count_label, period_heading
from feedsvc.templating import (
    DEFAULT_TEMPLATES,
    LANGUAGES,
    LOCALES,
    Texts,
    catalogue_language,
    page_language,
    text_environment,
)
from feedsvc.web.error_pages import STATUSES
from feedsvc.web.pages import FREQUENCIES
from tests.conftest import REPO

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _catalogue(code: str) -> dict[str, tuple[str, ...]]:
    """id → its translation(s) (a plural entry: every form), as the .po file holds them."""
    with (LOCALES / f"{code}.po").open("rb") as source:
        catalogue = read_po(source, locale=code)
    found: dict[str, tuple[str, ...]] = {}
    for message in catalogue:
        if not message.id:
            continue  # the header
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found[key] = tuple(str(s) for s in strings)
    return found


def _template_ids() -> set[str]:
    ids: set[str] = set()
    for path in sorted(DEFAULT_TEMPLATES.glob("*.j2")):
        with path.open("rb") as source:
            for _line, message, _comments, _context in extract(
                "jinja2.ext:babel_extract", source, keywords={"_": None, "ngettext": (1, 2)}
            ):
                ids.add(message if isinstance(message, str) else message[0])
    return ids


def _python_ids() -> tuple[set[str], set[str]]:
    """Ids passed as literals to ``texts(…)``/``….plural(…)`` in feedsvc/, and the f-string
    ids' fixed prefixes (families the test spells out below)."""
    literal: set[str] = set()
    families: set[str] = set()
    for path in sorted((REPO / "feedsvc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if isinstance(func, ast.Call) and getattr(func.func, "id", None) == "Texts":
                name = "texts"
            if name not in ("texts", "plural"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                literal.add(first.value)
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                families.add(str(first.values[0].value))
    return literal, families


def _family_ids() -> dict[str, set[str]]:
    """The ids made from a prefix and a value at run time."""
    return {
        "frequency.": {f"frequency.{name}" for name in FREQUENCIES},
        "digest.heading.": {f"digest.heading.{f.value}" for f in Frequency},
        "error.": {f"error.{status}.{part}" for status in STATUSES for part in ("title", "body")},
    }


def test_korean_and_english_hold_the_same_ids_each_translated() -> None:
    """A message added to one catalogue and not the other fails here, naming it."""
    korean, english = _catalogue("ko"), _catalogue("en")
    assert sorted(set(english) - set(korean)) == [], "missing in ko.po"
    assert sorted(set(korean) - set(english)) == [], "missing in en.po"
    for code, catalogue in (("ko", korean), ("en", english)):
        empty = [key for key, strings in catalogue.items() if not all(s.strip() for s in strings)]
        assert empty == [], f"untranslated in {code}.po"


def test_every_id_used_is_in_the_catalogue_and_every_entry_is_used() -> None:
    literal, families = _python_ids()
    expanded = _family_ids()
    assert families <= set(expanded), f"spell out the ids of the f-string families {families}"
    used = _template_ids() | literal | {i for prefix in families for i in expanded[prefix]}
    english = set(_catalogue("en"))
    assert sorted(used - english) == [], "used but not in the catalogue"
    assert sorted(english - used) == [], "in the catalogue but used nowhere"


def test_placeholders_are_the_same_in_both_languages() -> None:
    korean, english = _catalogue("ko"), _catalogue("en")
    for key, strings in english.items():
        names = {frozenset(re.findall(r"%\((\w+)\)", s)) for s in strings + korean[key]}
        assert len(names) == 1, f"{key}: the translations use different placeholders"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["0 new posts", "1 new post", "2 new posts", "21 new posts"]),
        ("ko", ["새 글 0편", "새 글 1편", "새 글 2편", "새 글 21편"]),
    ],
)
def test_post_counts_follow_the_languages_plural_rules(language: str, expected: list[str]) -> None:
    assert [count_label(n, language) for n in (0, 1, 2, 21)] == expected


def test_the_confirmation_email_counts_days_in_both_languages() -> None:
    english, korean = Texts("en"), Texts("ko")
    assert [english.plural("confirm_email.expires", n) for n in (0, 1, 2)] == [
        "This link works for 0 days.",
        "This link works for 1 day.",
        "This link works for 2 days.",
    ]
    assert korean.plural("confirm_email.expires", 1) == "이 링크는 1일 동안 유효합니다."
    assert korean.plural("confirm_email.expires", 2) == "이 링크는 2일 동안 유효합니다."


@pytest.mark.parametrize(
    ("tag", "catalogue", "lang"),
    [
        ("ko", "ko", "ko"),
        ("ko-KR", "ko", "ko-KR"),
        ("KO_kr", "ko", "KO_kr"),
        ("en", "en", "en"),
        ("en-GB", "en", "en-GB"),
        ("fr", "en", "en"),
        ("ja-JP", "en", "en"),
    ],
)
def test_a_site_language_reads_its_catalogue_or_english(
    tag: str, catalogue: str, lang: str
) -> None:
    assert catalogue_language(tag) == catalogue
    assert page_language(tag) == lang
    assert Texts(tag)("email.read_more") == {"ko": "계속 읽기", "en": "Read more"}[catalogue]


@given(st.from_regex(r"\A[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,2}\Z"))
def test_any_language_tag_gives_korean_or_english_text(tag: str) -> None:
    """Every tag site.language accepts reads a complete catalogue: Korean exactly when its
    primary subtag is ko, English otherwise; never a message id."""
    korean = tag.split("-")[0].lower() == "ko"
    heading = period_heading("daily", tag)
    assert heading == ("오늘의 새 글" if korean else "Today's new posts")
    assert bool(HANGUL.search(count_label(3, tag))) == korean


def test_the_subject_template_has_the_catalogue(tmp_path: Path) -> None:
    """digest.subject may use _() and ngettext() like the templates."""
    template = text_environment("ko").from_string(
        '{{ ngettext("digest.new_posts", "digest.new_posts.plural", n) }}'
    )
    assert template.render(n=2) == "새 글 2편"


def test_an_id_missing_from_a_catalogue_reads_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    korean = (LOCALES / "ko.po").read_text(encoding="utf-8")
    partial = re.sub(r'msgid "email\.read_more"\nmsgstr "[^"]*"\n', "", korean)
    assert partial != korean
    (tmp_path / "ko.po").write_text(partial, encoding="utf-8")
    (tmp_path / "en.po").write_bytes((LOCALES / "en.po").read_bytes())
    monkeypatch.setattr(templating, "LOCALES", tmp_path)
    templating._translations.cache_clear()
    try:
        assert Texts("ko")("email.read_more") == "Read more"
        assert Texts("ko")("email.unsubscribe") == "구독 해지"
    finally:
        templating._translations.cache_clear()


def test_a_broken_catalogue_is_a_config_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "en.po").write_text('msgid "a"\n\nmsgid "b"\nmsgstr "x"\n', encoding="utf-8")
    monkeypatch.setattr(templating, "LOCALES", tmp_path)
    templating._translations.cache_clear()
    try:
        with pytest.raises(ConfigError) as caught:
            Texts("en")("email.read_more")
        assert str(tmp_path / "en.po") in str(caught.value)
    finally:
        templating._translations.cache_clear()


def test_only_complete_catalogues_ship() -> None:
    assert sorted(path.stem for path in LOCALES.glob("*.po")) == sorted(LANGUAGES)
