"""The front-matter TOML fast path gives exactly what tomllib gives, or steps aside."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.content import _simple_toml as simple_toml
from tests.conftest import corpus_front_matters


def same_as_tomllib(text: str) -> None:
    fast = simple_toml.load(text)
    if fast is None:
        return
    expected = tomllib.loads(text)
    assert fast == expected, text
    assert repr(fast) == repr(expected), text  # same types, same time zones


@pytest.mark.parametrize(
    "text",
    [
        '\ntitle = "부산시 디지털 트윈"\ndate = 2019-06-09T03:05:00+09:00\n',
        'categories = ["부산", "Mobility"]\ntags = []\n',
        'tags = [ ]\nwords = ["a" , "b",]\n',
        "date = 2024-01-02\nupdated = 2024-01-02 10:00:00\nat = 1979-05-27T07:32:00Z\n",
        "at = 1979-05-27t00:32:00.9999999-07:00\n",
        "draft = true\npublished = false\nweight = -12\nzero = +0\n",
        "title = 'it is literal \\n'\n",
        '  title\t=\t"tabs\tand spaces"  \n\n',
    ],
)
def test_common_front_matter_is_loaded_like_tomllib(text: str) -> None:
    assert simple_toml.load(text) is not None
    same_as_tomllib(text)


def test_values_are_built_as_tomllib_builds_them() -> None:
    loaded = simple_toml.load("a = 2024-01-02\nb = 2024-01-02T10:00:00+09:00\nc = 1\n")
    seoul = timezone(timedelta(hours=9))
    assert loaded == {"a": date(2024, 1, 2), "b": datetime(2024, 1, 2, 10, tzinfo=seoul), "c": 1}


@pytest.mark.parametrize(
    "text",
    [
        'title = "esc\\"aped"\n',  # escapes
        'title = "x" # comment\n',
        "# comment\ntitle = 1\n",
        "[params]\ntitle = 1\n",
        'a.b = "x"\n',
        '"quoted key" = 1\n',
        "title = 1\ntitle = 2\n",
        "ratio = 1.5\n",
        "count = 0x1F\n",
        "count = 1_000\n",
        "count = 012\n",
        "time = 07:32:00\n",
        "date = 2024-02-30\n",  # tomllib reports it
        "date = 2024-01-02T25:00:00\n",
        'tags = ["a",\n  "b"]\n',
        "tags = [1, 2]\n",
        'title = """x"""\n',
        "title = '''x'''\n",
        'title = "\x01"\n',
        "title = \n",
        'title = "x"\x0c\n',
        "\x0c\n",
        "flag = True\n",
        "",
        "\n\n",
    ],
)
def test_anything_else_is_left_to_tomllib(text: str) -> None:
    assert simple_toml.load(text) is None


_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='"\\\n\r'))
VALUES = st.one_of(
    _TEXT.map(lambda s: f'"{s}"'),
    _TEXT.filter(lambda s: "'" not in s).map(lambda s: f"'{s}'"),
    st.lists(_TEXT, max_size=3).map(lambda xs: "[" + ", ".join(f'"{x}"' for x in xs) + "]"),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["true", "false", "1.5", "0x1F", "inf", "07:32:00", "[1]", "{a = 1}"]),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.text(st.sampled_from("\"'[],= \t#\\x1-:.TZ+\x7f\x01한"), max_size=12),
)
KEYS = st.sampled_from(["title", "date", "tags", "a-b", "x_y", "1", "true", "a.b", '"k"', ""])


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        equals = draw(st.sampled_from(["=", " = ", "\t= ", " ="]))
        end = draw(st.sampled_from(["", " ", "\t", " # c"]))
        lines.append(draw(KEYS) + equals + draw(VALUES) + end)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(max_examples=600, deadline=None)
@given(documents())
def test_fast_path_equals_tomllib_on_generated_documents(text: str) -> None:
    same_as_tomllib(text)


def test_fast_path_equals_tomllib_on_the_benchmark_corpus(tmp_path: Path) -> None:
    """Every TOML front matter of a generated 400-post corpus: same values, all fast."""
    fronts = corpus_front_matters(tmp_path, "+++")
    for front in fronts:
        same_as_tomllib(front)
    fast = sum(simple_toml.load(front) is not None for front in fronts)
    total = len(fronts)
    assert total > 20
    assert fast == total
