"""The front-matter YAML fast path gives exactly what PyYAML gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.content import _simple_yaml as simple_yaml
from tests.conftest import corpus_front_matters


def same_as_pyyaml(text: str) -> None:
    fast = simple_yaml.load(text)
    if fast is None:
        return
    assert fast == yaml.load(text, Loader=yaml.CSafeLoader), text


@pytest.mark.parametrize(
    "text",
    [
        'title: "부산시 디지털 트윈"\ndate: 2016-01-01 18:59:00 +0900\n',
        "date: 2024-01-02\nupdated: 2024-01-02T10:00:00+09:00\n",
        "categories: [Environment, Tourism]\ntags: [tag-44, 스마트시티]\n",
        "categories:\n  - News\n  - 부산\n",
        "excerpt: >\n  부산시가 디지털 트윈 시범구역 조성사업에 선정됐다.\n  둘째 줄.\n",
        "body: |\n  line one\n  line two\n",
        "draft: yes\npublished: off\ncount: 0x1F\nratio: 1e3\nnothing: ~\nempty:\n",
        "time: 1:20\nname: it's\nquote: 'it''s'\n",
        "image: /assets/img/newspaper.png\nurl: https://x.kr/a?b=c#d\n",
    ],
)
def test_common_front_matter_is_loaded_like_pyyaml(text: str) -> None:
    assert simple_yaml.load(text) is not None
    same_as_pyyaml(text)


@pytest.mark.parametrize(
    "text",
    [
        "title: a: b\n",  # PyYAML error: left to it
        "title: a # comment\n",
        'title: "esc\\"aped"\n',
        "author:\n  name: 김\n",
        "title: x\ntitle: y\n",
        "categories:\n- a\n- b\n",
        "title: &a x\nother: *a\n",
        "title: !!python/object x\n",
        "excerpt: >-\n  x\n",
        "excerpt: >\n  a\n\n  b\n",
        "title: multi\n  line\n",
        "# comment\ntitle: x\n",
        "title: x\x07\n",
        "title: a\u2028b\n",
        "tags: [a, [b]]\n",
        "tags: [a, 'b']\n",
        "tags: [a:b]\n",
        "on: 1\n",  # PyYAML: {True: 1}
        "null: x\n",  # PyYAML: {None: 'x'}
        "title: x\n\u3000\n",  # PyYAML: an error
        "title: x\n\u00a0\ndate: 2024-01-02\n",
        "\u2003\ntitle: x\n",
        "",
    ],
)
def test_anything_unusual_is_left_to_pyyaml(text: str) -> None:
    assert simple_yaml.load(text) is None


SCALARS = st.sampled_from(
    [
        "yes",
        "No",
        "ON",
        "off",
        "true",
        "~",
        "null",
        "Null",
        "0",
        "-1",
        "0x1F",
        "0o17",
        "017",
        "1_000",
        "1:20",
        "1.5",
        ".inf",
        "-.Inf",
        ".nan",
        "1e3",
        "2024-01-02",
        "2024-1-2",
        "2024-01-02 10:00:00",
        "2024-01-02T10:00:00Z",
        "2024-01-02 10:00:00 +0900",
        "2024-01-02t10:00:00.5-05:00",
        "부산 소식",
        "a b  c",
        "a:b",
        "a: b",
        "a #b",
        "a#b",
        "http://x.kr/a#b",
        "'q''s'",
        "'x'",
        '"x"',
        '"a, b"',
        "[a, b]",
        "[1, 2.5, yes]",
        "[]",
        "[ a , 스마트시티 ]",
        "[a,,b]",
        "[a, b,]",
        "-x",
        "?x",
        "x  ",
        "=",
        "<<",
        "% x",
        "`x`",
        "@x",
        "|",
        ">",
        "{a: b}",
        "a,b",
        "*x",
        "&x",
        "!x",
        "2001:db8::1",
        "+1",
        "+.5",
    ]
)
KEYS = st.sampled_from(
    [
        *("title", "date", "tags", "categories", "draft", "excerpt", "x_y", "a-b"),
        *("on", "Off", "yes", "NO", "y", "true", "False", "null", "Null", "_", "nan", "inf"),
    ]
)
# Lines of whitespace that YAML does not count as blank (and plain spaces, which it does).
ODD_BLANKS = st.text(st.sampled_from(" \u3000\u00a0\u2003\u2002\u200b"), min_size=1, max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = []
    for key in draw(st.lists(KEYS, max_size=6, unique=True)):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            lines.append(f"{key}: {draw(SCALARS)}")
        elif kind == 1:
            lines.append(f"{key}:")
            indent = " " * draw(st.integers(1, 3))
            for _ in range(draw(st.integers(0, 3))):
                lines.append(f"{indent}- {draw(SCALARS)}")
        elif kind == 2:
            style = draw(st.sampled_from([">", "|"]))
            lines.append(f"{key}: {style}")
            indent = " " * draw(st.integers(1, 3))
            words = st.text(st.sampled_from("가나 ab:#-'\"."), min_size=1, max_size=12)
            for _ in range(draw(st.integers(1, 3))):
                lines.append(indent + draw(words))
        else:
            lines.append(f"{key}: {draw(st.text(max_size=15))}")
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(ODD_BLANKS))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(max_examples=600, deadline=None)
@given(documents())
def test_fast_path_equals_pyyaml_on_generated_documents(text: str) -> None:
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        expected = "error"
    fast = simple_yaml.load(text)
    if fast is not None:
        assert fast == expected, text


def test_fast_path_equals_pyyaml_on_the_benchmark_corpus(tmp_path: Path) -> None:
    """Every YAML front matter of a generated 400-post corpus: same values, mostly fast."""
    fronts = corpus_front_matters(tmp_path, "---")
    for front in fronts:
        same_as_pyyaml(front)
    fast = sum(simple_yaml.load(front) is not None for front in fronts)
    total = len(fronts)
    assert total > 300
    assert fast == total


def test_the_unusual_characters_are_exactly_those_pyyaml_does_not_take() -> None:
    """The short class of refused characters is the complement of PyYAML's accepted ranges
    (less line breaks), over every code point."""
    import re

    from feedsvc.content._simple_yaml import _UNUSUAL

    accepted = re.compile(
        "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )
    every = "".join(map(chr, range(0x110000)))
    assert [m.start() for m in _UNUSUAL.finditer(every)] == [
        m.start() for m in accepted.finditer(every)
    ]
