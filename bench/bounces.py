"""Benchmark: `feedsvc bounces process` reading 10,000 bounce messages from the inbox folder.

Measures, each in a fresh child process (wall time, CPU time, peak RSS):

- stdlib parse (reference)  Python reading every file of the same inbox and parsing it
                            with the standard library's email parser (``compat32``, the
                            parser feedsvc uses), walking every part: the floor of
                            reading this mail in Python, with nothing decided or stored;
- feedsvc bounces process   ``python -m feedsvc bounces process`` on a SQLite store with
                            10,000 subscribers and their deliveries: every message
                            classified (DSN, ARF, plain-text bounce, auto-reply), matched by
                            its VERP token, its signal kept and applied (hard bounces
                            bounce, complaints stop, soft bounces count) in transactions
                            of 500, and the file moved to processed/. Starting Python
                            included.

The inbox holds the shapes of tests/data/bounces (Postfix and Microsoft 365 DSNs, an
Exim DSN for a full mailbox, an ARF complaint, a Korean out-of-office reply), each
addressed to its own delivery's VERP address. Every run starts from the same store and
inbox (copied back between runs); runs are interleaved with the reference. Afterwards the
store is checked: one signal per message, every subscriber changed as its message says.
Target (issue #18): ≥ 1,000 messages/s.

    python bench/bounces.py               # 10,000 messages, 3 runs
    python bench/bounces.py --quick       # smoke check: 1,000 messages, 1 run

The exit status is 0 when every command worked, whatever the target says (this is a
report), and 1 when a command failed or the store is not as it must be.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    REPO_DIR,
    BenchError,
    Series,
    machine_info,
    print_facts,
    print_table,
    run_measured,
    say,
)

sys.path.insert(0, str(REPO_DIR))

TARGET_PER_S = 1000.0
SECRET = "bench-bounces-" + "k" * 40
TEMPLATE = "bounces+{token}@news.example.kr"
SAMPLES = REPO_DIR / "tests" / "data" / "bounces"
# (sample, share of the inbox, the status its subscriber must end with)
MIX = (
    ("postfix-user-unknown.eml", 5, "bounced"),
    ("o365-recipient-not-found.eml", 1, "bounced"),
    ("exim-mailbox-full.eml", 2, "active"),  # one soft bounce each: below the limit
    ("arf-abuse.eml", 1, "complained"),
    ("out-of-office-ko.eml", 1, "active"),
)
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

STDLIB_PARSE = """
import email, os, sys
from email.policy import compat32
n = 0
for entry in sorted(os.scandir(sys.argv[1]), key=lambda e: e.name):
    if entry.is_file():
        with open(entry.path, "rb") as f:
            message = email.message_from_bytes(f.read(), policy=compat32)
        n += sum(1 for _ in message.walk())
print(n)
"""


def _mix(count: int) -> list[tuple[str, str]]:
    """(sample, expected status) for each message, in the MIX's proportions."""
    cycle = [(name, status) for name, share, status in MIX for _ in range(share)]
    return [cycle[i % len(cycle)] for i in range(count)]


def prepare(folder: Path, count: int) -> tuple[Path, Path, Path, list[str]]:
    """The site (config, a prepared store file, a pristine inbox); the expected statuses."""
    from sqlalchemy import insert, select

    from feedsvc.delivery.return_path import ReturnPaths
    from feedsvc.storage import open_store
    from feedsvc.storage.schema import deliveries, digests, subscribers

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config = folder / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "site": {"title": "부산 시정 소식", "url": "https://news.example.kr/"},
                "digest": {"from": "부산 시정 소식 <news@news.example.kr>"},
                "storage": {"url": "sqlite:///state/feedsvc.db"},
                "delivery": {"return_path": TEMPLATE},
                "bounces": {"inbox_dir": "inbox"},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (folder / "state").mkdir()
    pristine_db = folder / "prepared.db"
    store = open_store(f"sqlite:///{pristine_db}")
    try:
        with store.write() as conn:
            conn.execute(
                insert(subscribers),
                [
                    {
                        "email": f"구독자{i}@example.kr",
                        "status": "active",
                        "frequency": "daily",
                        "categories": "[]",
                        "created": NOW,
                        "consent_source": "import",
                    }
                    for i in range(count)
                ],
            )
            digest = conn.execute(
                insert(digests)
                .values(
                    frequency="daily",
                    period_key="bench",
                    content_key="bench",
                    period_end=NOW,
                    post_ids="[]",
                    created_at=NOW,
                )
                .returning(digests.c.id)
            ).scalar_one()
            ids = list(conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalars())
            conn.execute(
                insert(deliveries),
                [
                    {
                        "digest_id": digest,
                        "subscriber_id": sid,
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": NOW,
                        "created_at": NOW,
                        "sent_at": NOW,
                    }
                    for sid in ids
                ],
            )
            delivery_ids = list(
                conn.execute(select(deliveries.c.id).order_by(deliveries.c.id)).scalars()
            )
    finally:
        store.close()
    paths = ReturnPaths(TEMPLATE, (SECRET.encode(),))
    pristine_inbox = folder / "prepared-inbox"
    pristine_inbox.mkdir()
    expected: list[str] = []
    for n, ((sample, status), delivery_id) in enumerate(
        zip(_mix(count), delivery_ids, strict=True)
    ):
        raw = (SAMPLES / sample).read_bytes()
        if b"bounces+" in raw:
            start = raw.index(b"bounces+") + len(b"bounces+")
            token = paths.token(delivery_id).encode()
            raw = raw.replace(raw[start : raw.index(b"@", start)], token)
        # One unique line per message: the same sample twice is two messages, not one.
        raw = f"X-Bench-Message: {n}\n".encode() + raw
        (pristine_inbox / f"{n:06d}.eml").write_bytes(raw)
        expected.append(status)
    return config, pristine_db, pristine_inbox, expected


def reset(folder: Path, pristine_db: Path, pristine_inbox: Path) -> None:
    for name in ("inbox",):
        shutil.rmtree(folder / name, ignore_errors=True)
    shutil.copytree(pristine_inbox, folder / "inbox")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder / 'state' / 'feedsvc.db'}{suffix}").unlink(missing_ok=True)
    shutil.copy(pristine_db, folder / "state" / "feedsvc.db")


def check_store(folder: Path, expected: Sequence[str]) -> str:
    """What the store holds after a run; BenchError when it is not what the mail said."""
    with sqlite3.connect(folder / "state" / "feedsvc.db") as db:
        signals = db.execute("SELECT count(*), count(DISTINCT key) FROM inbound_signals").fetchone()
        statuses = db.execute("SELECT status FROM subscribers ORDER BY id").fetchall()
    got = [row[0] for row in statuses]
    if signals != (len(expected), len(expected)):
        raise BenchError(
            f"{signals[0]} signals ({signals[1]} distinct) for {len(expected)} messages"
        )
    wrong = sum(1 for a, b in zip(got, expected, strict=True) if a != b)
    if wrong:
        raise BenchError(f"{wrong} subscribers do not have the status their message says")
    counts = {status: got.count(status) for status in sorted(set(got))}
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=None, help="default 10000")
    parser.add_argument("--runs", type=int, default=None, help="default 3")
    parser.add_argument("--quick", action="store_true", help="1,000 messages, 1 run")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench" / "out" / "bounces")
    args = parser.parse_args(argv)
    count = args.messages or (1000 if args.quick else 10_000)
    runs = args.runs or (1 if args.quick else 3)
    try:
        say(f"preparing {count:,} subscribers, deliveries and bounce messages")
        config, pristine_db, pristine_inbox, expected = prepare(args.out, count)
        env = {**os.environ, "FEEDSVC_SECRET_KEY": SECRET, "FEEDSVC_NOW": NOW.isoformat()}
        reference = Series("stdlib parse (reference)")
        feedsvc = Series("feedsvc bounces process")
        outcome = ""
        for round_ in range(runs):
            say(f"round {round_ + 1} of {runs}")
            reset(args.out, pristine_db, pristine_inbox)
            reference.add(
                run_measured([sys.executable, "-c", STDLIB_PARSE, str(args.out / "inbox")])
            )
            feedsvc.add(
                run_measured(
                    [
                        sys.executable,
                        "-m",
                        "feedsvc",
                        "--config",
                        str(config),
                        "bounces",
                        "process",
                    ],
                    cwd=args.out,
                    env=env,
                )
            )
            outcome = check_store(args.out, expected)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print_facts("machine", machine_info())
    print_facts("inbox", {"messages": f"{count:,}", "store afterwards": outcome})
    rows = []
    for series in (reference, feedsvc):
        rate = count / series.median_s
        ratio = series.median_s / reference.median_s
        target = "—" if series is reference else f"≥ {TARGET_PER_S:,.0f}/s"
        result = "—" if series is reference else ("met" if rate >= TARGET_PER_S else "not met")
        rows.append(
            [
                series.name,
                f"{series.best_s:.2f}",
                f"{series.median_s:.2f}",
                f"{series.median_cpu_s:.2f}",
                f"{rate:,.0f}",
                f"{ratio:.2f}×",
                f"{series.peak_rss_mb:.0f}",
                target,
                result,
            ]
        )
    print_table(
        f"{count:,} bounce messages, runs: {runs}",
        [
            "run",
            "best s",
            "median s",
            "CPU s",
            "messages/s",
            "× reference",
            "RSS MB",
            "target",
            "result",
        ],
        rows,
        caption="× reference: median wall time / the stdlib parse's. Starting Python included.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
