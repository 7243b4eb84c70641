"""The command line: exit statuses, messages, init, status (click runner and a subprocess)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc import __version__
from feedsvc.build.parse import PARSE_THRESHOLD
from feedsvc.cli.main import main
from tests.conftest import REPO, run_feedsvc


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _site(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "content", tmp_path / "content")
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path / "config.yaml"


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_build_publishes_the_sample_site(runner: CliRunner, tmp_path: Path) -> None:
    config = _site(tmp_path)
    result = runner.invoke(main, ["--config", str(config), "build"])
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output
    assert (tmp_path / "public" / "feed.xml").exists()
    assert (tmp_path / "feedsvc.db").exists()


def test_build_with_a_broken_file_publishes_the_rest_and_exits_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = _site(tmp_path)
    (tmp_path / "content" / "깨진-글.md").write_text("---\ntitle: [x\n---\n", encoding="utf-8")
    result = runner.invoke(main, ["--config", str(config), "build"])
    assert result.exit_code == 1
    assert "깨진-글.md:" in result.output
    assert "every other post was published" in result.output
    assert "부산시" in (tmp_path / "public" / "feed.xml").read_text(encoding="utf-8")


def test_check_lists_problems_and_exits_nonzero(runner: CliRunner, tmp_path: Path) -> None:
    config = _site(tmp_path)
    (tmp_path / "content" / "bad.md").write_bytes(b"---\ntitle: a\n---\n\x00\x01")
    result = runner.invoke(main, ["--config", str(config), "check"])
    assert result.exit_code == 1
    assert "bad.md" in result.output
    assert not (tmp_path / "public").exists()


def test_check_passes_on_the_sample_site(runner: CliRunner, tmp_path: Path) -> None:
    config = _site(tmp_path)
    result = runner.invoke(main, ["--config", str(config), "check"])
    assert result.exit_code == 0, result.output


def test_bad_config_exits_2_naming_the_key(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("feeds:\n  limit: many\n", encoding="utf-8")
    result = runner.invoke(main, ["--config", str(config), "build"])
    assert result.exit_code == 2
    assert "feeds.limit = 'many'" in result.output


def test_unreachable_store_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  url: postgresql://x@127.0.0.1:1/none\n", encoding="utf-8")
    result = runner.invoke(main, ["--config", str(config), "build"])
    assert result.exit_code == 3
    assert "cannot open the store" in result.output


def test_status_shows_last_build_and_problems(runner: CliRunner, tmp_path: Path) -> None:
    config = _site(tmp_path)
    (tmp_path / "content" / "bad.md").write_text("---\ntitle: [x\n---\n", encoding="utf-8")
    before = runner.invoke(main, ["--config", str(config), "status"])
    assert "last build: never" in before.output
    assert "subscribers: none" in before.output
    runner.invoke(main, ["--config", str(config), "subscribers", "add", "민지@example.com"])
    runner.invoke(main, ["--config", str(config), "build"])
    result = runner.invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 0
    assert "last build:" in result.output
    assert "1 error," in result.output and "1 errors" not in result.output
    assert "bad.md" in result.output
    assert "subscribers: 1 active" in result.output


def test_init_writes_a_site_that_builds(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "새 사이트"
    result = runner.invoke(main, ["init", str(target)])
    assert result.exit_code == 0
    assert (target / "config.yaml").exists()
    again = runner.invoke(main, ["init", str(target)])
    assert "kept" in again.output
    built = runner.invoke(main, ["--config", str(target / "config.yaml"), "build"])
    assert built.exit_code == 0, built.output
    assert (target / "public" / "feed.xml").exists()


def test_python_m_feedsvc_runs_in_a_fresh_process(tmp_path: Path) -> None:
    config = _site(tmp_path)
    done = run_feedsvc("--config", str(config), "build")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "public" / "atom.xml").exists()


# Runs the console script's entry in a fresh interpreter and says, as it exits, whether the
# cyclic garbage collector was on for the command (and so whether it skipped the teardown).
_GC_PROBE = """
import atexit, gc, os, sys
def report():
    print("collector on:", gc.isenabled(), flush=True)
atexit.register(report)
real_exit = os._exit
def quick_exit(code):  # build and check skip atexit (feedsvc.cli.entry._exit_now)
    report()
    real_exit(code)
os._exit = quick_exit
sys.argv = ["feedsvc", *sys.argv[1:]]
from feedsvc.cli.entry import main
main()
"""


@pytest.mark.parametrize(
    ("command", "collector_on"),
    [(["build"], False), (["check"], False), (["status"], True), (["init", "사이트"], True)],
)
def test_only_one_shot_builds_run_without_the_garbage_collector(
    tmp_path: Path, command: list[str], collector_on: bool
) -> None:
    """`build` and `check` skip the cyclic collector (they exit soon); every other command,
    the daemon above all, must have it back on."""
    config = _site(tmp_path)
    args = ["--config", str(config), *command] if command[0] != "init" else command
    done = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert f"collector on: {collector_on}" in done.stdout, done.stdout + done.stderr


def test_a_build_that_skips_the_teardown_keeps_its_exit_status_and_output(tmp_path: Path) -> None:
    config = _site(tmp_path)
    (tmp_path / "content" / "깨진.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    done = run_feedsvc("--config", str(config), "build")
    assert done.returncode == 1  # a file could not be published
    assert "깨진.md" in done.stderr and "1 error," in done.stdout
    assert not (tmp_path / "feedsvc.db-wal").exists()  # the store was closed: no log left
    db = sqlite3.connect(tmp_path / "feedsvc.db")
    try:
        assert db.execute("SELECT count(*) FROM builds").fetchone() == (1,)
    finally:
        db.close()


def _posts(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        day = i % 28 + 1
        (folder / f"2024-03-{day:02d}-소식-{i}.md").write_text(
            f"---\ntitle: 부산 소식 {i}\ncategories: [행정]\n---\n\n본문 {i}입니다.\n",
            encoding="utf-8",
        )


def test_a_new_stores_first_build_parses_everything_once(tmp_path: Path) -> None:
    """`feedsvc build` on a new store, in a fresh process: big enough to parse in worker
    processes while it walks the folder; every post is published and stored, and the
    next build parses nothing."""
    posts = PARSE_THRESHOLD + 20
    _posts(tmp_path / "content", posts)
    config = tmp_path / "config.yaml"
    config.write_text("site: {url: 'https://news.example.kr/'}\n", encoding="utf-8")
    done = run_feedsvc("--config", str(config), "build", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{posts} files, {posts} parsed, {posts} published" in done.stdout
    db = sqlite3.connect(tmp_path / "feedsvc.db")
    try:
        assert db.execute("SELECT count(*) FROM posts").fetchone() == (posts,)
        assert db.execute("SELECT count(*) FROM first_seen").fetchone() == (posts,)
    finally:
        db.close()
    (tmp_path / "public" / "feed.xml").unlink()  # something to do for the next build
    again = run_feedsvc("--config", str(config), "build", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{posts} files, 0 parsed, {posts} published" in again.stdout


def test_an_invalid_config_exits_2_before_the_store_is_made(tmp_path: Path) -> None:
    _posts(tmp_path / "content", 3)
    config = tmp_path / "config.yaml"
    config.write_text("site: {url: 'https://x.example.kr/'}\nfeeds: {limt: 5}\n", encoding="utf-8")
    done = run_feedsvc("--config", str(config), "build", cwd=tmp_path)
    assert done.returncode == 2
    assert "feeds.limt: unknown key" in done.stderr
    assert not (tmp_path / "feedsvc.db").exists()
