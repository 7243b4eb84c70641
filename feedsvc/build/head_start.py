"""A first build's parse, started before the rest of feedsvc is even imported.

On a new store nothing is cached, so every file will be parsed whatever the store says.
``feedsvc build`` reads the config file (not yet validated: that takes pydantic, about a
tenth of a second), scans the folder and forks the parse workers before anything else
(:func:`start_early`, called by :mod:`feedsvc.cli.entry`). While they work, the main process
imports the CLI, validates the config, imports SQLAlchemy, opens the store and loads the
renderers.

Once the settings are validated, the build takes the parse over only if it was started
with exactly the options the settings give (:func:`take`); otherwise the workers are
stopped and the build starts again from the settings (:func:`head_start`). The store
may also turn out not to be new after all: the builder then drops the parse as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from feedsvc.build.parallel import Batches, chunk_bounds, default_workers
from feedsvc.config_file import read_config, resolve_path, resolve_storage_url, with_environment
from feedsvc.content.reading import Outcome, parse_batch
from feedsvc.content.sources import Scan, SourceFile, sorted_scan, walk_content
from feedsvc.models import Problem
from feedsvc.parse_options import (
    DEFAULT_ASSETS_DIR,
    DEFAULT_CONTENT_DIR,
    DEFAULT_ENCODING,
    DEFAULT_EXTENSIONS,
    DEFAULT_MAX_BYTES,
    DEFAULT_PERMALINK,
    DEFAULT_SITE_URL,
    DEFAULT_STORAGE_URL,
    DEFAULT_TIMEZONE,
    ParseOptions,
)

if TYPE_CHECKING:
    from feedsvc.config import Settings

# Below this many files, worker processes cost more than they save (a parse is ~0.1 ms,
# forking the pool ~20 ms).
PARSE_THRESHOLD = 400
# The scan sends the workers this many files at a time until each has had some: they
# parse (~0.1 ms a file) while it goes on (~5 µs a file).
FIRST_CHUNK = 400


@dataclass(frozen=True)
class Plan:
    """Everything a new store's parse depends on."""

    content_dir: Path
    extensions: tuple[str, ...]
    storage_url: str
    options: ParseOptions


@dataclass
class HeadStart:
    plan: Plan
    scan: Scan
    parsing: Batches[ParseOptions, tuple[SourceFile, str | None], Outcome]

    def drop(self) -> None:
        """Stop the workers: the store knew more than its file's absence said."""
        self.parsing.stop()


_early: HeadStart | None = None  # started by start_early, taken by take


def parse_batches(
    options: ParseOptions, to_read: list[tuple[SourceFile, str | None]], workers: int, share: float
) -> Batches[ParseOptions, tuple[SourceFile, str | None], Outcome]:
    """Parse ``to_read`` in worker processes, the main process taking ``share`` of a fair
    part (it also decodes every worker's results)."""
    return Batches(
        parse_batch,
        options,
        to_read,
        workers=workers,
        threshold=PARSE_THRESHOLD,
        main_share=share / workers,
    )


def new_store(url: str) -> bool:
    """True for a SQLite store whose file does not exist yet (nothing can be cached)."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return False
    return not os.path.exists(url.removeprefix("sqlite:///"))


def plan_of(settings: Settings) -> Plan:
    content = settings.content
    return Plan(
        settings.content_dir, content.extensions, settings.storage_url, settings.parse_options
    )


def _start(plan: Plan) -> HeadStart | None:
    """Scan and parse at once when the store is new and the site big enough.

    One core is the main process's: it imports the rest and opens the store, then
    settles and writes each chunk of results as it comes, and parses chunks itself when
    none is ready (``Batches.chunks_ready``). The other cores parse. The workers are
    forked before the scan, which feeds them its first files while it goes on.
    """
    if not new_store(plan.storage_url):
        return None
    processes = max(1, default_workers() - 1)
    parsing = Batches.fed(parse_batch, plan.options, processes)
    files: list[SourceFile] = []
    problems: list[Problem] = []
    sent = 0
    walk = walk_content(plan.content_dir, plan.extensions, plan.options.max_bytes, problems)
    for file in walk:
        files.append(file)
        if len(files) - sent == FIRST_CHUNK and sent < FIRST_CHUNK * (processes + 1):
            parsing.add([(f, None) for f in files[sent:]])
            sent = len(files)
    if len(files) < PARSE_THRESHOLD:
        parsing.stop()
        return None
    rest = files[sent:]
    for start, end in chunk_bounds(len(rest), processes + 1):
        parsing.add([(f, None) for f in rest[start:end]])
    return HeadStart(plan, sorted_scan(files, problems), parsing)


def head_start(settings: Settings) -> HeadStart | None:
    """A new store's parse, started now from the validated settings."""
    return _start(plan_of(settings))


def start_early(config_path: str | None) -> None:
    """Start a new store's parse from the config file as it is written, unvalidated.

    Quietly does nothing when anything is unusual: the validated settings decide later
    (:func:`take`), and report every error.
    """
    global _early
    try:
        plan = _early_plan(config_path)
        _early = _start(plan) if plan is not None else None
    except Exception:
        _early = None


def take(settings: Settings) -> HeadStart | None:
    """The early parse if it was started with exactly these settings' options; else the
    workers are stopped and None is returned."""
    early = _pop_early()
    if early is not None and early.plan != plan_of(settings):
        early.drop()
        return None
    return early


def drop_early() -> None:
    """Stop an early parse (the config turned out to be invalid)."""
    early = _pop_early()
    if early is not None:
        early.drop()


def _pop_early() -> HeadStart | None:
    global _early
    early, _early = _early, None
    return early


def _early_plan(config_path: str | None) -> Plan | None:
    """What the validated settings will say, read from the raw config, where it is plain;
    None where it is not (the validation decides then)."""
    config = read_config(config_path)
    raw = with_environment(config.raw)
    site, content, storage = (_section(raw, name) for name in ("site", "content", "storage"))
    if site is None or content is None or storage is None:
        return None
    url = site.get("url", DEFAULT_SITE_URL)
    timezone = site.get("timezone", DEFAULT_TIMEZONE)
    folder = content.get("dir", DEFAULT_CONTENT_DIR)
    extensions = content.get("extensions", DEFAULT_EXTENSIONS)
    encoding = content.get("encoding", DEFAULT_ENCODING)
    max_bytes = content.get("max_bytes", DEFAULT_MAX_BYTES)
    permalink = content.get("permalink", DEFAULT_PERMALINK)
    assets = content.get("assets_dir", DEFAULT_ASSETS_DIR)
    store = storage.get("url", DEFAULT_STORAGE_URL)
    texts = (url, timezone, folder, encoding, permalink, assets, store)
    if not all(isinstance(value, str) for value in texts) or type(max_bytes) is not int:
        return None
    if not isinstance(extensions, list | tuple) or not all(isinstance(e, str) for e in extensions):
        return None
    ZoneInfo(timezone)  # raises for an unknown zone
    base = config.base_dir
    options = ParseOptions(
        url if url.endswith("/") else url + "/",
        timezone,
        permalink,
        encoding,
        max_bytes,
        str(resolve_path(base, Path(assets))),
    )
    return Plan(
        resolve_path(base, Path(folder)),
        tuple(e.lower() for e in extensions),
        resolve_storage_url(store, base),
        options,
    )


def _section(raw: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = raw.get(name)
    if value is None:
        return {}
    return value if isinstance(value, dict) else None
