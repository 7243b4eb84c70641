"""A store or a feed folder that stops taking writes (issue 14, item 12), on real file
systems: a store made immutable after it was opened ends a command with exit 3 and one
line naming the store; a feed folder on a tmpfs that fills up mid-build keeps the previous
build's complete set of feeds, and the next build after space is freed writes them all."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from tests.conftest import run_feedsvc
from tests.delivery.test_store_faults import _chattr_works

SITE = 'site: {title: "부산 소식", url: "https://news.example.kr/", language: ko}\n'


def write_posts(content: Path, body: str = "본문") -> None:
    content.mkdir(exist_ok=True)
    for i in range(1, 7):
        (content / f"2024-05-0{i}-소식{i}.md").write_text(
            f"---\ntitle: 소식 {i}\ndate: 2024-05-0{i} 09:00:00 +0900\n"
            f"categories: [분류{i}]\n---\n{body} {i}: `Vec<T>` 예시.\n",
            encoding="utf-8",
        )


def feeds_of(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "filler"
    }


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs for the feeds (needs root and mount in this sandbox)."""
    out = tmp_path / "public"
    out.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield out
    finally:
        subprocess.run(["umount", str(out)], check=False, capture_output=True)


def test_a_full_disk_mid_build_keeps_the_previous_complete_feeds(
    tmp_path: Path, small_disk: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        SITE
        + f'storage: {{url: "sqlite:///{tmp_path / "상태.db"}"}}\n'
        + f'feeds: {{output_dir: "{small_disk}"}}\n',
        encoding="utf-8",
    )
    write_posts(tmp_path / "content")
    first = run_feedsvc("--config", str(config), "build")
    assert first.returncode == 0, first.stderr
    before = feeds_of(small_disk)
    assert len(before) == 21  # the site's three feeds and three for each of 6 categories
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 60_000))
    write_posts(tmp_path / "content", body="긴 본문 " * 2000)  # ~ 40 KB a post

    full = run_feedsvc("--config", str(config), "build")
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    assert "No space left on device; no feed of this build was published" in full.stderr
    assert feeds_of(small_disk) == before  # every feed as the last good build left it
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    for name in ("feed.xml", "atom.xml"):
        assert not feedparser.parse((small_disk / name).read_bytes()).bozo

    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = run_feedsvc("--config", str(config), "build")
    assert again.returncode == 0, again.stderr
    after = feeds_of(small_disk)
    assert after.keys() == before.keys()
    assert all(after[name] != before[name] for name in before)  # all written this time
    assert "긴 본문" in (small_disk / "categories" / "분류3" / "feed.xml").read_text("utf-8")


def test_a_store_that_refuses_writes_after_opening_is_exit_3_and_one_line(
    tmp_path: Path,
) -> None:
    if not _chattr_works(tmp_path):
        pytest.skip("chattr +i is not available here (needs root and CAP_LINUX_IMMUTABLE)")
    database = tmp_path / "상태.db"
    config = tmp_path / "config.yaml"
    config.write_text(SITE + f'storage: {{url: "sqlite:///{database}"}}\n', encoding="utf-8")
    write_posts(tmp_path / "content")
    assert run_feedsvc("--config", str(config), "build").returncode == 0
    write_posts(tmp_path / "content", body="고친 본문")
    locked = [database, database.with_name(database.name + "-wal")]
    locked = [p for p in locked if p.exists()]
    subprocess.run(["chattr", "+i", *map(str, locked)], check=True)
    try:
        built = run_feedsvc("--config", str(config), "build")
    finally:
        subprocess.run(["chattr", "-i", *map(str, locked)], check=False)
    assert built.returncode == 3, built.stderr
    assert "Traceback" not in built.stderr
    (line,) = [line for line in built.stderr.splitlines() if line.startswith("feedsvc: ")]
    assert line.startswith(f"feedsvc: the store {database} failed: ")
    assert "free disk space or make it writable" in line
