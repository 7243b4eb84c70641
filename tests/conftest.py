"""Shared fixtures: settings for a site in tmp_path, stores on SQLite and PostgreSQL, a
built site's web app; and where the tests (TESTS_DIR) and the repository (REPO) are, for
the test modules in every folder below."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text

from feedsvc.config import Settings, settings_from_mapping
from feedsvc.messages import LANGUAGE_ENV
from feedsvc.storage import Store, open_store
from feedsvc.storage.engine import normalise_url
from tests.corpus import write_posts

if TYPE_CHECKING:
    from tests.web_helpers import WebSite

PG_ENV = "FEEDSVC_TEST_DATABASE_URL"
# Debian's Chromium for the browser tests, with the flags this closed network needs.
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TESTS_DIR = Path(__file__).resolve().parent  # tests/: golden files, data, shared helpers
REPO = TESTS_DIR.parent


@pytest.fixture(autouse=True)
def command_line_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line speaks the site's language, and most test sites are Korean: the
    tests read its output in English ($FEEDSVC_LANGUAGE, which subprocesses inherit).
    Tests of the languages themselves set or remove it (tests/cli/test_languages.py)."""
    monkeypatch.setenv(LANGUAGE_ENV, "en")


def run_feedsvc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m feedsvc ARGS`` in a fresh interpreter (the console script's path)."""
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def make_settings(base: Path, **sections: Any) -> Settings:
    """Settings for a site rooted at ``base`` (content/, public/, a SQLite store there)."""
    raw: dict[str, Any] = {
        "site": {
            "title": "테스트 사이트",
            "url": "https://news.example.kr/",
            "timezone": "Asia/Seoul",
            "language": "ko",
            "author": {"name": "편집팀", "email": "editor@example.kr"},
        },
        "storage": {"url": f"sqlite:///{base / 'state.db'}"},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return settings_from_mapping(raw, base_dir=base)


@pytest.fixture
def site_settings(tmp_path: Path) -> Settings:
    (tmp_path / "content").mkdir()
    return make_settings(tmp_path)


def _pg_schema_url(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL: a SQLite file, or a private schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright; skipped, saying why, when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (test extra)"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files (tests/golden/) from the current output, then compare",
    )


def corpus_front_matters(folder: Path, fence: str, posts: int = 400) -> list[str]:
    """The front matters fenced by ``fence`` ("---" or "+++") in a corpus of ``posts``
    written to ``folder`` by the benchmark corpus generator (tests/corpus.py)."""
    found = []
    for path in sorted(write_posts(folder, posts)):
        text = path.read_text(encoding="utf-8")
        if text.startswith(fence + "\n"):
            found.append(text[4 : text.index(f"\n{fence}\n", 4) + 1])
    return found


@pytest.fixture
def web(tmp_path: Path, store_url: str) -> Iterator[WebSite]:
    """A built Korean site and its web app on the store under test (SQLite, and PostgreSQL
    where FEEDSVC_TEST_DATABASE_URL is set): the web tests' site, and the categories tests'."""
    from tests.web_helpers import make_site  # here, not at the top: web_helpers imports us

    site = make_site(tmp_path, store_url, feed_check_every=0.0)
    try:
        yield site
    finally:
        site.store.close()
