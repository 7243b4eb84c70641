"""The message catalogue: every text a person reads from feedsvc, keyed by message id.

Subscribers read it in the site's language (pages, form errors, emails, subjects); the
site owner reads the command line in it too (:func:`command_language`). The catalogues are
``feedsvc/locales/<code>.po`` (gettext; what translators edit), compiled to the
``<code>.mo`` files beside them by ``python scripts/compile_catalogues.py`` and read here
with the standard library alone: no Babel, no Jinja2 and no .po parsing at run time (a
test fails when a .mo is not what its .po compiles to).

A tag picks a catalogue by its primary subtag (``ko-KR`` → ``ko``); a language without a
catalogue, and any id a catalogue lacks, reads English. Python code calls :class:`Texts`:
``texts("form.email_invalid", value=typed)``, ``texts.plural("digest.new_posts", 3)``;
templates get the same catalogue through ``feedsvc.templating``.
"""

from __future__ import annotations

import functools
import gettext
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from feedsvc.errors import ConfigError
from feedsvc.models import Message

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = ("en", "ko")  # the complete catalogues; every other language reads English
FALLBACK_LANGUAGE = "en"
# The command line's language when it is not the site's (an operator who reads another).
LANGUAGE_ENV = "FEEDSVC_LANGUAGE"
# The terminal's language, as POSIX looks it up for messages: the first one set wins.
LOCALE_ENVS = ("LC_ALL", "LC_MESSAGES", "LANG")
COMPILE_COMMAND = "python scripts/compile_catalogues.py"


def primary_subtag(tag: str) -> str:
    """``ko-KR``, ``ko_KR.UTF-8``, ``KO`` → ``ko``."""
    return tag.replace("_", "-").split(".", 1)[0].split("-", 1)[0].lower()


def catalogue_language(tag: str) -> str:
    """The catalogue ``tag`` reads: its primary subtag when there is one (``ko-KR`` →
    ``ko``), else English."""
    primary = primary_subtag(tag)
    return primary if primary in LANGUAGES else FALLBACK_LANGUAGE


def page_language(tag: str) -> str:
    """The ``<html lang>`` of pages for a site in ``tag``: the tag itself when its catalogue
    exists (``ko-KR``), else the fallback's (a ``fr`` site reads English: ``en``)."""
    if catalogue_language(tag) == primary_subtag(tag):
        return tag
    return FALLBACK_LANGUAGE


def terminal_language(environ: Mapping[str, str] = os.environ) -> str:
    """The language of the terminal's locale (``LC_ALL``, then ``LC_MESSAGES``, then
    ``LANG``): ``ko_KR.UTF-8`` → ``ko``; ``C``, ``POSIX`` and nothing set → English."""
    for name in LOCALE_ENVS:
        value = environ.get(name, "").strip()
        if value:
            primary = primary_subtag(value.split("@", 1)[0])
            return FALLBACK_LANGUAGE if primary in ("c", "posix") else primary
    return FALLBACK_LANGUAGE


def command_language(site_language: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The language the command line speaks: ``$FEEDSVC_LANGUAGE`` when set, else the
    site's (``site_language``; None when the command has no config of its own), else the
    terminal's."""
    chosen = environ.get(LANGUAGE_ENV, "").strip()
    if chosen:
        return chosen
    if site_language:
        return site_language
    return terminal_language(environ)


def translations(language: str) -> gettext.GNUTranslations:
    """The catalogue for ``language`` (a tag, see :func:`catalogue_language`), falling back
    to English for any id it lacks."""
    return _translations(catalogue_language(language))


@functools.lru_cache(maxsize=len(LANGUAGES))
def _translations(code: str) -> gettext.GNUTranslations:
    found = _read_catalogue(code)
    if code != FALLBACK_LANGUAGE:
        found.add_fallback(_EnglishWhenAsked())
    return found


class _EnglishWhenAsked(gettext.NullTranslations):
    """The English catalogue as a fallback, read only when an id is missing from the
    language's own: a complete catalogue never reads it (each read costs about a
    millisecond, on every command)."""

    def gettext(self, message: str) -> str:
        return _translations(FALLBACK_LANGUAGE).gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return _translations(FALLBACK_LANGUAGE).ngettext(msgid1, msgid2, n)

    def pgettext(self, context: str, message: str) -> str:
        return _translations(FALLBACK_LANGUAGE).pgettext(context, message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return _translations(FALLBACK_LANGUAGE).npgettext(context, msgid1, msgid2, n)


def _read_catalogue(code: str) -> gettext.GNUTranslations:
    """``locales/<code>.mo``, as ``scripts/compile_catalogues.py`` writes it."""
    path = LOCALES / f"{code}.mo"
    try:
        with path.open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    except (OSError, ValueError, LookupError, struct.error) as exc:
        raise ConfigError(
            str(path),
            [f"cannot read the message catalogue: {exc}; run `{COMPILE_COMMAND}`"],
        ) from None


@dataclass(frozen=True, slots=True)
class Texts:
    """The catalogue's messages in one language, for Python code (form errors, notices,
    the command line): ``texts("form.email_invalid", value=typed)``;
    ``texts.plural("digest.new_posts", 3)``."""

    language: str

    def __call__(self, message_id: str, **values: object) -> str:
        return translations(self.language).gettext(message_id) % values

    def plural(self, message_id: str, count: int, **values: object) -> str:
        """The entry ``message_id`` (plural id ``message_id.plural``) in the form the
        language uses for ``count``: ``%(num)d`` is the count, ``%(count)s`` the count
        with its thousands grouped (10,000)."""
        text = translations(self.language).ngettext(message_id, message_id + ".plural", count)
        return text % {"num": count, "count": f"{count:,}", **values}

    def message(self, message: Message | str) -> str:
        """``message`` in this language (a plain string is shown as it is); an id the
        catalogue lacks reads the message's own English."""
        if isinstance(message, str):
            return message
        found = translations(self.language)
        if message.count is None:
            text = found.gettext(message.id)
            missing = text == message.id
        else:
            plural_id = message.id + ".plural"
            text = found.ngettext(message.id, plural_id, message.count)
            missing = text in (message.id, plural_id)
        return message.fill(message.template() if missing else text, self.message)

    @property
    def lang(self) -> str:
        """The ``lang`` attribute of what these texts are in."""
        return page_language(self.language)

    @property
    def code(self) -> str:
        """The catalogue these texts come from: ``ko`` or ``en``."""
        return catalogue_language(self.language)
