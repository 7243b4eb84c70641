"""The message catalogue (feedsvc/locales/*.po, compiled to *.mo): complete in Korean and
English, every id the code and templates use is in it and nothing else, the English of
every Message in the code is en.po's, the compiled files are what their .po compiles to,
plural rules, the language a site tag reads, and the English fallback."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from feedsvc import messages
from feedsvc.cli.subscribers import TABLE_COLUMNS
from feedsvc.errors import ConfigError
from feedsvc.messages import (
    COMPILE_COMMAND,
    LANGUAGES,
    LOCALES,
    Texts,
    catalogue_language,
    page_language,
)
from feedsvc.models import Frequency, Message, SignalOutcome, SubscriberStatus
from feedsvc.newsletter.labels import count_label, period_heading
from feedsvc.templating import DEFAULT_TEMPLATES, text_environment
from feedsvc.web.error_pages import STATUSES
from feedsvc.web.pages import FREQUENCIES
from tests.conftest import REPO

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _compile_script() -> ModuleType:
    """scripts/compile_catalogues.py, imported (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "compile_catalogues", REPO / "scripts" / "compile_catalogues.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def _catalogue_call(node: ast.Call) -> bool:
    """Whether ``node`` looks a message up by id: ``texts("id")``, ``said("id")``,
    ``texts.plural("id", n)``, ``self.texts("id")``, ``Texts(lang)("id")``,
    ``texts()("id")``, ``Message.of("id", …)``, ``Message.counted("id", …)``."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in ("texts", "said")
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "Message":
            return func.attr in ("of", "counted")
        return func.attr in ("texts", "plural")
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name):
        return func.func.id in ("Texts", "texts")
    return False


def _id_arguments(first: ast.expr) -> list[ast.expr]:
    """The id expressions of a call's first argument (both sides of ``a if c else b``)."""
    if isinstance(first, ast.IfExp):
        return [*_id_arguments(first.body), *_id_arguments(first.orelse)]
    return [first]


def _python_ids() -> tuple[set[str], set[str]]:
    """Ids passed as literals to the catalogue in feedsvc/ (see _catalogue_call), and the
    f-string ids' fixed prefixes (families the test spells out below)."""
    literal: set[str] = set()
    families: set[str] = set()
    for path in sorted((REPO / "feedsvc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args or not _catalogue_call(node):
                continue
            for first in _id_arguments(node.args[0]):
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
        "cli.time.": {f"cli.time.{unit}" for unit in ("days", "hours", "minutes", "seconds")},
        "cli.problem.": {"cli.problem.error", "cli.problem.warning"},
        "cli.status.subscribers.": {f"cli.status.subscribers.{s.value}" for s in SubscriberStatus},
        "cli.subscriber_status.": {f"cli.subscriber_status.{s.value}" for s in SubscriberStatus},
        "cli.frequency.": {f"cli.frequency.{f.value}" for f in Frequency},
        "cli.digest_run.": {
            f"cli.digest_run.{f.value}" for f in Frequency if f is not Frequency.IMMEDIATE
        },
        "cli.table.": {f"cli.table.{column}" for column in TABLE_COLUMNS},
        "cli.signal_outcome.": {f"cli.signal_outcome.{o.value}" for o in SignalOutcome},
    }


def _code_messages() -> list[tuple[str, str, str | tuple[str, ...]]]:
    """Every ``Message.of(id, english, …)`` and ``Message.counted(id, (one, other), …)``
    in feedsvc/ written with literals: (where, id, its English)."""
    found: list[tuple[str, str, str | tuple[str, ...]]] = []
    for path in sorted((REPO / "feedsvc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "Message"
                and node.func.attr in ("of", "counted")
                and len(node.args) >= 2
            ):
                continue
            key, english = node.args[0], node.args[1]
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            assert isinstance(key, ast.Constant), f"{where}: write the message id as a literal"
            if isinstance(english, ast.Tuple):
                forms = tuple(str(ast.literal_eval(form)) for form in english.elts)
                found.append((where, str(key.value), forms))
            else:
                found.append((where, str(key.value), str(ast.literal_eval(english))))
    return found


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


def test_the_english_of_every_message_in_the_code_is_en_pos() -> None:
    """Code below the command line keeps a Message's English beside its id (for logs and
    the store, without reading the catalogue); en.po must say exactly the same."""
    english = _catalogue("en")
    found = _code_messages()
    assert len(found) >= 5
    for where, key, text in found:
        assert key in english, f"{where}: {key} is not in en.po"
        expected = text if isinstance(text, tuple) else (text,)
        assert english[key] == expected, f"{where}: en.po's {key} differs from the code's"


def test_each_compiled_catalogue_is_what_its_po_compiles_to() -> None:
    """The .mo files feedsvc reads are never behind the .po files people edit."""
    script = _compile_script()
    stale = script.stale(LOCALES)
    assert stale == [], (
        f"{', '.join(str(mo) for mo, _ in stale)}: not what the .po compiles to; "
        f"run `{COMPILE_COMMAND}` and commit the .mo files"
    )
    assert sorted(path.stem for path in LOCALES.glob("*.mo")) == sorted(LANGUAGES)


def test_compiling_gives_the_same_bytes_whenever_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No date of compiling or Babel version in a .mo: the check above cannot fail on a
    machine or a day other than the one that compiled."""
    script = _compile_script()
    first = script.compiled(LOCALES / "ko.po")
    monkeypatch.setattr("babel.messages.catalog.VERSION", "0.0.0")
    assert script.compiled(LOCALES / "ko.po") == first
    assert b"Generated-By" not in first and b"POT-Creation-Date" not in first


def test_a_message_reads_its_english_without_the_catalogue_and_any_language_with_it() -> None:
    days = Message.counted("archive.not_mailed", ("%(count)s day", "%(count)s days"), 1)
    assert str(days) == "1 day"
    note = Message.counted("archive.not_mailed", ("x %(count)s", "y %(count)s"), 40)
    assert str(note) == "y 40"
    assert "40일" in Texts("ko").message(note) and Texts("en").message(note).startswith(
        "not mailed"
    )
    unknown = Message.of("no.such.id", "as %(what)s written", what=note)
    assert Texts("ko").message(unknown).startswith("as 메일로 보내지 않음")
    assert str(unknown) == "as y 40 written"


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
    script = _compile_script()
    (tmp_path / "ko.mo").write_bytes(script.compiled(tmp_path / "ko.po"))
    (tmp_path / "en.mo").write_bytes((LOCALES / "en.mo").read_bytes())
    monkeypatch.setattr(messages, "LOCALES", tmp_path)
    messages._translations.cache_clear()
    try:
        assert Texts("ko")("email.read_more") == "Read more"
        assert Texts("ko")("email.unsubscribe") == "구독 해지"
    finally:
        messages._translations.cache_clear()


def test_a_broken_catalogue_is_a_config_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "en.mo").write_bytes(b"not a catalogue")
    monkeypatch.setattr(messages, "LOCALES", tmp_path)
    messages._translations.cache_clear()
    try:
        with pytest.raises(ConfigError) as caught:
            Texts("en")("email.read_more")
        assert str(tmp_path / "en.mo") in str(caught.value)
        assert COMPILE_COMMAND in str(caught.value)
        (tmp_path / "en.mo").unlink()
        with pytest.raises(ConfigError, match="compile_catalogues"):
            Texts("en")("email.read_more")
    finally:
        messages._translations.cache_clear()


def test_only_complete_catalogues_ship() -> None:
    assert sorted(path.stem for path in LOCALES.glob("*.po")) == sorted(LANGUAGES)
