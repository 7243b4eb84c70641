"""``feedsvc config show``: the effective configuration, every key with its value (secrets
masked) and where the value came from — the config file, an environment variable, the
served address, or the default. The keys are walked from the settings models, as the
configuration reference (docs/configuration.md) lists them.

It reads the config the one way every command does (``read_config`` → ``settings_from_mapping``)
and asks the same file mapping and environment where each key was set: no second reader.
"""

from __future__ import annotations

import json
import os
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import click
import yaml
from pydantic import BaseModel

from feedsvc.cli.words import config_problem, error_line
from feedsvc.config import STORAGE_URL_ENV, ConfigFile, Settings, read_config, settings_from_mapping
from feedsvc.errors import ConfigError
from feedsvc.messages import Texts
from feedsvc.models import Message

if TYPE_CHECKING:
    from feedsvc.cli.main import Context

EXIT_CONFIG = 2

# Keys whose values are secrets: shown as *** when set.
SECRET_KEYS = frozenset({"server.metrics_token"})
# Keys that name an environment variable holding a secret: shown with whether it is set.
SECRET_ENV_SUFFIXES = ("password_env", "token_env", "key_env")
# Where a value came from, when not from the config file (whose path is the source then).
DERIVED_SOURCE = Message.of(
    "config.source.derived",
    "the served address (server.host, server.port; feedsvc run --host/--port)",
)
SITE_URL_SOURCE = Message.of(
    "config.source.site_url", "server.public_url (site.url unset: the daemon is the site)"
)
DEFAULT_SOURCE = Message.of("config.source.default", "default")


def environment_source(name: str) -> Message:
    return Message.of("config.source.environment", "environment variable %(name)s", name=name)


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key, as the settings models define it."""

    name: str  # dotted: delivery.smtp.host
    type: str  # as the reference shows it: "string", "duration", "list of rss, atom, json"
    default: Any  # the model's default (a plain value)
    required: bool = False  # within its section (site.author.name when site.author is given)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model of a section (``AuthorSettings | None`` too), or None for a key."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def config_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[Key]:
    """Every key of ``model``, sections walked, in the order the models declare them."""
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # where the config lives, not a key of it
        key = prefix + (field.alias or name)
        section = _section_model(field.annotation)
        if section is not None:
            yield from config_keys(section, key + ".")
            continue
        default = None if field.is_required() else field.default
        yield Key(key, type_name(field.annotation, key), default, field.is_required())


def type_name(annotation: Any, key: str = "") -> str:
    """A type as the reference names it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        kinds = [type_name(arg) for arg in args if arg is not type(None)]
        nullable = len(kinds) < len(args)
        return " or ".join(kinds) + (" or null" if nullable else "")
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in args)
    if origin is tuple:
        return "list of " + type_name(args[0]).removeprefix("one of ")
    if origin is dict:
        return "mapping"
    if get_origin(annotation) is not None and get_args(annotation):
        # Annotated[timedelta, …]: a duration
        return type_name(args[0])
    names = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        Path: "path",
        timedelta: "duration",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


# --- values as YAML shows them -------------------------------------------------------

_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(value: timedelta) -> str:
    """A duration as config.yaml writes it: 12h, 7d, 30s, 1.5s."""
    seconds = value.total_seconds()
    for unit, size in _DURATION_UNITS:
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def plain(value: Any) -> Any:
    """A setting's value as config.yaml would hold it (durations as 12h, paths as text)."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, tuple | list | frozenset):
        return [plain(item) for item in value]
    return value


def yaml_scalar(value: Any) -> str:
    """``value`` in YAML's flow style, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n").removesuffix("\n...").strip()


# The keys whose default is not a constant: unset, they follow the served address.
DERIVED_DEFAULTS = {
    "server.public_url": "http://<server.host>:<server.port>/",
    "site.url": "server.public_url",
}


def documented_default(key: Key) -> str:
    """The default as the reference shows it: a YAML value, or what an unset key follows."""
    if key.required:
        return "required"
    return DERIVED_DEFAULTS.get(key.name) or yaml_scalar(plain(key.default))


# --- the effective configuration ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    key: str
    value: Any  # plain, secrets masked
    source: Message | str  # the config file's path, or a Message (English: str())


def _lookup(raw: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _value_of(settings: Settings, dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        if node is None:
            return None  # an optional section left out (site.author)
        node = getattr(node, "from_" if part == "from" else part)
    return node


_URL_PASSWORD = re.compile(r"^([a-z0-9+]+://[^:/@]*):[^@]*@", re.IGNORECASE)


def mask(key: str, value: Any) -> Any:
    """``value`` with secrets hidden: tokens as ***, a password in a URL as ***."""
    if key in SECRET_KEYS:
        return None if value is None else "***"
    if isinstance(value, str) and "://" in value:
        return _URL_PASSWORD.sub(r"\1:***@", value)
    if key.endswith(SECRET_ENV_SUFFIXES) and isinstance(value, str):
        state = "set" if os.environ.get(value) else "not set"
        return f"{value} ({state})"
    return value


def effective(settings: Settings, config: ConfigFile) -> list[Shown]:
    """Every key with its effective value (masked) and where it came from."""
    shown: list[Shown] = []
    for key in config_keys():
        value = mask(key.name, plain(_value_of(settings, key.name)))
        given, _ = _lookup(config.raw, key.name)
        source: Message | str
        if key.name == "storage.url" and os.environ.get(STORAGE_URL_ENV):
            source = environment_source(STORAGE_URL_ENV)
        elif key.name == "site.url" and "site.url" in settings.derived:
            source = SITE_URL_SOURCE
        elif key.name in settings.derived:
            source = DERIVED_SOURCE
        elif given:
            source = config.source
        else:
            source = DEFAULT_SOURCE
        token_env = settings.server.metrics_token_env
        if key.name == "server.metrics_token" and os.environ.get(token_env):
            value, source = "***", environment_source(token_env)
        shown.append(Shown(key.name, value, source))
    return shown


def as_yaml(rows: list[Shown], texts: Texts) -> str:
    """YAML a config file could hold, each value followed by its source as a comment (in
    ``texts``' language)."""
    lines: list[str] = []
    opened: list[str] = []
    for row in rows:
        *sections, leaf = row.key.split(".")
        common = 0
        while common < min(len(opened), len(sections)) and opened[common] == sections[common]:
            common += 1
        opened = opened[:common]
        for depth in range(common, len(sections)):
            lines.append("  " * depth + sections[depth] + ":")
            opened.append(sections[depth])
        text = f"{'  ' * len(sections)}{leaf}: {yaml_scalar(row.value)}"
        lines.append(f"{text}  # {texts.message(row.source)}")
    return "\n".join(lines) + "\n"


def as_json(rows: list[Shown]) -> str:
    """``{"site.title": {"value": …, "source": …}, …}``: for scripts, the sources in English."""
    data = {row.key: {"value": row.value, "source": str(row.source)} for row in rows}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# --- the command ---------------------------------------------------------------------


@click.group(name="config")
def config() -> None:
    """Show the configuration."""


@config.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML with each value's source as a comment, or JSON.",
)
@click.pass_obj
def show(obj: Context, output_format: str) -> None:
    """Print every key's effective value (secrets masked) and where it came from: the
    config file, an environment variable, the served address, or the default."""
    try:
        file = read_config(obj.config_path)
        settings = settings_from_mapping(file.raw, base_dir=file.base_dir, source=file.source)
    except ConfigError as exc:
        texts = obj.texts()
        click.echo(error_line(texts, config_problem(texts, exc)), err=True)
        raise SystemExit(EXIT_CONFIG) from None
    rows = effective(settings, file)
    shown = as_json(rows) if output_format == "json" else as_yaml(rows, obj.texts())
    click.echo(shown, nl=False)
