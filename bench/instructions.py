"""Benchmark: the instructions `feedsvc build` executes, counted by callgrind — this checkout
against another, on the same corpus.

Wall and CPU times on these shared machines move by ±20 % from one minute to the next
(bench/build.py's figures are medians of interleaved rounds for that reason). An
instruction count does not move: valgrind's callgrind counts every instruction the build
and its forked workers execute, the same for the same code and input whatever else the
machine is doing. It is no time — a cache miss costs more than an add — but a change of
a few percent in it is a change in the work done, measured exactly.

For each checkout (this one, and ``--against DIR``), on the bench corpus (10,000 posts):

- cold, RSS only    a new store and no output (bench/build.py's "feedsvc cold");
- warm, RSS only    the same again with nothing changed;
- cold, all feeds   RSS, Atom and JSON Feed, site-wide and per category;
- warm, all feeds.

    python bench/instructions.py --against /tmp/old     # ~15 min: valgrind is ~50× slower
    python bench/instructions.py --posts 2000 --against /tmp/old

feedsvc's bytecode is written first in both checkouts (bench/_common.compile_feedsvc).
valgrind is installed with apt-get when it is missing. Exit status 0 when every build
worked, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import (
    REPO_DIR,
    BenchError,
    add_shared_option,
    command_version,
    compile_feedsvc,
    ensure_commands,
    ensure_corpus,
    machine_info,
    print_facts,
    print_table,
    say,
)

FEEDSVC_ENV_OVERRIDES = ("FEEDSVC_CONFIG", "FEEDSVC_STORAGE_URL")
SITES = {
    "RSS only": {"formats": ["rss"], "per_category": False},  # like bench/build.py's Hugo row
    "all feeds": {},
}
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def site_config(root: Path, posts_dir: Path, feeds: dict[str, object]) -> Path:
    """A site folder for one checkout and kind of site; its config file."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "site": {
            "title": "bench",
            "url": "http://127.0.0.1:8080/",
            "language": "ko",
            "timezone": "Asia/Seoul",
        },
        "content": {"dir": str(posts_dir)},
        "feeds": {"output_dir": str(root / "public"), **feeds},
        "storage": {"url": f"sqlite:///{root / 'state' / 'feedsvc.db'}"},
    }
    path = root / "config.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
    return path


def counted_build(config: Path, checkout: Path | None, *, cold: bool) -> int:
    """Instructions of one ``feedsvc build`` and every process it forks."""
    root = config.parent
    if cold:
        shutil.rmtree(root / "state", ignore_errors=True)
        shutil.rmtree(root / "public", ignore_errors=True)
    (root / "state").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in FEEDSVC_ENV_OVERRIDES}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    with tempfile.TemporaryDirectory(prefix="callgrind-") as out:
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={out}/callgrind.%p",
            sys.executable,
            "-m",
            "feedsvc",
            "--config",
            str(config),
            "build",
        ]
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"feedsvc build under valgrind failed ({config}):\n{done.stderr[-2000:]}")
    counts = [int(m.group(1).replace(",", "")) for m in _REFS.finditer(done.stderr)]
    if not counts:
        raise BenchError(f"valgrind reported no instruction count for {config}")
    return sum(counts)


def count_checkout(out: Path, posts_dir: Path, name: str, checkout: Path | None) -> dict[str, int]:
    """Cold then warm builds of each kind of site by one checkout: row name → count."""
    counts: dict[str, int] = {}
    for kind, feeds in SITES.items():
        config = site_config(
            out / f"instructions-{name}-{kind.split()[0].lower()}", posts_dir, feeds
        )
        for cold in (True, False):
            row = f"{'cold' if cold else 'warm'}, {kind}"
            counts[row] = counted_build(config, checkout, cold=cold)
            say(f"{name}: {row}: {counts[row] / 1e9:.3f} G instructions")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10000, help="posts (default 10000)")
    parser.add_argument("--against", type=Path, metavar="DIR", help="another feedsvc checkout")
    parser.add_argument(
        "--out", type=Path, default=REPO_DIR / "bench" / "out", help="working folder"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    add_shared_option(parser)
    args = parser.parse_args(argv)
    if args.posts < 1:
        parser.error("--posts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    try:
        ensure_commands({"valgrind": "valgrind"})
        package = compile_feedsvc()
        against = None if args.against is None else args.against.resolve()
        label = "—"
        if against is not None:
            compile_feedsvc(against)
            label = command_version(["git", "-C", str(against), "rev-parse", "--short", "HEAD"])
        posts_dir = ensure_corpus(out / "posts", args.posts, shared_dir=args.shared)
        jobs = {"this": None, **({"against": against} if against is not None else {})}
        # Two checkouts at once: the counts do not depend on what else runs.
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {
                n: pool.submit(count_checkout, out, posts_dir, n, c) for n, c in jobs.items()
            }
            counts = {n: f.result() for n, f in futures.items()}
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_facts(
        "Machine", {**machine_info(), "valgrind": command_version(["valgrind", "--version"])}
    )
    print_facts("Corpus", {"posts": str(args.posts), "folder": str(posts_dir), "feedsvc": package})
    print()
    rows = []
    for row, now in counts["this"].items():
        then = counts.get("against", {}).get(row)
        change = f"{(now / then - 1) * 100:+.1f} %" if then else "—"
        rows.append([row, f"{then / 1e9:.3f}" if then else "—", f"{now / 1e9:.3f}", change])
    print_table(
        f"feedsvc build: instructions (G), this checkout against {against or '—'} [{label}]",
        ["build", "then", "now", "change"],
        rows,
        caption="Every instruction of the build and its forked workers (callgrind).",
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"benchmark": "instructions", "posts": args.posts, "counts": counts}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
