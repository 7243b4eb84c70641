"""The small things a new site owner notices in the command line (issue 17, item 8):
counts in the right number, problem paths that open from the current folder, drafts and
scheduled posts named in the build's summary, `subscribers list` never cutting an
address, the .test hint, and times in the site's zone with how far off they are."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from feedsvc.cli.main import main
from feedsvc.cli.subscribers import _print_table
from feedsvc.cli.words import in_time, when_label
from feedsvc.messages import Texts
from feedsvc.models import Frequency, Subscriber, SubscriberStatus

ENGLISH = Texts("en")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`feedsvc init` in a folder, with the current folder above it."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "블로그"])
    assert result.exit_code == 0, result.output
    assert "next: cd 블로그 && feedsvc run" in result.output
    yield tmp_path / "블로그"


def write(folder: Path, name: str, front: str, body: str = "본문입니다.") -> None:
    (folder / "content" / name).write_text(f"---\n{front}\n---\n\n{body}\n", encoding="utf-8")


def test_build_names_drafts_and_scheduled_posts_and_counts_in_the_right_number(
    site: Path,
) -> None:
    write(site, "초안.md", 'title: "아직 쓰는 중"\ndraft: true')
    write(site, "예약.md", 'title: "내년 소식"\ndate: 2999-01-01')
    config = str(site / "config.yaml")
    result = CliRunner().invoke(main, ["--config", config, "build"])
    assert result.exit_code == 0, result.output
    assert "3 files, 3 parsed, 1 published, 1 draft, 1 scheduled, " in result.stdout
    assert "0 errors, 0 warnings" in result.stdout
    assert "next scheduled post goes live at 2999-01-01 00:00 KST (in " in result.stdout
    again = CliRunner().invoke(main, ["--config", config, "build"])  # nothing changed
    assert "3 files, 0 parsed, 1 published, 1 draft, 1 scheduled, " in again.stdout
    checked = CliRunner().invoke(main, ["--config", config, "check"])
    assert "3 files checked: 1 publishable, 1 draft, 1 scheduled, 0 errors" in checked.stdout


def test_problems_name_the_file_from_the_current_folder(site: Path) -> None:
    write(site, "깨진.md", "title: [열린 괄호")
    for command in ("check", "build"):
        result = CliRunner().invoke(main, ["--config", str(site / "config.yaml"), command])
        assert result.exit_code == 1
        line = next(x for x in result.stderr.splitlines() if "깨진.md" in x)
        path = line.split(":", 1)[0]
        assert path == os.path.join("블로그", "content", "깨진.md"), line
        assert Path(path).is_file()  # opens from here
        assert "1 error," in result.stdout


def test_status_shows_times_in_the_site_zone_with_how_far_off(site: Path) -> None:
    config = str(site / "config.yaml")
    write(site, "예약.md", 'title: "내년 소식"\ndate: 2999-01-01')
    CliRunner().invoke(main, ["--config", config, "build"])
    result = CliRunner().invoke(main, ["--config", config, "status"])
    assert result.exit_code == 0, result.output
    assert "next scheduled post: 2999-01-01 00:00 KST (in " in result.stdout
    assert " KST (" in result.stdout.split("last build: ", 1)[1]
    assert "2 files, 1 published, " in result.stdout


def test_adding_a_test_address_says_how_to_allow_it(site: Path) -> None:
    config = str(site / "config.yaml")
    refused = CliRunner().invoke(main, ["--config", config, "subscribers", "add", "민지@시험.test"])
    assert refused.exit_code == 2
    assert "pass --allow-test-domains to accept .test addresses" in refused.stderr
    other = CliRunner().invoke(main, ["--config", config, "subscribers", "add", "민지@없는도메인"])
    assert "--allow-test-domains" not in other.stderr


def test_subscribers_table_folds_long_addresses_instead_of_cutting_them() -> None:
    address = "very.long.mailbox.name.for.the.newsletter@subdomain.example-long-domain.kr"
    moment = datetime(2024, 6, 1, tzinfo=UTC)
    subscriber = Subscriber(
        id=1,
        email=address,
        name="김민지",
        status=SubscriberStatus.ACTIVE,
        frequency=Frequency.DAILY,
        categories=(),
        timezone=None,
        created=moment,
        confirmed=moment,
        unsubscribed=None,
        consent_source="cli",
        consent_ip=None,
    )
    out = io.StringIO()
    _print_table(ENGLISH, iter([subscriber]), Console(file=out, width=60))
    cells = "".join(line.split("│")[1].strip() for line in out.getvalue().splitlines()[3:-2])
    assert address in cells and "…" not in cells


@pytest.mark.parametrize(
    ("count", "noun", "shown"),
    [
        (0, "errors", "0 errors"),
        (1, "errors", "1 error"),
        (2, "posts", "2 posts"),
        (10000, "posts", "10,000 posts"),
    ],
)
def test_counts_take_their_noun_in_the_right_number(count: int, noun: str, shown: str) -> None:
    assert ENGLISH.plural(f"cli.count.{noun}", count) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (3 * 3600 + 12 * 60 + 30, "in 3 h 12 min"),
        (2 * 86400 + 4 * 3600, "in 2 d 4 h"),
        (40, "in 40 s"),
        (-180, "3 min ago"),
        (3600, "in 1 h"),
    ],
)
def test_relative_times_read_as_people_say_them(seconds: int, shown: str) -> None:
    assert in_time(ENGLISH, timedelta(seconds=seconds)) == shown


@given(st.integers(min_value=-(10**8), max_value=10**8))
def test_a_relative_time_leaves_out_less_than_its_second_unit(seconds: int) -> None:
    """At most two units are shown, the first exact: what is left out is under an hour
    for days, under a minute for hours and minutes, nothing for seconds; the direction
    is kept."""
    text = in_time(ENGLISH, timedelta(seconds=seconds))
    words = text.removeprefix("in ").removesuffix(" ago").replace(",", "").split()
    sizes = {"d": 86400, "h": 3600, "min": 60, "s": 1}
    units = words[1::2]
    assert 1 <= len(units) <= 2
    total = sum(int(n) * sizes[unit] for n, unit in zip(words[::2], units, strict=True))
    left_out = abs(seconds) - total
    assert 0 <= left_out < {"d": 3600, "h": 60, "min": 60, "s": 1}[units[0]]
    assert text.startswith("in ") == (seconds >= 0)


def test_when_label_shows_the_site_zone() -> None:
    now = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    later = datetime(2024, 6, 1, 23, 0, tzinfo=UTC)
    assert when_label(ENGLISH, later, "Asia/Seoul", now) == "2024-06-02 08:00 KST (in 20 h)"
