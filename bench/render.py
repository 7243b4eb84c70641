"""Benchmark: personalised digest messages, ready to send, for many subscribers.

Measures, each in a fresh child process (wall time, CPU time, peak RSS):

- feedsvc              100,000 subscribers across 20 category mixes: each distinct digest
                       is rendered once (Jinja2, nh3, css-inline, MIME), then every
                       subscriber's message is made by substitution (To, Message-ID,
                       List-Unsubscribe, two signed tokens, address); every message's bytes
                       are built in full and then dropped (no store);
- naive (reference)    the same, but rendering templates, inlining CSS and building the MIME
                       message again for every subscriber, as a straightforward
                       implementation would; on a sample (1,000 by default), the rate
                       extrapolated; the ratio is the point;
- feedsvc + DKIM       the fast path plus a DKIM signature per message (dkimpy, RSA-2048;
                       the signature is per subscriber since To and the links differ); on a
                       sample: its cost, not a target.

Targets (issue #4): ≥ 20,000 messages/s and peak RSS ≤ 300 MB for the fast path. Rates are
messages over the child's own work time (after imports); the wall column includes starting
Python. Every figure comes from the same run, so noise on the machine falls on all rows.

    python bench/render.py                 # 100,000 subscribers, 3 runs
    python bench/render.py --quick         # smoke check: 10,000 subscribers, 1 run
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from _common import (
    REPO_DIR,
    BenchError,
    Measurement,
    Series,
    machine_info,
    print_facts,
    print_table,
    run_measured,
    say,
)

if TYPE_CHECKING:
    from feedsvc.models import Post as PostType

MIN_RATE = 20_000.0
MAX_RSS_MB = 300.0
CATEGORIES = ("부산", "서울", "교통", "축제", "스마트시티", "환경", "문화")
SECRET = "bench-secret-0123456789abcdef0123456789"


# --- the workload (runs in the child) -------------------------------------------------


def _posts() -> list[PostType]:
    """30 posts a Korean city site might publish in a day or two, ~3 KB of HTML each."""
    from feedsvc.models import Author, Image, Post, PostMeta

    base = datetime(2024, 5, 31, 0, 0, tzinfo=UTC)
    paragraph = (
        "<p>부산시는 올해 해운대와 광안리 일대에서 시민과 관광객을 위한 행사를 연다. "
        '자세한 일정은 <a href="/events/">행사 안내</a>에서 확인할 수 있다. '
        "교통 통제 구간과 임시 버스 노선도 함께 공지했다.</p>"
    )
    found = []
    for number in range(30):
        published = base + timedelta(minutes=37 * number)
        slug = f"post-{number:02d}"
        url = f"https://news.example.kr/{published:%Y/%m/%d}/{slug}/"
        categories = (CATEGORIES[number % 7], CATEGORIES[(number * 3 + 1) % 7])
        meta = PostMeta(
            id=url,
            slug=slug,
            url=url,
            source=f"{slug}.md",
            title=f"부산 시정 소식 {number}호: 해운대 바다축제와 교통 안내",
            published=published,
            updated=published,
            date_source="front_matter",
            categories=categories,
            author=Author("편집팀"),
            image=Image(f"https://news.example.kr/img/{slug}.jpg", "image/jpeg")
            if number % 3 == 0
            else None,
        )
        summary = (
            f"{number}번째 소식입니다. 올해 해운대 바다축제는 6월 1일부터 9일 동안 열리며, "
            "드론 800대가 광안대교 위를 수놓는 야간 공연과 모래 조각전이 함께 열립니다."
        )
        found.append(Post(meta, paragraph * 12, summary))
    return found


def _mixes(count: int) -> list[tuple[str, ...]]:
    """``count`` distinct category filters: every category, then singles, then pairs."""
    mixes: list[tuple[str, ...]] = [()]
    mixes += [(c,) for c in CATEGORIES]
    mixes += list(itertools.combinations(CATEGORIES, 2))
    if count > len(mixes):
        raise BenchError(f"at most {len(mixes)} category mixes")
    return mixes[:count]


@dataclass(frozen=True)
class Result:
    messages: int
    contents: int
    bytes: int
    render_s: float
    personalise_s: float

    @property
    def rate(self) -> float:
        return self.messages / (self.render_s + self.personalise_s)


def workload(mode: str, subscribers: int, mixes: int) -> Result:
    """Render and personalise: ``fast`` (feedsvc), ``naive`` or ``dkim``."""
    from feedsvc.config import settings_from_mapping
    from feedsvc.delivery.mime import DkimKey
    from feedsvc.models import Frequency, Period
    from feedsvc.newsletter.digests import category_keys, matches
    from feedsvc.newsletter.jobs import Renderer
    from feedsvc.newsletter.messages import DigestContent, MessageTemplate, render_digest
    from feedsvc.newsletter.tokens import Tokens

    settings = settings_from_mapping(
        {
            "site": {"title": "부산 시정 소식", "url": "https://news.example.kr/",
                     "language": "ko", "timezone": "Asia/Seoul"},
            "digest": {"from": "부산 시정 소식 편집팀 <news@example.kr>",
                       "subject": "{{ site.title }}: 새 글 {{ posts | length }}편"},
            "server": {"public_url": "https://news.example.kr/"},
        }
    )  # fmt: skip
    dkim = None
    if mode == "dkim":
        pem = (REPO_DIR / "tests" / "data" / "dkim-test.key.pem").read_bytes()
        dkim = DkimKey.from_pem("example.kr", "feedsvc", pem, "tests/data/dkim-test.key.pem")
    renderer = Renderer(settings, Tokens(SECRET), dkim=dkim)
    posts = _posts()
    period = Period(
        Frequency.DAILY,
        "daily:2024-06-01@Asia/Seoul",
        datetime(2024, 5, 30, 23, tzinfo=UTC),
        datetime(2024, 5, 31, 23, tzinfo=UTC),
        "Asia/Seoul",
    )
    created = datetime(2024, 5, 31, 23, tzinfo=UTC)
    contents: list[DigestContent] = []
    for number, mix in enumerate(_mixes(mixes)):
        wanted = category_keys(mix)
        chosen = [p for p in posts if matches(p.meta.categories, wanted)][:20]
        contents.append(DigestContent(number + 1, period, tuple(reversed(chosen)), created))

    started = time.perf_counter()
    templates: list[MessageTemplate] = []
    if mode != "naive":
        templates = [render_digest(renderer.sender, c, renderer.env) for c in contents]
    rendered = time.perf_counter()
    total = 0
    for subscriber_id in range(1, subscribers + 1):
        index = subscriber_id % len(contents)
        if mode == "naive":
            template = render_digest(renderer.sender, contents[index], renderer.env)
        else:
            template = templates[index]
        person = renderer.personal(
            subscriber_id, f"reader{subscriber_id}@example.kr", f"구독자{subscriber_id % 997}"
        )
        _, data = renderer.message(template, person)
        total += len(data)
    finished = time.perf_counter()
    return Result(subscribers, len(contents), total, rendered - started, finished - rendered)


def child(mode: str, subscribers: int, mixes: int) -> None:
    result = workload(mode, subscribers, mixes)
    print(json.dumps(result.__dict__))


# --- the parent -------------------------------------------------------------------------


def _measure(mode: str, subscribers: int, mixes: int) -> tuple[Measurement, Result]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    argv += ["--subscribers", str(subscribers), "--mixes", str(mixes)]
    measurement = run_measured(argv, cwd=REPO_DIR)
    if not measurement.ok:
        raise BenchError(measurement.failure())
    return measurement, Result(**json.loads(measurement.stdout.strip().splitlines()[-1]))


def _feedsvc_version() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.subscribers, args.mixes)
        return 0
    subscribers = args.subscribers or (10_000 if args.quick else 100_000)
    runs = args.runs or (1 if args.quick else 3)
    rows: dict[str, tuple[Series, list[Result], int]] = {
        "feedsvc": (Series("feedsvc"), [], subscribers),
        "naive (reference)": (Series("naive"), [], args.sample),
        "feedsvc + DKIM": (Series("dkim"), [], args.dkim_sample),
    }
    modes = {"feedsvc": "fast", "naive (reference)": "naive", "feedsvc + DKIM": "dkim"}
    try:
        for round_number in range(runs):
            for name, (series, results, count) in rows.items():
                say(f"round {round_number + 1}/{runs}: {name}, {count:,} messages")
                measurement, result = _measure(modes[name], count, args.mixes)
                series.add(measurement)
                results.append(result)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1

    fast_rate = statistics.median(r.rate for r in rows["feedsvc"][1])
    table: list[list[str]] = []
    for name, (series, results, count) in rows.items():
        rate = statistics.median(r.rate for r in results)
        render_ms = statistics.median(r.render_s for r in results) * 1000
        kb = statistics.median(r.bytes for r in results) / count / 1024
        if name == "feedsvc":
            misses = [
                m
                for m, bad in (("speed", rate < MIN_RATE), ("RSS", series.peak_rss_mb > MAX_RSS_MB))
                if bad
            ]
            target = f"≥{MIN_RATE:,.0f}/s, ≤{MAX_RSS_MB:.0f} MB"
            verdict = "PASS" if not misses else "FAIL (" + ", ".join(misses) + ")"
        else:
            target, verdict = "reference" if "naive" in name else "cost (no target)", "—"
        table.append([
            name, f"{count:,}", f"{results[0].contents}", f"{render_ms:.0f}",
            f"{rate:,.0f}", f"{rate / fast_rate:.3f}×", f"{series.median_s:.2f}",
            f"{series.peak_rss_mb:.0f}", f"{kb:.1f}", target, verdict,
        ])  # fmt: skip
    facts = {**machine_info(), "feedsvc": _feedsvc_version()}
    facts["workload"] = (
        f"{args.mixes} category mixes (distinct digests), 30 posts of ~3 KB HTML, ≤20 per "
        "digest, Korean text; runs: " + str(runs)
    )
    print_facts("Machine and workload", facts)
    print_table(
        "Digest messages, personalised and ready to send",
        ["run", "messages", "digests", "render ms", "msgs/s", "× feedsvc", "wall s",
         "RSS MB", "KB/msg", "target", "result"],
        table,
        caption=(
            "msgs/s: messages over the child's work (render once + personalise), median of "
            "runs; render ms: rendering every distinct digest once (the naive path renders per "
            "message instead); wall s includes starting Python; RSS MB: peak resident memory."
        ),
    )  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({n: s.as_json() for n, (s, _, _) in rows.items()}, indent=2),
            encoding="utf-8",
        )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, help="messages (default 100000)")
    parser.add_argument("--mixes", type=int, default=20, help="category mixes (default 20)")
    parser.add_argument("--runs", type=int, help="runs of each (default 3)")
    parser.add_argument("--sample", type=int, default=1000, help="naive path's messages")
    parser.add_argument("--dkim-sample", type=int, default=500, help="DKIM row's messages")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="smoke check: 10000, 1 run")
    parser.add_argument("--child", choices=("fast", "naive", "dkim"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
