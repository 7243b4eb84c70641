"""What reading and parsing a source file depends on: a few settings, as a plain value.

The parse pipeline (``front_matter``, ``content``, ``reading``) takes a ``ParseOptions``
rather than the whole validated ``Settings``: it can then run, and be tested, without the
config machinery, and a new store's first build can start parsing before the config is
validated (:mod:`feedsvc.build.head_start`). The defaults here are the config's own
(:mod:`feedsvc.config` uses them).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SITE_URL = "http://127.0.0.1:8080/"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_CONTENT_DIR = "content"
DEFAULT_EXTENSIONS = (".md", ".markdown", ".html", ".txt")
DEFAULT_ENCODING = "utf-8"
DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_PERMALINK = "/{year}/{month}/{day}/{slug}/"
DEFAULT_ASSETS_DIR = "."
DEFAULT_STORAGE_URL = "sqlite:///feedsvc.db"


@dataclass(frozen=True, slots=True)
class ParseOptions:
    site_url: str  # ends in "/"
    timezone: str  # IANA name, for dates written without a zone
    permalink: str  # content.permalink
    encoding: str  # content.encoding
    max_bytes: int  # content.max_bytes
    assets_dir: str  # absolute: where root-relative asset URLs point (enclosure lengths)


PARSE_DEFAULTS = ParseOptions(
    DEFAULT_SITE_URL,
    DEFAULT_TIMEZONE,
    DEFAULT_PERMALINK,
    DEFAULT_ENCODING,
    DEFAULT_MAX_BYTES,
    DEFAULT_ASSETS_DIR,
)
