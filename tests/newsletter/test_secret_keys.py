"""The signing keys: shared by every daemon on one PostgreSQL, rotated without breaking
the links already mailed (`feedsvc secret rotate`), a SQLite store's file as before."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli.main import main
from feedsvc.config import Settings
from feedsvc.errors import TokenError
from feedsvc.newsletter.tokens import (
    SECRET_ENV,
    Purpose,
    Tokens,
    load_secrets,
    secret_path,
    tokens_for,
)
from tests.digest_helpers import SECRET, digest_settings

# An older feedsvc's secret file: one key, one line.
OLD_KEY = "옛-비밀-키-0123456789abcdef-fedcba"
OLD_FILE_KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


@pytest.fixture
def pg_url(store_url: str) -> Iterator[str]:
    """A private, empty schema in the test PostgreSQL (skipped without one)."""
    yield store_url


def _instance(folder: Path, url: str) -> tuple[Settings, Path]:
    """One deployment: its own config folder (and config.yaml) on the store at ``url``."""
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text(f'storage:\n  url: "{url}"\n', encoding="utf-8")
    return digest_settings(folder, storage={"url": url}), config


def _rotate(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "secret", "rotate", *args])
    assert result.exit_code == 0, result.output
    return result.output


# --- PostgreSQL: one set of keys per database -----------------------------------------------


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_link_minted_by_one_instance_verifies_on_another_on_the_same_database(
    pg_url: str, tmp_path: Path
) -> None:
    """Two daemons with different config folders on one PostgreSQL schema share the keys:
    a confirm link from 가 works on 나, and no secret file is written in either folder."""
    first, _ = _instance(tmp_path / "가", pg_url)
    second, _ = _instance(tmp_path / "나", pg_url)
    token = tokens_for(first).make(Purpose.CONFIRM, 42, "민지@example.kr")
    subject = tokens_for(second).read(Purpose.CONFIRM, token)
    assert subject.subscriber_id == 42 and Tokens.is_for(subject, "민지@example.kr")
    assert not secret_path(first).exists() and not secret_path(second).exists()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_instances_starting_together_agree_on_the_first_key(pg_url: str, tmp_path: Path) -> None:
    """The first key is written once (INSERT … ON CONFLICT DO NOTHING, then read back):
    eight instances asking at the same moment on an empty table all get the same key."""
    instances = [_instance(tmp_path / f"인스턴스{n}", pg_url)[0] for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda s: load_secrets(s, {}), instances))
    assert len(set(found)) == 1 and len(found[0]) == 1


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_rotating_on_postgresql_keeps_old_links_and_signs_new_ones_with_the_new_key(
    pg_url: str, tmp_path: Path
) -> None:
    first, config = _instance(tmp_path / "가", pg_url)
    second, _ = _instance(tmp_path / "나", pg_url)
    before = tokens_for(first)
    old_link = before.make(Purpose.UNSUBSCRIBE, 7, "지수@example.kr")

    output = _rotate(config)
    assert "1 older key still verifies" in output and "restart" in output

    after = tokens_for(second)  # the other instance, restarted
    assert after.read(Purpose.UNSUBSCRIBE, old_link).subscriber_id == 7
    new_link = after.make(Purpose.UNSUBSCRIBE, 7, "지수@example.kr")
    assert new_link != old_link
    with pytest.raises(TokenError):  # signed with the new key, which the old list lacks
        before.read(Purpose.UNSUBSCRIBE, new_link)
    assert tokens_for(first).read(Purpose.UNSUBSCRIBE, new_link).subscriber_id == 7

    output = _rotate(config, "--keep", "1")
    assert "retired 2 keys" in output
    newest = tokens_for(second)
    assert len(load_secrets(second, {})) == 1
    for gone in (old_link, new_link):
        with pytest.raises(TokenError):
            newest.read(Purpose.UNSUBSCRIBE, gone)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_an_older_feedsvcs_secret_file_becomes_the_first_key_in_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    """Links mailed before the keys moved into the database keep working."""
    settings, _ = _instance(tmp_path / "가", pg_url)
    legacy = secret_path(settings)
    legacy.parent.mkdir()
    legacy.write_text(OLD_FILE_KEY + "\n", encoding="ascii")
    old_link = Tokens(OLD_FILE_KEY).make(Purpose.PREFERENCES, 3, "a@example.kr")
    assert load_secrets(settings, {}) == (OLD_FILE_KEY.encode(),)
    assert tokens_for(settings).read(Purpose.PREFERENCES, old_link).subscriber_id == 3


# --- SQLite: the file beside the database ---------------------------------------------------


def test_rotating_a_sqlite_store_adds_a_line_to_todays_single_key_file(tmp_path: Path) -> None:
    """Today's one-key file still reads; rotating appends the new key (newest last), the
    old link still verifies, new links are signed with the new key; the file stays 0600."""
    settings, config = _instance(tmp_path / "사이트", "sqlite:///상태.db")
    path = secret_path(settings)
    assert path == tmp_path / "사이트" / "상태.db.secret"
    path.write_text(OLD_FILE_KEY + "\n", encoding="ascii")
    old_link = tokens_for(settings).make(Purpose.CONFIRM, 5, "민지@example.kr")
    assert Tokens(OLD_FILE_KEY).read(Purpose.CONFIRM, old_link).subscriber_id == 5

    _rotate(config)
    lines = path.read_text(encoding="ascii").splitlines()
    assert len(lines) == 2 and lines[0] == OLD_FILE_KEY and len(lines[1]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rotated = tokens_for(settings)
    assert rotated.read(Purpose.CONFIRM, old_link).subscriber_id == 5
    new_link = rotated.make(Purpose.CONFIRM, 5, "민지@example.kr")
    assert Tokens(lines[1]).read(Purpose.CONFIRM, new_link).subscriber_id == 5
    with pytest.raises(TokenError):
        Tokens(OLD_FILE_KEY).read(Purpose.CONFIRM, new_link)

    _rotate(config)
    _rotate(config, "--keep", "2")
    assert path.read_text(encoding="ascii").splitlines()[0] != OLD_FILE_KEY
    with pytest.raises(TokenError):
        tokens_for(settings).read(Purpose.CONFIRM, old_link)


def test_secret_list_shows_fingerprints_never_keys(tmp_path: Path) -> None:
    settings, config = _instance(tmp_path / "사이트", "sqlite:///상태.db")
    secret_path(settings).write_text(OLD_FILE_KEY + "\n", encoding="ascii")
    _rotate(config)
    result = CliRunner().invoke(main, ["--config", str(config), "secret", "list"])
    assert result.exit_code == 0, result.output
    assert "2 keys in" in result.output and "signs and verifies" in result.output
    assert OLD_FILE_KEY not in result.output


def test_a_bad_line_in_the_secret_file_names_the_file_and_line(tmp_path: Path) -> None:
    settings, _ = _instance(tmp_path / "사이트", "sqlite:///상태.db")
    secret_path(settings).write_text(OLD_FILE_KEY + "\nshort\n", encoding="ascii")
    with pytest.raises(Exception, match=r"상태\.db\.secret:2"):
        load_secrets(settings, {})


# --- FEEDSVC_SECRET_KEY ---------------------------------------------------------------------


def test_the_environment_may_hold_several_keys_newest_last(tmp_path: Path) -> None:
    settings = digest_settings(tmp_path)
    keys = load_secrets(settings, {SECRET_ENV: f" {OLD_KEY},\n {SECRET} "})
    assert keys == (OLD_KEY.encode(), SECRET.encode())
    old_link = Tokens(OLD_KEY).make(Purpose.UNSUBSCRIBE, 1, "a@example.kr")
    both = Tokens(keys)
    assert both.read(Purpose.UNSUBSCRIBE, old_link).subscriber_id == 1
    assert both.make(Purpose.UNSUBSCRIBE, 1, "a@example.kr") == Tokens(SECRET).make(
        Purpose.UNSUBSCRIBE, 1, "a@example.kr"
    )


def test_a_short_key_among_several_in_the_environment_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"key 2 of 2 in FEEDSVC_SECRET_KEY is 5 characters"):
        load_secrets(digest_settings(tmp_path), {SECRET_ENV: f"{SECRET},short"})


def test_rotate_refuses_when_the_keys_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = _instance(tmp_path / "사이트", "sqlite:///상태.db")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    result = CliRunner().invoke(main, ["--config", str(config), "secret", "rotate"])
    assert result.exit_code == 2
    assert "FEEDSVC_SECRET_KEY is set" in result.output and "at its end" in result.output
    assert not (tmp_path / "사이트" / "상태.db.secret").exists()
