"""The configuration reference (docs/configuration.md) lists every settings key with its
type and default, and `feedsvc config show` prints every key's effective value, masked
where secret, with where it came from."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.cli.config_show import config_keys, documented_default, format_duration
from feedsvc.cli.main import main
from feedsvc.config import _parse_duration
from tests.conftest import REPO

REFERENCE = REPO / "docs" / "configuration.md"
_ROW = re.compile(r"^\| `([a-z_.]+)` \| ([^|]+) \| ((?:[^|\\]|\\\|)+) \|", re.MULTILINE)


def documented() -> dict[str, tuple[str, str]]:
    """key → (type, default) as the reference's tables show them."""
    rows: dict[str, tuple[str, str]] = {}
    for key, kind, default in _ROW.findall(REFERENCE.read_text(encoding="utf-8")):
        assert key not in rows, f"{key} is listed twice in {REFERENCE.name}"
        shown = default.strip().removeprefix("unset: ").strip("`").replace("\\|", "|")
        rows[key] = (kind.strip(), shown)
    return rows


def test_every_settings_key_is_in_the_reference_and_nothing_else() -> None:
    keys = {key.name for key in config_keys()}
    listed = set(documented())
    assert keys - listed == set(), f"add these keys to {REFERENCE}"
    assert listed - keys == set(), f"{REFERENCE} lists keys that do not exist"
    assert len(keys) > 60


def test_the_reference_shows_each_key_s_type_and_default() -> None:
    rows = documented()
    for key in config_keys():
        assert rows[key.name] == (key.type, documented_default(key)), key.name


@given(st.integers(min_value=1, max_value=10**8))
def test_a_duration_shown_reads_back_as_the_same_duration(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert _parse_duration(format_duration(value)) == value


def write_config(folder: Path, text: str) -> Path:
    path = folder / "설정.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_show_says_where_each_value_came_from_and_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path,
        "site:\n  title: 부산 시정 소식\nserver:\n  port: 8765\n"
        "  metrics_token: 0123456789abcdef0123\n",
    )
    monkeypatch.setenv("FEEDSVC_STORAGE_URL", "postgresql://뉴스:비밀번호@db.example.kr/news")
    monkeypatch.delenv("FEEDSVC_METRICS_TOKEN", raising=False)
    monkeypatch.setenv("FEEDSVC_SMTP_PASSWORD", "smtp-비밀")
    result = CliRunner().invoke(main, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"  title: 부산 시정 소식  # {path}" in out
    assert "  language: en  # default" in out
    assert "  url: postgresql://뉴스:***@db.example.kr/news  # environment variable " in out
    assert "  metrics_token: '***'" in out
    assert "0123456789abcdef0123" not in out and "비밀번호" not in out and "smtp-비밀" not in out
    assert "  password_env: FEEDSVC_SMTP_PASSWORD (set)  # default" in out
    assert "  public_url: http://127.0.0.1:8765/  # the served address" in out
    assert "  max_lateness: 12h  # default" in out


def test_config_show_as_json_lists_every_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "site:\n  url: https://blog.example.kr/\n")
    result = CliRunner().invoke(main, ["--config", str(path), "config", "show", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert list(shown) == [key.name for key in config_keys()]
    assert shown["site.url"] == {"value": "https://blog.example.kr/", "source": str(path)}
    assert shown["digest.from"]["value"] == "feedsvc <feedsvc@localhost>"
    assert shown["server.public_url"]["source"].startswith("the served address")


def test_config_show_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "feeds:\n  limit: 많이\n")
    result = CliRunner().invoke(main, ["--config", str(path), "config", "show"])
    assert result.exit_code == 2
    assert "feeds.limit = '많이'" in result.output
