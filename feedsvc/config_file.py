"""Finding and reading the config file: its raw mapping and the folder it lives in.

No validation here (that is :mod:`feedsvc.config`, with pydantic), so that this is cheap
to import: a new store's ``feedsvc build`` reads the file before anything else to start
parsing early (:mod:`feedsvc.build.head_start`). The few rules both need are here once: where
the file is looked for, the environment's store URL, and relative paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from feedsvc.errors import ConfigError

CONFIG_ENV = "FEEDSVC_CONFIG"
STORAGE_URL_ENV = "FEEDSVC_STORAGE_URL"
DEFAULT_CONFIG = "config.yaml"


@dataclass(frozen=True)
class ConfigFile:
    raw: dict[str, Any]  # the file's mapping (empty for the embedded defaults)
    base_dir: Path  # relative paths in it are below this folder
    source: str  # the file's path, or "embedded defaults"


def read_config(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """The config at ``path``, ``$FEEDSVC_CONFIG`` or ``./config.yaml``, unvalidated.

    With no path given and no ``./config.yaml``, the embedded defaults are used (an empty
    mapping). A path that was named explicitly and does not exist is an error.
    """
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    config_path = Path(explicit) if explicit is not None else Path(DEFAULT_CONFIG)
    if not config_path.exists():
        if explicit is not None:
            raise ConfigError(
                str(config_path), ["the file does not exist (check --config or $FEEDSVC_CONFIG)"]
            )
        return ConfigFile({}, Path.cwd(), "embedded defaults")
    try:
        text = config_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), [f"cannot read the file: {exc}"]) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(str(config_path), [f"{where}not valid YAML: {exc}"]) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(str(config_path), ["expected a mapping of sections (site:, content:, …)"])
    return ConfigFile(loaded, config_path.resolve().parent, str(config_path))


def with_environment(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with what the environment overrides (``$FEEDSVC_STORAGE_URL``)."""
    data = dict(raw)
    env_url = os.environ.get(STORAGE_URL_ENV)
    if env_url:
        storage = data.get("storage")
        data["storage"] = {**(storage if isinstance(storage, dict) else {}), "url": env_url}
    return data


def resolve_path(base_dir: Path, relative: Path) -> Path:
    """A configured path, absolute (relative ones are below the config's folder)."""
    return relative if relative.is_absolute() else base_dir / relative


def resolve_storage_url(url: str, base_dir: Path) -> str:
    """The store URL; a relative SQLite path is below the config's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        rest = url[len(prefix) :]
        if not rest.startswith(":memory:"):
            return prefix + str((base_dir / rest).resolve())
    return url
