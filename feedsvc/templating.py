"""The one Jinja2 environment for email and pages (autoescape on for HTML).

Templates are looked up in ``templates.dir`` first (a site's own folder: a file there
replaces the default of the same name, and can ``{% extends %}`` the defaults), then in
the defaults shipped inside the package (``feedsvc/templates``; the repository's top-level
``templates/`` points there). HTML templates (``*.html.j2``, and any name without a
known text suffix) are autoescaped; ``*.txt.j2`` are plain text and are not. Undefined
names are errors, so a typo in a template is reported, not rendered as nothing.

Every text a subscriber reads (pages, form errors, emails, subjects) comes from the one
message catalogue (:mod:`feedsvc.messages`) in the site's language. Templates call
``_("id", name=value)`` and ``ngettext("id", "id.plural", n)`` (``jinja2.ext.i18n``, new
style: values are escaped, ``%(num)d`` is the count); Python code calls
:class:`feedsvc.messages.Texts`. ``lang`` is the ``<html lang>`` of what the catalogue gives.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Mapping
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
from feedsvc.messages import FALLBACK_LANGUAGE, page_language, translations

DEFAULT_TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_SUFFIX = ".j2"


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
