"""The store is private: a new SQLite store, its WAL files and its secret are 0600 whatever
the umask, and the systemd unit runs with UMask=0077 (issue 14, item 15)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc.storage.engine import open_store
from tests.conftest import REPO


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable (0644), as on many servers."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_and_its_wal_files_are_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    db = tmp_path / "뉴스" / "feedsvc.db"
    store = open_store(f"sqlite:///{db}")
    try:
        with store.write() as conn:
            conn.exec_driver_sql("CREATE TABLE 쪽지 (글 TEXT)")
            conn.exec_driver_sql("INSERT INTO 쪽지 VALUES ('안녕')")
        files = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm"))]
        present = [f for f in files if f.exists()]
        assert db in present and len(present) >= 2, present  # the WAL files exist while open
        assert {f.name: mode_of(f) for f in present} == {f.name: 0o600 for f in present}
    finally:
        store.engine.dispose()


def test_an_existing_store_keeps_the_mode_its_owner_gave_it(
    tmp_path: Path, open_umask: None
) -> None:
    db = tmp_path / "feedsvc.db"
    open_store(f"sqlite:///{db}").engine.dispose()
    db.chmod(0o640)  # an operator's choice (a backup group may read it)
    open_store(f"sqlite:///{db}").engine.dispose()
    assert mode_of(db) == 0o640


def test_the_systemd_unit_runs_with_an_owner_only_umask() -> None:
    unit = (REPO / "deploy" / "feedsvc.service").read_text(encoding="utf-8")
    assert "\nUMask=0077\n" in unit
