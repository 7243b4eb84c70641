"""feedsvc.content.markdown_code: the scanner of Markdown code regions, checked against
cmark-gfm itself (the renderer feedsvc uses): a word is inside a code region exactly
when cmark shows it inside <code>."""

from __future__ import annotations

import re
from itertools import pairwise

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedsvc.content.cmark import to_html
from feedsvc.content.markdown_code import Region, code_regions, regions, split_code

_WORD = re.compile(r"q\d+")
_CODE = re.compile(r"<code[^>]*>(.*?)</code>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _compare(source: str) -> tuple[set[str], set[str]]:
    """(words cmark shows as code that the scanner missed, words the scanner calls code
    that cmark shows as text)."""
    html = to_html(source)
    shown_as_code = {w for m in _CODE.finditer(html) for w in _WORD.findall(m.group(1))}
    shown = set(_WORD.findall(_TAG.sub("", html)))
    found = code_regions(source)
    scanned = set()
    for word in _WORD.finditer(source):
        if any(s <= word.start() and word.end() <= e for s, e in found):
            scanned.add(word.group())
    return shown_as_code - scanned, (scanned & shown) - shown_as_code


def _check(source: str) -> None:
    missed, extra = _compare(source)
    assert not missed, f"code that the scanner missed: {sorted(missed)} in {source!r}"
    assert not extra, f"text that the scanner calls code: {sorted(extra)} in {source!r}"


# --- examples as authors write them ----------------------------------------------------

KOREAN_POST = """\
## 설치 방법

`pip install feedsvc`로 설치합니다. 설정은 `config.yaml`에 둡니다.

```yaml
site:
  url: https://x.kr/   # `주석`
```

> 인용 안의 코드:
> ```sh
> echo "{{ site.url }}"
> ```

1. 첫째
   ```python
   def f(x): return x
   ```
2. 둘째: ``a ` b``

목록 밖.

    들여쓴 코드 블록

~~~
물결 펜스 ```안의``` 백틱
~~~

| 명령 | 설명 |
|---|---|
| `ls -al` | 목록 |

<div>
`HTML 블록 안은 코드가 아님`
</div>
"""


def test_a_korean_post_has_its_code_blocks_and_spans_found() -> None:
    found = [KOREAN_POST[s:e] for s, e in code_regions(KOREAN_POST)]
    assert found == [
        "`pip install feedsvc`",
        "`config.yaml`",
        "```yaml\nsite:\n  url: https://x.kr/   # `주석`\n```",
        '```sh\n> echo "{{ site.url }}"\n> ```',
        "```python\n   def f(x): return x\n   ```",
        "``a ` b``",
        "들여쓴 코드 블록",
        "~~~\n물결 펜스 ```안의``` 백틱\n~~~",
        "`ls -al`",
    ]
    html = [r for r in regions(KOREAN_POST) if r.kind == "html"]
    assert [KOREAN_POST[r.start : r.end] for r in html] == [
        "<div>\n`HTML 블록 안은 코드가 아님`\n</div>"
    ]


def test_split_code_cuts_the_text_into_code_and_the_rest() -> None:
    text = "앞 `코드` 뒤\n\n```\n블록\n```\n끝"
    parts = split_code(text)
    assert "".join(part for part, _ in parts) == text
    assert [part for part, code in parts if code] == ["`코드`", "```\n블록\n```"]


def test_text_without_code_has_no_regions() -> None:
    assert regions("그냥 글입니다. **굵게** $x$ 1~9\n") == []
    assert split_code("") == []


def test_an_unclosed_fence_runs_to_the_end_of_its_container() -> None:
    text = "> ```\n> 안\n\n밖 `x`"
    assert [text[s:e] for s, e in code_regions(text)] == ["```\n> 안", "`x`"]


def test_unmatched_backticks_and_escaped_backticks_are_text() -> None:
    assert code_regions("a `` b ` c") == []
    assert code_regions(r"\`a` b`") == [(3, 7)]


def test_backticks_inside_autolinks_html_and_link_destinations_are_not_code() -> None:
    assert code_regions('<a title="`">x</a> `y`') == [(19, 22)]
    assert code_regions("[a](b`c) `d`") == [(9, 12)]
    assert code_regions("<http://a`b> `c`") == [(13, 16)]
    assert code_regions("https://x.kr/`a` `b`") == [(17, 20)]


def test_regions_are_sorted_and_apart() -> None:
    found = regions(KOREAN_POST)
    assert all(isinstance(r, Region) for r in found)
    assert all(a.end <= b.start for a, b in pairwise(found))


@settings(max_examples=1, deadline=None)
@given(st.just(KOREAN_POST))
def test_the_korean_post_agrees_with_cmark(source: str) -> None:
    _check(source.replace("코드", "q1 q2").replace("백틱", "q3"))


# --- generated documents ----------------------------------------------------------------

_INLINE = st.sampled_from(
    ["`", "``", "```", "\\`", "\\", " ", "  ", "<span>", "</span>", '<a title="`">',
     "<http://a.b/", ">", "<x@y.z>", "[", "]", "(", ")", "](", "![", "[^", "*", "_", "~",
     "https://a.b/", "www.a.b/", "http://", "|", "\\|", "&amp;", "\t", "\"", "'", "x_y.",
     "[a](", "[a](u`", "](u`v)", "[a]", "[r]", "[a][r]", "](<u`>)", ' "t`")', "[a [b](c) d](e",
     "| `", "` |", " | "]
)  # fmt: skip
_PREFIX = st.sampled_from(
    ["", "", "", "> ", ">", "- ", "* ", "1. ", "2) ", "  ", "   ", "    ", "\t", " \t",
     "> - ", "- > ", ">  ", "-   ", "10. "]
)  # fmt: skip
_BLOCK = st.sampled_from(
    ["```", "~~~", "````", "```py", "~~~ x", "``` `", "<div>", "</div>", "<!--", "-->",
     "<pre>", "</pre>", "<span>", "<?x", "?>", "<!X", "<![CDATA[", "]]>", "# ", "## ",
     "===", "---", "***", "| a | b |", "|---|---|", "--- | ---", "[r]: /u", "[r]: /u '`'",
     "[r]", "[a][r]", "", "| a | b |\n|---|---|", "a|b\n-|-", "|a|\n|:-:|"]
)  # fmt: skip


@st.composite
def _documents(draw: st.DrawFn) -> str:
    counter = iter(range(10_000))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        prefix = "".join(draw(st.lists(_PREFIX, max_size=2)))
        block = draw(_BLOCK) if draw(st.booleans()) else ""
        pieces = []
        for _ in range(draw(st.integers(0, 6))):
            if draw(st.booleans()):
                pieces.append(f"q{next(counter)}")
            else:
                pieces.append(draw(_INLINE))
        if block and draw(st.booleans()):
            pieces = [block, *pieces] if not block.startswith(("`", "~")) else [block]
        lines.append(prefix + "".join(pieces).replace("\n", "\n" + prefix))
    return "\n".join(lines) + "\n"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
@example("- a\n\n  ```\n  q1\n  ```\n`q2`\n")
@example("| a | b |\n|---|---|\n| ` | `q1` |\n")
@example("[r]: /u '`'\n`q1` q2`\n")
@example("- [r]: /u`\n  q1 `q2`\n")
@example("[a [r] b](u`q1`) `q2`\n\n[r]: /x\n")
@example("see https://a.b/`q1` `q2`\n")
def test_generated_documents_agree_with_cmark(source: str) -> None:
    _check(source)


_CELL = st.lists(
    st.one_of(
        st.sampled_from(["`", "``", "|", "\\|", " ", "\\", "<b>", "[a](u`)"]),
        st.builds("q{}".format, st.integers(0, 99)),
    ),
    max_size=5,
).map("".join)


@st.composite
def _tables(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "> ", "- ", "  "]))
    columns = draw(st.integers(1, 3))
    header = "|".join(draw(_CELL) for _ in range(columns))
    rows = [
        "|".join(draw(_CELL) for _ in range(draw(st.integers(1, 4))))
        for _ in range(draw(st.integers(0, 4)))
    ]
    pipes = draw(st.booleans())
    lines = [header, "|".join(["---"] * columns), *rows]
    if pipes:
        lines = [f"| {line} |" for line in lines]
    above = [draw(_CELL)] if draw(st.booleans()) else []
    # words are made unique afterwards: the same word twice would blur the comparison
    counter = iter(range(10_000))
    text = "\n".join(prefix + line for line in [*above, *lines]) + "\n"
    return re.sub(r"q\d+", lambda _: f"q{next(counter)}", text)


@settings(max_examples=500, deadline=None)
@given(_tables())
def test_generated_tables_agree_with_cmark(source: str) -> None:
    _check(source)
