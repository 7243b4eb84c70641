"""The one Jinja2 environment for email and pages (autoescape on for HTML).

Templates are looked up in ``templates.dir`` first (a site's own folder: a file there
replaces the default of the same name, and can ``{% extends %}`` the defaults), then in
the defaults shipped inside the package (``feedsvc/templates``; the repository's top-level
``templates/`` points there). HTML templates (``*.html.j2``, and any name without a
known text suffix) are autoescaped; ``*.txt.j2`` are plain text and are not. Undefined
names are errors, so a typo in a template is reported, not rendered as nothing.

Every text a subscriber reads (pages, form errors, emails, subjects) comes from one message
catalogue keyed by message id: ``feedsvc/locales/<language>.po`` (gettext, read with Babel
at start-up; no compiled files). ``site.language`` picks it by its primary subtag
(``ko-KR`` → ``ko``); a language without a catalogue, and any id a catalogue lacks, reads
English. Templates call ``_("id", name=value)`` and ``ngettext("id", "id.plural", n)``
(``jinja2.ext.i18n``, new style: values are escaped, ``%(num)d`` is the count); Python
code calls :class:`Texts`. ``lang`` is the ``<html lang>`` of what the catalogue gives.
"""

from __future__ import annotations

import functools
import gettext
import io
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jinja2
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from feedsvc.config import Settings
from feedsvc.errors import ConfigError

DEFAULT_TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_SUFFIX = ".j2"
LOCALES = Path(__file__).with_name("locales")
LANGUAGES = ("en", "ko")  # the complete catalogues; every other language reads English
FALLBACK_LANGUAGE = "en"


# --- the message catalogue -------------------------------------------------------------------


def catalogue_language(tag: str) -> str:
    """The catalogue ``tag`` reads: its primary subtag when there is one (``ko-KR`` →
    ``ko``), else English."""
    primary = tag.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else FALLBACK_LANGUAGE


def page_language(tag: str) -> str:
    """The ``<html lang>`` of pages for a site in ``tag``: the tag itself when its catalogue
    exists (``ko-KR``), else the fallback's (a ``fr`` site reads English: ``en``)."""
    if catalogue_language(tag) == tag.replace("_", "-").split("-", 1)[0].lower():
        return tag
    return FALLBACK_LANGUAGE


def translations(language: str) -> gettext.GNUTranslations:
    """The catalogue for ``language`` (a tag, see :func:`catalogue_language`), falling back
    to English for any id it lacks."""
    return _translations(catalogue_language(language))


@functools.lru_cache(maxsize=len(LANGUAGES))
def _translations(code: str) -> gettext.GNUTranslations:
    found = _read_catalogue(code)
    if code != FALLBACK_LANGUAGE:
        found.add_fallback(_read_catalogue(FALLBACK_LANGUAGE))
    return found


def _read_catalogue(code: str) -> gettext.GNUTranslations:
    """``locales/<code>.po`` compiled in memory (Babel): no .mo files to keep in step."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import PoFileError, read_po

    path = LOCALES / f"{code}.po"
    try:
        with path.open("rb") as source:
            catalogue = read_po(source, locale=code, abort_invalid=True)
    except (OSError, PoFileError) as exc:
        raise ConfigError(str(path), [f"cannot read the message catalogue: {exc}"]) from None
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@dataclass(frozen=True, slots=True)
class Texts:
    """The catalogue's messages in one language, for Python code (form errors, notices):
    ``texts("form.email_invalid", value=typed)``; ``texts.plural("digest.new_posts", 3)``."""

    language: str

    def __call__(self, message_id: str, **values: object) -> str:
        return translations(self.language).gettext(message_id) % values

    def plural(self, message_id: str, count: int, **values: object) -> str:
        text = translations(self.language).ngettext(message_id, message_id + ".plural", count)
        return text % {"num": count, **values}

    @property
    def lang(self) -> str:
        """The ``lang`` attribute of what these texts are in."""
        return page_language(self.language)


# --- the environments -------------------------------------------------------------------------


def user_templates_dir(settings: Settings) -> Path | None:
    """The site's own template folder (``templates.dir``), checked; None when unset."""
    if settings.templates.dir is None:
        return None
    folder = settings.path(settings.templates.dir)
    if not folder.is_dir():
        raise ConfigError(
            settings.source,
            [
                f"templates.dir = '{settings.templates.dir}': the folder {folder} does not "
                "exist; create it or remove the key to use the default templates"
            ],
        )
    return folder


def environment(settings: Settings) -> Environment:
    """The environment for this site's templates, in its language (one per folder and
    language, built once)."""
    return _environment(user_templates_dir(settings), settings.site.language)


@functools.lru_cache(maxsize=8)
def _environment(user_dir: Path | None, language: str = FALLBACK_LANGUAGE) -> Environment:
    folders = [str(user_dir)] if user_dir is not None else []
    folders.append(str(DEFAULT_TEMPLATES))
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "html", "htm", "xml"),
            disabled_extensions=("txt.j2", "txt"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    return _with_messages(env, language)


@functools.lru_cache(maxsize=4)
def text_environment(language: str = FALLBACK_LANGUAGE) -> Environment:
    """For one-line templates from the config (``digest.subject``): no escaping; the
    catalogue's ``_`` and ``ngettext`` as in the template files."""
    env = Environment(
        autoescape=False,
        undefined=StrictUndefined,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    return _with_messages(env, language)


def _with_messages(env: Environment, language: str) -> Environment:
    # install_gettext_translations is added by the i18n extension (untyped).
    cast(Any, env).install_gettext_translations(translations(language), newstyle=True)
    env.globals["lang"] = page_language(language)
    return env


def render(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render the template ``name``; any problem is a ConfigError naming file and line."""
    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(name, [f"template {exc.name!r} not found in {_searched(env)}"]) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            exc.filename or name, [f"line {exc.lineno}: {exc.message}; fix the template"]
        ) from None
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        filename, line = _template_frame(exc, template.filename or name)
        raise ConfigError(filename, [f"line {line}: {exc}; fix the template"]) from None


def template_file(env: Environment, name: str) -> str:
    """The file the template ``name`` comes from (the site's folder or the defaults)."""
    try:
        return env.get_template(name).filename or name
    except jinja2.TemplateError:
        return name


def _searched(env: Environment) -> str:
    loader = env.loader
    folders: list[str] = []
    if isinstance(loader, ChoiceLoader):
        for inner in loader.loaders:
            if isinstance(inner, FileSystemLoader):
                folders.extend(str(p) for p in inner.searchpath)
    return ", ".join(folders) or "(no folders)"


def _template_frame(exc: BaseException, fallback: str) -> tuple[str, int | str]:
    """The innermost template file and line of a rendering error (Jinja2 rewrites
    tracebacks so that template frames carry the template's file name and line)."""
    found: tuple[str, int | str] = (fallback, "?")
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(TEMPLATE_SUFFIX):
            found = (frame.filename, frame.lineno if frame.lineno is not None else "?")
    return found
