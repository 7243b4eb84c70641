"""A new store's parse started from the raw config file, before the CLI and pydantic load.

The early plan must be exactly what the validated settings give wherever the config is
plain; where they differ the parse is dropped, so that only speed, never a result, can
depend on it. End to end through `python -m feedsvc build` in a fresh process.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedsvc.build import head_start
from feedsvc.config import load_settings
from tests.conftest import REPO, run_feedsvc


def _write_config(folder: Path, raw: dict[str, Any], *, as_json: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    text = (
        json.dumps(raw, ensure_ascii=False) if as_json else yaml.safe_dump(raw, allow_unicode=True)
    )
    path.write_text(text, encoding="utf-8")
    return path


def _posts(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        day = i % 28 + 1
        (folder / f"2024-03-{day:02d}-소식-{i}.md").write_text(
            f"---\ntitle: 부산 소식 {i}\ncategories: [행정]\n---\n\n본문 {i}입니다.\n",
            encoding="utf-8",
        )


CONFIGS: list[dict[str, Any]] = [
    {},  # every default
    {"site": {"url": "https://news.example.kr", "timezone": "Asia/Seoul"}},  # no final /
    {
        "site": {"url": "https://news.example.kr/부산/", "timezone": "Asia/Seoul"},
        "content": {
            "dir": "글",
            "extensions": [".MD", ".txt"],
            "encoding": "euc-kr",
            "max_bytes": 1000,
            "permalink": "/{category}/{slug}.html",
            "assets_dir": "정적",
        },
        "storage": {"url": "sqlite:///상태/store.db"},
        "feeds": {"per_tag": True},
    },
]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("raw", CONFIGS)
def test_the_early_plan_is_the_validated_settings_plan(
    tmp_path: Path, raw: dict[str, Any], as_json: bool
) -> None:
    config = _write_config(tmp_path / "사이트", raw, as_json=as_json)
    early = head_start._early_plan(str(config))
    assert early == head_start.plan_of(load_settings(config))


def test_the_early_plan_follows_the_environment_and_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here: the embedded defaults
    monkeypatch.setenv("FEEDSVC_STORAGE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert head_start._early_plan(None) == head_start.plan_of(load_settings(None))
    config = _write_config(tmp_path / "named", {"content": {"dir": "posts"}})
    monkeypatch.setenv("FEEDSVC_CONFIG", str(config))
    early = head_start._early_plan(None)
    assert early is not None and early.content_dir == config.parent / "posts"
    assert early == head_start.plan_of(load_settings(None))


@pytest.mark.parametrize(
    "raw",
    [
        {"content": {"max_bytes": "big"}},
        {"content": {"extensions": ".md"}},
        {"site": "부산"},
        {"site": {"timezone": "Mars/Olympus"}},
    ],
)
def test_an_unusual_config_starts_nothing_early(tmp_path: Path, raw: dict[str, Any]) -> None:
    _posts(tmp_path / "content", 3)
    config = _write_config(tmp_path, raw)
    head_start.start_early(str(config))
    assert head_start._early is None


def test_an_early_parse_with_other_options_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(head_start, "PARSE_THRESHOLD", 2)
    _posts(tmp_path / "content", 5)
    config = _write_config(tmp_path, {"site": {"url": "https://a.example.kr/"}})
    head_start.start_early(str(config))
    early = head_start._early
    assert early is not None and early.parsing.pool is not None
    # As if the validated settings said something else (an override, a normalisation).
    other = _write_config(tmp_path / "other", {"site": {"url": "https://b.example.kr/"}})
    assert head_start.take(load_settings(other)) is None
    assert head_start._early is None
    with pytest.raises(RuntimeError):  # the workers were stopped
        early.parsing.pool.submit(abs, -1)


def test_feedsvc_build_parses_early_and_publishes_the_same_feeds(tmp_path: Path) -> None:
    feeds = []
    for early in (True, False):
        site = tmp_path / f"early-{early}"
        _posts(site / "content", head_start.PARSE_THRESHOLD + 20)
        shutil.copy(REPO / "content" / "2024-03-15-부산-스마트시티-박람회.md", site / "content")
        config = _write_config(site, {"site": {"url": "https://news.example.kr/"}})
        # `-v` before the command, or `--config=` in one word, keep the early start; an
        # extra option after `build` is not the plain command, so it starts nothing early.
        args = ["-v", f"--config={config}"] if early else ["--config", str(config)]
        done = run_feedsvc(*args, "build", *([] if early else ["--help"]), cwd=site)
        assert done.returncode == 0, done.stderr
        if not early:
            done = run_feedsvc(*args, "build", cwd=site)  # (after --help did nothing)
            assert done.returncode == 0, done.stderr
        assert ("parsing began before the config was checked" in done.stderr) == early
        assert "0 errors" in done.stdout
        feeds.append([(site / "public" / name).read_bytes() for name in ("feed.xml", "feed.json")])
    assert feeds[0] == feeds[1]


def test_an_invalid_config_still_exits_2_at_once(tmp_path: Path) -> None:
    _posts(tmp_path / "content", head_start.PARSE_THRESHOLD + 20)
    config = _write_config(
        tmp_path, {"site": {"url": "https://x.example.kr/"}, "feeds": {"limt": 5}}
    )
    started = time.monotonic()
    done = run_feedsvc("--config", str(config), "build", cwd=tmp_path)
    assert done.returncode == 2
    assert "feeds.limt: unknown key" in done.stderr
    assert not (tmp_path / "feedsvc.db").exists()
    assert time.monotonic() - started < 60
