"""Benchmark: one digest to many subscribers over SMTP, end to end, vs the loopback limit.

Measures, each in a fresh child process (wall time, CPU time, peak RSS of the process tree):

- smtp-source (reference)  Postfix's C client sending the same number of messages of the
                           same size to the sink over 8 connections: the loopback limit;
- feedsvc digest send      ``python -m feedsvc digest send`` on a fresh SQLite store holding
                           the posts and N subscribers: plan and create the digests, render
                           every personalised message into the store, claim, send over
                           ``delivery.concurrency`` (8) pooled connections a process with
                           no rate limit (pipelined: smtp-sink offers PIPELINING), record
                           every 250. Starting Python included. Once with
                           ``delivery.workers: 1`` (one process) and once with 2 (a helper
                           process sends while the command renders, then both send).

The receiver is Postfix's ``smtp-sink`` on loopback (``apt-get install postfix``: only the
binaries are used; the postfix service is never started). Afterwards every delivery row
must be ``sent`` exactly once (the store is checked: zero lost, zero left, one attempt
each). Targets (issue #5): ≥ 2,000 messages/s, peak RSS ≤ 300 MB, zero lost, zero duplicates.

    python bench/send.py                  # 100,000 subscribers, workers 1 and 2
    python bench/send.py --workers 2      # only delivery.workers: 2
    python bench/send.py --quick          # smoke check: 10,000 subscribers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    BenchError,
    Measurement,
    ensure_commands,
    machine_info,
    print_facts,
    print_table,
    run_measured,
    say,
)

MORNING = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
CONCURRENCY = 8
WORKERS = (1, 2)  # delivery.workers: one process; one per core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_site(folder: Path, subscribers: int, port: int, workers: int = 1) -> Path:
    from sqlalchemy import insert

    from feedsvc.storage import open_store
    from feedsvc.storage.announcements import note_published
    from feedsvc.storage.schema import subscribers as table
    from tests.digest_helpers import sample_posts, site_mapping, store_post

    url = f"sqlite:///{folder / 'state.db'}"
    raw = site_mapping(
        storage={"url": url},
        delivery={
            "backend": "smtp",
            "concurrency": CONCURRENCY,
            "workers": workers,
            "rate": 1_000_000,
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none"},
        },
    )
    config = folder / "config.yaml"
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    store = open_store(url)
    joined = MORNING - timedelta(days=30)
    with store.write() as conn:
        for post in sample_posts():
            store_post(conn, post)
        note_published(conn, [p.meta for p in sample_posts()], MORNING - timedelta(hours=12))
        rows = [
            {
                "email": f"reader{i:06d}@example.kr",
                "name": f"독자{i}",
                "status": "active",
                "frequency": "daily",
                "categories": "[]",
                "timezone": None,
                "created": joined,
                "confirmed": joined,
            }
            for i in range(subscribers)
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[start : start + 5000])
    store.close()
    return config


def check_store(folder: Path) -> dict[str, int]:
    from sqlalchemy import func, select

    from feedsvc.storage import open_store
    from feedsvc.storage.schema import deliveries, delivery_messages

    store = open_store(f"sqlite:///{folder / 'state.db'}")
    with store.read() as conn:
        counts: dict[str, int] = {
            status: n
            for status, n in conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            )
        }
        attempts: dict[int, int] = {
            tries: n
            for tries, n in conn.execute(
                select(deliveries.c.attempts, func.count()).group_by(deliveries.c.attempts)
            )
        }
        size = conn.execute(select(func.avg(func.length(delivery_messages.c.message)))).scalar()
    store.close()
    return {**counts, "one attempt": attempts.get(1, 0), "avg bytes": int(size or 0)}


def send_once(count: int, port: int, workers: int) -> tuple[Measurement, dict[str, int]]:
    """One ``feedsvc digest send`` on a fresh store of ``count`` subscribers."""
    work = Path(tempfile.mkdtemp(prefix="feedsvc-send-"))
    try:
        say(f"setting up a store with {count:,} subscribers")
        config = make_site(work, count, port, workers)
        env = {**os.environ, "FEEDSVC_NOW": MORNING.isoformat(), "FEEDSVC_SECRET_KEY": "b" * 32}
        say(f"feedsvc digest send (delivery.workers: {workers})")
        ours = run_measured(
            [sys.executable, "-m", "feedsvc", "--config", str(config), "digest", "send"],
            cwd=work,
            env=env,
        )
        if not ours.ok:
            raise BenchError(ours.failure())
        return ours, check_store(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def smtp_source(count: int, size: int, port: int) -> Measurement:
    say(f"smtp-source: {count:,} messages of {size:,} bytes")
    ref = run_measured(
        [
            "smtp-source",
            "-s",
            str(CONCURRENCY),
            "-m",
            str(count),
            "-l",
            str(size),
            "-f",
            "news@example.kr",
            "-t",
            "reader@example.kr",
            f"127.0.0.1:{port}",
        ]
    )
    if not ref.ok:
        raise BenchError(ref.failure())
    return ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--workers",
        default=",".join(map(str, WORKERS)),
        help="delivery.workers values to run, comma-separated (default %(default)s)",
    )
    args = parser.parse_args()
    count = 10_000 if args.quick else args.subscribers
    workers = [int(w) for w in args.workers.split(",")]
    ensure_commands({"smtp-sink": "postfix", "smtp-source": "postfix"})
    port = free_port()
    sink = subprocess.Popen(
        ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs: list[tuple[int, Measurement, dict[str, int]]] = []
    try:
        time.sleep(0.3)
        for n in workers:
            ours, facts = send_once(count, port, n)
            runs.append((n, ours, facts))
        ref = smtp_source(count, runs[0][2]["avg bytes"], port)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    rows = [
        [
            "smtp-source (C, reference)",
            f"{ref.wall_s:.2f}",
            f"{count / ref.wall_s:,.0f}",
            f"{ref.peak_rss_bytes / 2**20:.1f}",
            "1.00×",
            "—",
            "—",
        ]
    ]
    outputs = []
    for n, ours, facts in runs:
        rows.append(
            [
                f"feedsvc digest send, delivery.workers: {n}",
                f"{ours.wall_s:.2f}",
                f"{count / ours.wall_s:,.0f}",
                f"{ours.peak_rss_bytes / 2**20:.1f}",
                f"{ref.wall_s / ours.wall_s:.2f}×",
                str(count - facts.get("sent", 0)),
                str(count - facts["one attempt"]),
            ]
        )
        outputs.append(f"workers {n}: {ours.stdout.strip().splitlines()[-1]}")
    print_facts("machine", machine_info())
    print_table(
        f"{count:,} messages to smtp-sink on loopback, {CONCURRENCY} connections a process",
        ["run", "wall s", "messages/s", "peak RSS MB", "speed vs smtp-source", "lost", "dup"],
        rows,
        caption=(
            "lost: rows not sent afterwards; dup: rows tried more than once (from the store). "
            f"Messages average {runs[0][2]['avg bytes']:,} bytes. feedsvc said: "
            + "; ".join(outputs)
        ),
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
