"""Whatever authors write, the whole path holds: posts → `feedsvc build` → feeds a reader
parses → `feedsvc digest preview` (sanitising and CSS inlining) (issue 14).

Hypothesis writes small sites of real-shaped posts — Korean text, code blocks, `<T>` in
prose, deeply nested and unclosed HTML, many elements, YAML alias chains ("billion
laughs"), dates as authors write them, image URLs with any scheme. Each example runs the
real CLI in its own process with a memory cap (RLIMIT_AS) and a time limit, so a post that
would crash the process, eat the memory or stall fails the test instead of the machine.

Examples: ``FEEDSVC_FUZZ_EXAMPLES`` (default 12; `.ci/run` sets a larger fixed budget).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import traceback
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FEEDSVC_FUZZ_EXAMPLES", "12"))
MEMORY_CAP = 3 * 1024**3  # address space a build may map: far above a real site's
TIME_LIMIT_S = 60.0  # per example, for build and preview together, on a loaded machine
SUBSCRIBER = "구독자@example.kr"

KOREAN = st.sampled_from(
    ["해운대 불꽃축제", "부산시 교통 안내", "스마트시티 소식", "광안리 <T> 행사", "a & b < c"]
)
DATES = st.sampled_from(
    ["", "2024-05-01", "2024-05-01 09:00:00 +0900", "2024-05-01T09:00:00Z", "2024/05/01",
     "2024-13-45", "어제", "'2024-05-01'"]
)  # fmt: skip
IMAGES = st.sampled_from(
    ["", "/assets/불꽃.jpg", "https://cdn.example.kr/a.png", "javascript:alert(2)",
     "data:image/png;base64,AAAA", "img/상대.png", "//cdn.example.kr/b.png"]
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["markdown", "nested", "many", "text"]))
    words = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=80))
    if kind == "markdown":
        return f"# 제목\n\n{words} `Vec<T>` 와 <T> 그리고 &amp;\n\n```rust\nfn f<T>() {{}}\n```\n"
    if kind == "nested":
        depth = draw(st.integers(1, 20_000))
        closed = draw(st.booleans())
        return "<div>" * depth + words + ("</div>" * depth if closed else "")
    if kind == "many":
        return "<p>짧은 글</p>" * draw(st.integers(1, 150_000))
    return words


@st.composite
def front_matters(draw: st.DrawFn, index: int) -> str:
    lines = [f"title: {json.dumps(draw(KOREAN), ensure_ascii=False)}"]
    date = draw(DATES)
    if date:
        lines.append(f"date: {date}")
    image = draw(IMAGES)
    if image:
        lines.append(f"image: {json.dumps(image, ensure_ascii=False)}")
    lines.append(f"categories: [{draw(st.sampled_from(['소식', '교통', 'smart-city']))}]")
    levels = draw(st.integers(0, 12))
    if levels:  # a chain of aliases, each level nine times the one before
        lines.append("a0: &a0 [웃음, 웃음, 웃음]")
        for level in range(1, levels + 1):
            refs = ", ".join([f"*a{level - 1}"] * 9)
            lines.append(f"a{level}: &a{level} [{refs}]")
        lines.append(f"excerpt: *a{levels}")
    return "\n".join(lines)


@st.composite
def sites(draw: st.DrawFn) -> list[tuple[str, str]]:
    count = draw(st.integers(1, 4))
    posts = []
    for index in range(count):
        extension = draw(st.sampled_from(["md", "html"]))
        text = f"---\n{draw(front_matters(index))}\n---\n{draw(bodies())}\n"
        posts.append((f"2024-05-0{index + 1}-글{index}.{extension}", text))
    return posts


def run_example(root: str) -> None:
    """In the child: cap memory, build, read the feeds, preview the digest. Any failure
    is written to ``failure.txt`` and ends the child with a non-zero status."""
    base = Path(root)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    try:
        from feedsvc.cli.main import main as cli

        def feedsvc(*args: str) -> int:
            try:
                cli.main(["--config", str(base / "config.yaml"), *args], standalone_mode=False)
            except SystemExit as exc:
                return int(exc.code or 0)
            return 0

        os.chdir(base)
        built = feedsvc("build")
        assert built in (0, 1), f"build exited {built}"
        for name in ("feed.xml", "atom.xml"):
            parsed = feedparser.parse((base / "public" / name).read_bytes())
            assert not parsed.bozo, (name, parsed.get("bozo_exception"))
            for entry in parsed.entries:
                for link in entry.get("enclosures", []) + entry.get("media_thumbnail", []):
                    url = link.get("href") or link.get("url") or ""
                    assert url.startswith(("https://", "http://")), (name, url)
        json.loads((base / "public" / "feed.json").read_bytes())
        assert feedsvc("subscribers", "add", SUBSCRIBER) == 0
        previewed = feedsvc("digest", "preview", "--to", SUBSCRIBER, "--out", "미리보기.html")
        assert previewed in (0, 1), f"digest preview exited {previewed}"
    except BaseException:
        (base / "failure.txt").write_text(traceback.format_exc(), encoding="utf-8")
        os._exit(3)
    os._exit(0)


@pytest.fixture(scope="module")
def context() -> multiprocessing.context.ForkServerContext:
    """Children forked from a server that loaded feedsvc once: fast, and free of the
    test process's threads and locks."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["feedsvc.cli.main", "feedsvc.build.builder", "feedparser"])
    return ctx


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(posts=sites())
def test_any_posts_build_valid_feeds_and_a_digest_within_memory_and_time(
    tmp_path_factory: pytest.TempPathFactory,
    context: multiprocessing.context.ForkServerContext,
    posts: list[tuple[str, str]],
) -> None:
    root = tmp_path_factory.mktemp("퍼징")
    (root / "content").mkdir()
    for name, text in posts:
        (root / "content" / name).write_text(text, encoding="utf-8")
    (root / "config.yaml").write_text(
        'site: {title: "부산 소식", url: "https://news.example.kr/", language: ko, '
        "timezone: Asia/Seoul}\n"
        f'storage: {{url: "sqlite:///{root / "상태.db"}"}}\n',
        encoding="utf-8",
    )
    child = context.Process(target=run_example, args=(str(root),))
    child.start()
    child.join(TIME_LIMIT_S)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"an example took over {TIME_LIMIT_S:.0f} s: {[n for n, _ in posts]}")
    failure = root / "failure.txt"
    detail = failure.read_text("utf-8") if failure.exists() else ""
    assert child.exitcode == 0, f"exit {child.exitcode} (negative: killed by a signal)\n{detail}"
