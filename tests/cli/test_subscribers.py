"""`feedsvc subscribers …` through click's runner, on a real store (SQLite, and PostgreSQL
for import, export and forget where FEEDSVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from feedsvc.cli.main import main
from feedsvc.storage.engine import make_engine, normalise_url, run_alembic_upgrade
from feedsvc.storage.schema import HEAD_REVISION
from tests.conftest import PG_ENV

HEADER = "email,name,frequency,categories,timezone\n"
MINJI = "minji@example.kr,구독자 김민지,weekly,부산;스마트시티,Asia/Seoul\n"
JISU = "jisu@example.kr,구독자 박지수,daily,,\n"


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDSVC_STORAGE_URL", raising=False)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)


class Site:
    """A config.yaml pointing at one store, and a runner for commands against it."""

    def __init__(self, folder: Path, url: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.config = folder / "config.yaml"
        self.config.write_text(
            f"site:\n  timezone: Asia/Seoul\nstorage:\n  url: '{url}'\n", encoding="utf-8"
        )

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), "subscribers", *args])

    def write(self, name: str, content: str, encoding: str = "utf-8") -> Path:
        path = self.folder / name
        path.write_bytes(content.encode(encoding))
        return path

    def listed(self, *args: str) -> list[dict[str, object]]:
        result = self.run("list", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        found: list[dict[str, object]] = json.loads(result.stdout)
        return found

    def one(self, email: str) -> dict[str, object]:
        [found] = [s for s in self.listed() if s["email"] == email]
        return found


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A site on SQLite."""
    return Site(tmp_path / "사이트", f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def any_site(tmp_path: Path, store_url: str) -> Site:
    """A site on SQLite, then on PostgreSQL."""
    return Site(tmp_path / "사이트", store_url)


@pytest.fixture
def empty_site(tmp_path: Path, store_url: str) -> Iterator[Site]:
    """A second, empty store on the same backend as ``any_site``."""
    if store_url.startswith("sqlite"):
        yield Site(tmp_path / "빈 사이트", f"sqlite:///{tmp_path / 'empty.db'}")
        return
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield Site(tmp_path / "빈 사이트", f"{base}{sep}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# --- add ----------------------------------------------------------------------------


def test_add_makes_an_active_subscriber_with_every_option(site: Site) -> None:
    result = site.run(
        "add",
        "Minji@Example.KR",
        "--name",
        "구독자 김민지",
        "--frequency",
        "weekly",
        "--category",
        "부산",
        "--category",
        "스마트시티",
        "--timezone",
        "Asia/Seoul",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "added minji@example.kr (구독자 김민지): active, weekly, 부산, 스마트시티, Asia/Seoul\n"
    )
    found = site.one("minji@example.kr")
    assert (found["status"], found["consent_source"]) == ("active", "cli")


def test_first_command_says_it_created_the_store(site: Site) -> None:
    first = site.run("list")
    second = site.run("list")
    assert f"feedsvc: created a new store at revision {HEAD_REVISION}" in first.stderr
    assert "created" not in second.stderr


def test_add_pending_leaves_the_subscriber_unconfirmed(site: Site) -> None:
    result = site.run("add", "minji@example.kr", "--pending")
    assert result.exit_code == 0, result.output
    assert site.one("minji@example.kr")["status"] == "pending"


def test_add_of_an_invalid_address_exits_2_naming_it(site: Site) -> None:
    result = site.run("add", "구독자 김민지")
    assert result.exit_code == 2
    assert "'구독자 김민지' is not a usable email address" in result.stderr


def test_add_with_an_unknown_timezone_exits_2(site: Site) -> None:
    result = site.run("add", "minji@example.kr", "--timezone", "Seoul")
    assert result.exit_code == 2
    assert "unknown time zone 'Seoul'" in result.stderr


def test_add_of_an_existing_address_updates_only_what_is_given(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지", "--timezone", "Asia/Seoul")
    result = site.run("add", "minji@example.kr", "--frequency", "immediate")
    assert result.stdout.startswith("updated minji@example.kr (구독자 김민지): active, immediate")
    assert site.one("minji@example.kr")["timezone"] == "Asia/Seoul"


def test_add_never_reactivates_an_unsubscribed_address(site: Site) -> None:
    site.run("add", "minji@example.kr")
    site.run("remove", "minji@example.kr")
    result = site.run("add", "minji@example.kr")
    assert result.exit_code == 1
    assert "minji@example.kr is unsubscribed since" in result.stderr
    assert "never re-subscribes" in result.stderr
    assert site.one("minji@example.kr")["status"] == "unsubscribed"


def test_add_refuses_a_forgotten_address(site: Site) -> None:
    site.run("forget", "minji@example.kr")
    result = site.run("add", "minji@example.kr")
    assert result.exit_code == 1
    assert "was erased with `feedsvc subscribers forget`" in result.stderr
    assert site.listed() == []


# --- remove -------------------------------------------------------------------------


def test_remove_marks_unsubscribed_and_keeps_the_record(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    result = site.run("remove", "MINJI@example.kr")
    assert result.exit_code == 0, result.output
    assert "unsubscribed minji@example.kr" in result.stdout
    found = site.one("minji@example.kr")
    assert found["status"] == "unsubscribed"
    assert found["unsubscribed"] is not None
    assert found["name"] == "구독자 김민지"


def test_remove_of_an_unknown_address_exits_1(site: Site) -> None:
    result = site.run("remove", "nobody@example.kr")
    assert result.exit_code == 1
    assert "no subscriber nobody@example.kr; nothing changed" in result.stderr


def test_removing_twice_says_it_is_already_unsubscribed(site: Site) -> None:
    site.run("add", "minji@example.kr")
    site.run("remove", "minji@example.kr")
    result = site.run("remove", "minji@example.kr")
    assert result.exit_code == 0
    assert "already unsubscribed; nothing changed" in result.stdout


# --- list ---------------------------------------------------------------------------


def test_list_writes_csv_when_not_on_a_terminal(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    result = site.run("list")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("email,name,frequency,categories,timezone,status,created")
    assert lines[1].startswith("minji@example.kr,구독자 김민지,daily,,,active,")


def test_list_json_keeps_korean_readable(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지", "--category", "부산")
    result = site.run("list", "--format", "json")
    assert "구독자 김민지" in result.stdout
    [found] = json.loads(result.stdout)
    assert found["categories"] == ["부산"]


def test_list_table_shows_names_and_a_count(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    result = site.run("list", "--format", "table")
    assert "구독자 김민지" in result.stdout
    assert "1 subscriber" in result.stdout


def test_list_filters_by_status(site: Site) -> None:
    site.run("add", "minji@example.kr")
    site.run("add", "jisu@example.kr", "--pending")
    assert [s["email"] for s in site.listed("--status", "pending")] == ["jisu@example.kr"]


# --- import -------------------------------------------------------------------------


def test_import_adds_good_rows_and_reports_each_bad_one(any_site: Site) -> None:
    path = any_site.write(
        "구독자.csv",
        HEADER
        + MINJI
        + "not-an-address,구독자 오류,daily,,\n"
        + "hana@example.kr,구독자 이하나,monthly,,\n"
        + "dana@example.kr,구독자 김다나,daily,,Seoul\n"
        + "Minji@Example.kr,구독자 김민지,daily,,\n"
        + "yuna@example.kr,구독자 최유나\n"
        + JISU,
    )
    result = any_site.run("import", str(path))
    assert result.exit_code == 1
    source = str(path)
    bad = result.stderr.splitlines()
    assert f"{source}:3: error: invalid address 'not-an-address'" in bad[-5]
    assert f"{source}:4: error: hana@example.kr: unknown frequency 'monthly'" in bad[-4]
    assert f"{source}:5: error: dana@example.kr: unknown time zone 'Seoul'" in bad[-3]
    assert f"{source}:6: error: minji@example.kr is a duplicate of line 2" in bad[-2]
    assert f"{source}:7: error: 2 fields, but the header has 5" in bad[-1]
    assert result.stdout == f"{source}: 7 rows: 2 added, 0 updated, 5 bad rows not imported\n"
    assert [s["name"] for s in any_site.listed()] == ["구독자 김민지", "구독자 박지수"]


def test_import_dry_run_reports_and_writes_nothing(any_site: Site) -> None:
    path = any_site.write("구독자.csv", HEADER + MINJI + JISU)
    result = any_site.run("import", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written" in result.stdout
    assert "2 to add" in result.stdout
    assert any_site.listed() == []


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_import_reads_utf8_with_or_without_bom(site: Site, encoding: str) -> None:
    path = site.write("구독자.csv", HEADER + MINJI, encoding)
    assert site.run("import", str(path)).exit_code == 0
    assert site.one("minji@example.kr")["name"] == "구독자 김민지"


def test_import_reads_a_korean_excel_file_with_its_encoding(site: Site) -> None:
    path = site.write("엑셀.csv", HEADER + MINJI, "cp949")
    result = site.run("import", "--encoding", "cp949", str(path))
    assert result.exit_code == 0, result.output
    assert site.one("minji@example.kr")["categories"] == ["부산", "스마트시티"]


def test_import_of_an_undecodable_file_exits_2_suggesting_the_encoding(site: Site) -> None:
    path = site.write("엑셀.csv", HEADER + MINJI, "cp949")
    result = site.run("import", str(path))
    assert result.exit_code == 2
    assert f"{path}:2: the file is not valid utf-8-sig" in result.stderr
    assert "--encoding cp949" in result.stderr


def test_import_with_an_unknown_column_exits_2_naming_it(site: Site) -> None:
    path = site.write("구독자.csv", "email,name,phone\nminji@example.kr,김민지,010\n")
    result = site.run("import", str(path))
    assert result.exit_code == 2
    assert f"{path}:1: unknown column(s) 'phone'" in result.stderr


def test_import_accepts_a_file_without_optional_columns(site: Site) -> None:
    path = site.write(
        "corpus.csv", "email,name,frequency,categories\nuser0@example.kr,구독자 0,,\n"
    )
    assert site.run("import", str(path)).exit_code == 0
    found = site.one("user0@example.kr")
    assert (found["frequency"], found["timezone"], found["categories"]) == ("daily", None, [])


def test_import_updates_existing_and_never_reactivates_the_unsubscribed(any_site: Site) -> None:
    any_site.run("add", "minji@example.kr", "--name", "옛 이름")
    any_site.run("add", "jisu@example.kr")
    any_site.run("remove", "jisu@example.kr")
    path = any_site.write("구독자.csv", HEADER + MINJI + JISU)
    result = any_site.run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "0 added, 2 updated (1 stayed unsubscribed, bounced or complained)" in result.stdout
    assert any_site.one("minji@example.kr")["name"] == "구독자 김민지"
    jisu = any_site.one("jisu@example.kr")
    assert (jisu["status"], jisu["name"]) == ("unsubscribed", "구독자 박지수")


def test_import_of_a_forgotten_address_is_reported_as_a_bad_row(any_site: Site) -> None:
    any_site.run("forget", "jisu@example.kr")
    path = any_site.write("구독자.csv", HEADER + MINJI + JISU)
    result = any_site.run("import", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: error: jisu@example.kr was erased" in result.stderr
    assert [s["email"] for s in any_site.listed()] == ["minji@example.kr"]


def test_import_streams_a_file_larger_than_one_batch(any_site: Site) -> None:
    rows = "".join(f"user{i}@example.kr,구독자 {i},daily,부산,\n" for i in range(2500))
    path = any_site.write("큰.csv", HEADER + rows)
    result = any_site.run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "2,500 added" in result.stdout
    assert len(any_site.listed()) == 2500


# --- export -------------------------------------------------------------------------


def _fill(site: Site) -> None:
    path = site.write(
        "이전.csv",
        "email,name,frequency,categories,timezone,status,created,confirmed,consent_ip\n"
        "minji@example.kr,구독자 김민지,weekly,부산;스마트시티,Asia/Seoul,active,"
        "2023-05-01T09:00:00+09:00,2023-05-01 09:10,203.0.113.7\n"
        'jisu@example.kr,"구독자 박지수, 편집자",daily,,,bounced,2023-06-01,,\n',
    )
    assert site.run("import", str(path)).exit_code == 0
    site.run("add", "hana@example.kr", "--name", "구독자 이하나", "--pending")
    site.run("add", "dana@실례.한국", "--name", "구독자 김다나")
    site.run("remove", "dana@실례.한국")


def test_export_then_import_into_an_empty_store_gives_the_same_file(
    any_site: Site, empty_site: Site
) -> None:
    _fill(any_site)
    first = any_site.folder / "내보내기.csv"
    result = any_site.run("export", str(first))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote 4 subscribers to {first}\n"
    assert empty_site.run("import", str(first)).exit_code == 0
    second = empty_site.folder / "다시.csv"
    assert empty_site.run("export", str(second)).exit_code == 0
    assert second.read_bytes() == first.read_bytes()


def test_export_has_status_dates_and_consent(site: Site) -> None:
    _fill(site)
    site.run("export", str(site.folder / "out.csv"))
    lines = (site.folder / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        "email,name,frequency,categories,timezone,status,created,confirmed,unsubscribed,"
        "consent_source,consent_ip"
    )
    assert lines[1] == (
        "minji@example.kr,구독자 김민지,weekly,부산;스마트시티,Asia/Seoul,active,"
        "2023-05-01T00:00:00Z,2023-05-01T00:10:00Z,,import 이전.csv,203.0.113.7"
    )
    assert lines[2].startswith('jisu@example.kr,"구독자 박지수, 편집자",daily,,,bounced,')


def test_export_with_bom_for_excel(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    site.run("export", "--bom", str(site.folder / "excel.csv"))
    data = (site.folder / "excel.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail,")
    assert "구독자 김민지" in data.decode("utf-8-sig")


def test_export_to_standard_output(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    result = site.run("export", "-")
    assert result.stdout.splitlines()[1].startswith("minji@example.kr,구독자 김민지,")


def test_exported_file_is_readable_by_its_owner_only(site: Site) -> None:
    site.run("add", "minji@example.kr")
    site.run("export", str(site.folder / "out.csv"))
    assert stat.S_IMODE((site.folder / "out.csv").stat().st_mode) == 0o600


# --- forget -------------------------------------------------------------------------


def test_forget_erases_and_no_import_brings_it_back(any_site: Site) -> None:
    any_site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    result = any_site.run("forget", "Minji@example.kr")
    assert result.exit_code == 0, result.output
    assert "erased every record of minji@example.kr" in result.stdout
    assert any_site.listed() == []
    path = any_site.write("구독자.csv", HEADER + MINJI)
    assert any_site.run("import", str(path)).exit_code == 1
    assert any_site.listed() == []


def test_forget_of_an_unknown_address_still_blocks_imports(site: Site) -> None:
    result = site.run("forget", "minji@example.kr")
    assert result.exit_code == 0
    assert "no records of minji@example.kr" in result.stdout


def test_undecodable_line_late_in_a_file_is_named_and_rows_before_it_kept(site: Site) -> None:
    rows = "".join(f"user{i}@example.kr,구독자 {i},daily,,\n" for i in range(1500))
    path = site.folder / "섞인.csv"
    path.write_bytes((HEADER + rows).encode() + MINJI.encode("cp949"))
    result = site.run("import", str(path))
    assert result.exit_code == 2
    assert f"{path}:1502: the file is not valid utf-8-sig" in result.stderr
    assert "1,000 rows before it were imported" in result.stderr
    assert len(site.listed()) >= 1000


def test_an_encoding_that_splits_ascii_is_refused(site: Site) -> None:
    path = site.write("utf16.csv", HEADER + MINJI, "utf-16")
    result = site.run("import", "--encoding", "utf-16", str(path))
    assert result.exit_code == 2
    assert "--encoding: utf-16 does not keep ASCII as is" in result.stderr


def test_list_table_prints_brackets_in_names_as_they_are(site: Site) -> None:
    site.run("add", "minji@example.kr", "--name", "[bold]김민지[/]")
    result = site.run("list", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "[bold]김민지[/]" in result.stdout


def test_a_store_at_an_older_revision_is_migrated_and_the_command_says_so(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with engine.connect() as conn, conn.begin():
        run_alembic_upgrade(conn, "0001")
    engine.dispose()
    site = Site(tmp_path / "사이트", url)
    result = site.run("add", "minji@example.kr", "--name", "구독자 김민지")
    assert result.exit_code == 0, result.output
    assert f"feedsvc: migrated the store from revision 0001 to {HEAD_REVISION}" in result.stderr
