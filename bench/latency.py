"""Benchmark: from saving a post to new bytes in public/feed.xml, under `feedsvc run`.

A running daemon (``python -m feedsvc run``, a fresh process) over the synthetic
corpus (tests/corpus.py, 10,000 posts by default) plus one post of ours, dated now so
that it is the first item of the feed. The script rewrites that one file --edits times
(a new sentence each time) and, for each write, measures the wall time until
public/feed.xml holds the new sentence (polled every millisecond). It also samples the
daemon's resident memory (the process and any workers) throughout.

    python bench/latency.py               # 10,000 posts, 50 edits
    python bench/latency.py --quick       # smoke check: 1,000 posts, 10 edits

Targets: p50 ≤ 100 ms, p99 ≤ 500 ms, daemon RSS ≤ 300 MB. There is no reference tool: the
latency of a watcher plus an incremental build has no standard counterpart (absolute
targets, as for http.py). The exit status is 0 when every step worked, whatever the
targets say (this is a report), and 1 when the daemon failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    REPO_DIR,
    BenchError,
    TreeRssSampler,
    add_shared_option,
    ensure_corpus,
    machine_info,
    print_facts,
    print_table,
    say,
)

P50_TARGET_MS = 100.0
P99_TARGET_MS = 500.0
RSS_TARGET_MB = 300.0
POST_NAME = "zz-latency-측정.md"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_post(path: Path, edit: int, stamp: str) -> str:
    """Write our post; the sentence that marks this edit."""
    marker = f"편집 번호 {edit:04d} 반영 확인"
    path.write_text(
        f'---\ntitle: "지연 측정용 글"\ndate: {stamp}\ncategories: [측정]\n---\n\n'
        f"{marker}. 해운대와 광안리 소식을 전합니다.\n",
        encoding="utf-8",
    )
    return marker


def make_site(root: Path, corpus: Path, port: int) -> Path:
    if root.exists():
        shutil.rmtree(root)
    content = root / "content"
    say(f"copying the corpus to {content}")
    shutil.copytree(corpus, content)
    config = {
        "site": {
            "title": "bench",
            "url": f"http://127.0.0.1:{port}/",
            "language": "ko",
            "timezone": "Asia/Seoul",
        },
        "content": {"dir": str(content)},
        "feeds": {"output_dir": str(root / "public")},
        "storage": {"url": f"sqlite:///{root / 'state' / 'feedsvc.db'}"},
        "server": {"host": "127.0.0.1", "port": port},
        "delivery": {"backend": "outbox", "outbox_dir": str(root / "outbox")},
    }
    (root / "state").mkdir(parents=True)
    path = root / "config.yaml"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def wait_for_text(path: Path, text: str, timeout: float) -> float:
    """Seconds until ``path`` holds ``text`` (polled every millisecond)."""
    started = time.perf_counter()
    needle = text.encode()
    while True:
        try:
            if needle in path.read_bytes():
                return time.perf_counter() - started
        except FileNotFoundError:
            pass
        if time.perf_counter() - started > timeout:
            raise BenchError(f"{path} did not show {text!r} within {timeout:.0f} s")
        time.sleep(0.001)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench" / "out")
    add_shared_option(parser)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="1,000 posts, 10 edits")
    args = parser.parse_args(argv)
    if args.quick:
        args.posts, args.edits = 1_000, 10

    corpus = ensure_corpus(args.out / "posts", args.posts, shared_dir=args.shared)
    root = args.out / "latency"
    port = free_port()
    config = make_site(root, corpus, port)
    post = root / "content" / POST_NAME
    stamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    marker = write_post(post, 0, stamp)
    feed = root / "public" / "feed.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("FEEDSVC_CONFIG", "FEEDSVC_NOW")}
    env.pop("FEEDSVC_STORAGE_URL", None)
    log_path = root / "daemon.log"
    say(f"starting feedsvc run on {args.posts:,} posts (log: {log_path})")
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "--config", str(config), "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    latencies: list[float] = []
    try:
        with TreeRssSampler(daemon.pid) as rss:
            started = time.perf_counter()
            first_build = wait_for_text(feed, marker, timeout=600)
            say(f"first build done after {first_build:.1f} s")
            time.sleep(1.0)  # let the start-up cycle and the watcher settle
            for edit in range(1, args.edits + 1):
                marker = write_post(post, edit, stamp)
                latencies.append(wait_for_text(feed, marker, timeout=30))
                if daemon.poll() is not None:
                    raise BenchError(f"the daemon exited with {daemon.returncode}")
                time.sleep(0.05)  # edits a person makes are not back to back
            steady_rss = rss.sample()
        elapsed = time.perf_counter() - started
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
    if code != 0:
        raise BenchError(f"feedsvc run exited with {code} after SIGTERM; see {log_path}")

    ms = [value * 1000 for value in latencies]
    p50, p99 = statistics.median(ms), percentile(ms, 0.99)
    peak_mb, steady_mb = rss.peak_bytes / 2**20, steady_rss / 2**20
    print_facts("machine", machine_info())
    print_facts(
        "run",
        {
            "posts": f"{args.posts:,} + 1 edited",
            "edits": str(args.edits),
            "first build (cold, in the daemon)": f"{first_build:.1f} s",
            "total": f"{elapsed:.1f} s",
        },
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    print_table(
        "write → new bytes in public/feed.xml (feedsvc run)",
        ["measure", "value", "target", ""],
        [
            ["p50", f"{p50:.0f} ms", f"≤ {P50_TARGET_MS:.0f} ms", verdict(p50 <= P50_TARGET_MS)],
            ["p99", f"{p99:.0f} ms", f"≤ {P99_TARGET_MS:.0f} ms", verdict(p99 <= P99_TARGET_MS)],
            ["min", f"{min(ms):.0f} ms", "", ""],
            ["max", f"{max(ms):.0f} ms", "", ""],
            [
                "daemon RSS, peak (with workers)",
                f"{peak_mb:.0f} MB",
                f"≤ {RSS_TARGET_MB:.0f} MB",
                verdict(peak_mb <= RSS_TARGET_MB),
            ],
            [
                "daemon RSS, after the edits",
                f"{steady_mb:.0f} MB",
                f"≤ {RSS_TARGET_MB:.0f} MB",
                verdict(steady_mb <= RSS_TARGET_MB),
            ],
        ],
    )
    if args.json is not None:
        document = {
            "posts": args.posts,
            "edits": args.edits,
            "latency_ms": ms,
            "p50_ms": p50,
            "p99_ms": p99,
            "first_build_s": first_build,
            "peak_rss_mb": peak_mb,
            "steady_rss_mb": steady_mb,
            "machine": machine_info(),
        }
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
