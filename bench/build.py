"""Benchmark: `feedsvc build` (cold and warm) against Hugo on the same corpus.

Measures, on the synthetic corpus (tests/corpus.py, 10,000 posts by default):

- hugo          ``hugo --quiet -d DIR`` on a site whose content/posts is the corpus,
                RSS output only, 20 items (the reference, measured in the same run);
- feedsvc cold  ``python -m feedsvc --config CFG build`` in a fresh process with an
                empty store and no output folder;
- feedsvc warm  the same command again with nothing changed.

Each is run --runs times, interleaved (hugo, cold, warm per round) so that noise on the
machine hits all three alike. The table gives best and median wall time, median CPU
time (user + system), the ratio of medians to Hugo's, the peak RSS of the child, and
the targets: cold ≤ 1.0× Hugo, warm ≤ 0.5× Hugo, peak RSS ≤ 400 MB. Peak RSS is
summed over the child's process tree (feedsvc parses in forked workers), sampled
every 50 ms, next to the largest single process from wait4's ru_maxrss.

    python bench/build.py                 # 10,000 posts, 3 runs, files in bench/out/
    python bench/build.py --quick         # smoke check: 1,000 posts, 1 run
    python bench/build.py --posts 20000 --runs 5 --json bench/out/build.json
    python bench/build.py --runs 9 --against /tmp/old   # side by side with another checkout

``--against DIR`` measures a second feedsvc checkout (e.g. ``git worktree add /tmp/old
c5cadab``) in the same rounds, run with PYTHONPATH=DIR: its rows are marked with the
commit, and a last table gives each of this checkout's medians against that one's. On a
noisy machine only builds measured in the same rounds compare; separate runs of this
script differ by ±20 % here.

feedsvc's bytecode is written first (compile_feedsvc), as ``pip install`` does: a checkout
run in place with PYTHONDONTWRITEBYTECODE set would otherwise compile its source in every
run. Hugo is installed with apt-get when it is missing (needs root). The exit status is 0
when every command worked, whatever the targets say (this is a report), and 1 when a
command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import (
    REPO_DIR,
    BenchError,
    Measurement,
    Series,
    add_shared_option,
    command_version,
    compile_feedsvc,
    ensure_commands,
    ensure_corpus,
    machine_info,
    print_facts,
    print_table,
    read_all_files,
    run_measured,
    say,
)

FEED_LIMIT = 20
# The real CLI in a fresh interpreter of this venv (feedsvc/__main__.py).
FEEDSVC = (sys.executable, "-m", "feedsvc")
MAX_RSS_MB = 400.0
# feedsvc reads these from the environment over config.yaml; the benchmark must not.
FEEDSVC_ENV_OVERRIDES = ("FEEDSVC_CONFIG", "FEEDSVC_STORAGE_URL")

HUGO_CONFIG = f"""\
baseURL = "http://127.0.0.1:8080/"
title = "bench"
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]
[outputs]
home = ["RSS"]
section = ["RSS"]
page = []
[frontmatter]
date = [":filename", ":default"]
[services.rss]
limit = {FEED_LIMIT}
"""


@dataclass(frozen=True)
class Target:
    """What a row must reach: a ratio of its median to Hugo's, and a peak RSS."""

    max_ratio: float
    max_rss_mb: float = MAX_RSS_MB

    def describe(self) -> str:
        return f"≤{self.max_ratio:.1f}× Hugo, ≤{self.max_rss_mb:.0f} MB"

    def verdict(self, ratio: float, rss_mb: float) -> str:
        misses = []
        if ratio > self.max_ratio:
            misses.append("time")
        if rss_mb > self.max_rss_mb:
            misses.append("RSS")
        return "PASS" if not misses else "FAIL (" + ", ".join(misses) + ")"


TARGETS = {
    "feedsvc cold": Target(max_ratio=1.0),
    "feedsvc warm": Target(max_ratio=0.5),
    "feedsvc cold, all feeds": Target(max_ratio=1.0),
    "feedsvc warm, all feeds": Target(max_ratio=0.5),
}

# Like for like: Hugo is set up to write RSS only (home and section). The "all feeds"
# rows use feedsvc's defaults: RSS, Atom and JSON Feed, site-wide and per category.
LIKE_HUGO_FEEDS: dict[str, object] = {"formats": ["rss"], "per_category": False}


# --- the two sites ------------------------------------------------------------------


@dataclass(frozen=True)
class HugoSite:
    """A Hugo site whose content/posts is a symlink to the corpus."""

    root: Path

    @property
    def public(self) -> Path:
        return self.root / "public"

    @classmethod
    def make(cls, root: Path, posts_dir: Path) -> HugoSite:
        content = root / "content"
        content.mkdir(parents=True, exist_ok=True)
        (root / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
        link = content / "posts"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(posts_dir, target_is_directory=True)
        return cls(root)

    def build(self) -> Measurement:
        # Hugo keeps no state between builds (no resources here), but it never deletes
        # stale files in the destination: start each run from an empty one.
        shutil.rmtree(self.public, ignore_errors=True)
        return run_measured(["hugo", "--quiet", "-d", str(self.public)], cwd=self.root)

    def check(self, expected_items: int) -> None:
        feed = self.public / "index.xml"
        if not feed.is_file():
            raise BenchError(f"hugo exited 0 but wrote no {feed}")
        items = count_items(feed)
        if items != expected_items:
            raise BenchError(f"{feed} holds {items} items, not {expected_items}")


@dataclass(frozen=True)
class FeedsvcSite:
    """A feedsvc site folder: config.yaml, state/ (the store) and public/; ``checkout``:
    the feedsvc checkout that builds it (None: the one this interpreter imports)."""

    root: Path
    checkout: Path | None = None

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @classmethod
    def make(
        cls,
        root: Path,
        posts_dir: Path,
        feeds: dict[str, object] | None = None,
        checkout: Path | None = None,
    ) -> FeedsvcSite:
        site = cls(root, checkout)
        root.mkdir(parents=True, exist_ok=True)
        # Only keys of feedsvc/config.py: unknown keys are rejected.
        config = {
            "site": {
                "title": "bench",
                "url": "http://127.0.0.1:8080/",
                "language": "ko",
                "timezone": "Asia/Seoul",
            },
            "content": {"dir": str(posts_dir)},
            "feeds": {"output_dir": str(site.public), **(feeds or {})},
            # The store (and anything feedsvc keeps next to it, such as the token
            # secret) lives in state/, so a cold run can remove all of it at once.
            "storage": {"url": f"sqlite:///{site.state / 'feedsvc.db'}"},
        }
        # JSON is YAML; it keeps the benchmark free of a YAML writer.
        site.config.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return site

    def command(self) -> list[str]:
        return [*FEEDSVC, "--config", str(self.config), "build"]

    def build(self, *, cold: bool) -> Measurement:
        if cold:
            shutil.rmtree(self.state, ignore_errors=True)
            shutil.rmtree(self.public, ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)  # SQLite creates files, not folders
        env = {k: v for k, v in os.environ.items() if k not in FEEDSVC_ENV_OVERRIDES}
        if self.checkout is not None:
            env["PYTHONPATH"] = str(self.checkout)
        return run_measured(self.command(), cwd=self.root, env=env)

    def check(self, expected_items: int) -> None:
        feed = self.public / "feed.xml"
        if not feed.is_file():
            raise BenchError(f"feedsvc build exited 0 but wrote no {feed}")
        items = count_items(feed)
        if items != expected_items:
            raise BenchError(f"{feed} holds {items} items, not {expected_items}")

    def output_files(self) -> dict[str, int]:
        """Every file in public/ with its modification time (ns)."""
        return {
            str(p.relative_to(self.public)): p.stat().st_mtime_ns
            for p in self.public.rglob("*")
            if p.is_file()
        }


@dataclass(frozen=True)
class Against:
    """Another feedsvc checkout measured in the same rounds, and its label (the commit)."""

    checkout: Path
    label: str

    @classmethod
    def of(cls, checkout: Path) -> Against:
        compile_feedsvc(checkout)
        commit = command_version(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"])
        return cls(checkout, commit if commit and " " not in commit else checkout.name)


def make_sites(
    out: Path, posts_dir: Path, against: Against | None
) -> list[tuple[str, FeedsvcSite]]:
    """(row suffix, site) of each feedsvc site: RSS only (like Hugo) and all feeds, each
    followed by its twin built by the other checkout, if any."""
    sites = []
    for suffix, name, feeds in (
        ("", "feedsvc-rss", LIKE_HUGO_FEEDS),
        (", all feeds", "feedsvc", None),
    ):
        sites.append((suffix, FeedsvcSite.make(out / name, posts_dir, feeds)))
        if against is not None:
            twin = FeedsvcSite.make(
                out / f"{name}-against", posts_dir, feeds, checkout=against.checkout
            )
            sites.append((f"{suffix} [{against.label}]", twin))
    return sites


def against_rows(series: Sequence[Series]) -> list[list[str]]:
    """Each row of this checkout beside its twin's: median wall and CPU, and the change."""
    by_name = {s.name: s for s in series}
    rows = []
    for s in series:
        twin = next((t for n, t in by_name.items() if n.startswith(s.name + " [")), None)
        if twin is None:
            continue
        rows.append(
            [
                s.name,
                f"{twin.median_s:.3f}",
                f"{s.median_s:.3f}",
                f"{(s.median_s / twin.median_s - 1) * 100:+.1f} %",
                f"{twin.median_cpu_s:.3f}",
                f"{s.median_cpu_s:.3f}",
                f"{(s.median_cpu_s / twin.median_cpu_s - 1) * 100:+.1f} %",
            ]
        )
    return rows


def count_items(feed: Path) -> int:
    return len(re.findall(rb"<item>", feed.read_bytes()))


# --- the benchmark ------------------------------------------------------------------


@dataclass
class Observations:
    """Things worth telling besides the timings."""

    hugo_files: int = 0
    feedsvc_files: int = 0
    warm_rewrites: int = 0  # files whose mtime changed in a warm run (should be 0)
    feedsvc_stderr: str = ""


def run_benchmark(
    hugo: HugoSite,
    sites: Sequence[tuple[str, FeedsvcSite]],
    runs: int,
    expected_items: int,
) -> tuple[list[Series], Observations]:
    """Rounds of Hugo, then cold and warm builds of each feedsvc site (suffix, site)."""
    hugo_runs = Series("hugo")
    cold_runs = [Series(f"feedsvc cold{suffix}") for suffix, _ in sites]
    warm_runs = [Series(f"feedsvc warm{suffix}") for suffix, _ in sites]
    seen = Observations()
    for round_no in range(1, runs + 1):
        m = hugo_runs.add(hugo.build())
        hugo.check(expected_items)
        say(f"round {round_no}/{runs}: hugo {m.wall_s:.2f} s")
        for (suffix, feedsvc), cold, warm in zip(sites, cold_runs, warm_runs, strict=True):
            m = cold.add(feedsvc.build(cold=True))
            feedsvc.check(expected_items)
            seen.feedsvc_stderr = seen.feedsvc_stderr or m.stderr.strip()
            say(f"round {round_no}/{runs}: feedsvc cold{suffix} {m.wall_s:.2f} s")

            before = feedsvc.output_files()
            m = warm.add(feedsvc.build(cold=False))
            feedsvc.check(expected_items)
            after = feedsvc.output_files()
            seen.warm_rewrites += sum(1 for f, t in after.items() if before.get(f) != t)
            say(f"round {round_no}/{runs}: feedsvc warm{suffix} {m.wall_s:.2f} s")
    seen.hugo_files = sum(1 for p in hugo.public.rglob("*") if p.is_file())
    seen.feedsvc_files = max(len(site.output_files()) for _, site in sites)
    series = [hugo_runs]
    for cold, warm in zip(cold_runs, warm_runs, strict=True):
        series += [cold, warm]
    return series, seen


def report_rows(series: Sequence[Series]) -> list[dict[str, object]]:
    """The figures of each row, with ratio and verdict (JSON and table use these)."""
    reference = series[0].median_s
    rows: list[dict[str, object]] = []
    for s in series:
        ratio = s.median_s / reference
        row: dict[str, object] = {**s.as_json(), "ratio_vs_hugo": round(ratio, 3)}
        target = TARGETS.get(s.name)
        if target is not None:
            row["target"] = target.describe()
            row["result"] = target.verdict(ratio, s.peak_rss_mb)
        rows.append(row)
    return rows


def print_report(
    series: Sequence[Series],
    rows: Sequence[dict[str, object]],
    machine: dict[str, str],
    corpus: dict[str, str],
    notes: Sequence[str],
) -> None:
    print_facts("Machine", machine)
    print_facts("Corpus", corpus)
    print()
    table_rows = []
    for s, row in zip(series, rows, strict=True):
        table_rows.append(
            [
                s.name,
                f"{s.best_s:.3f}",
                f"{s.median_s:.3f}",
                f"{s.median_cpu_s:.3f}",
                f"{row['ratio_vs_hugo']:.2f}×",
                f"{s.peak_rss_mb:.0f}",
                f"{s.max_process_rss_mb:.0f}",
                str(row.get("target", "reference" if s is series[0] else "—")),
                str(row.get("result", "—")),
            ]
        )
    print_table(
        f"feedsvc build vs Hugo: {corpus['posts']} posts, runs: {len(series[0].runs)}",
        ["run", "best s", "median s", "CPU s", "× Hugo", "RSS MB", "1 proc MB", "target", "result"],
        table_rows,
        caption=(
            "× Hugo: median / Hugo's median wall time. CPU s: median user + system time.\n"
            "RSS MB: peak of the process tree's summed RSS, sampled every 50 ms (the target).\n"
            "1 proc MB: the largest single process (ru_maxrss from wait4)."
        ),
    )
    for note in notes:
        print("note: " + note)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="feedsvc build (cold, warm) against Hugo on the same corpus."
    )
    parser.add_argument("--posts", type=int, help="posts in the corpus (default 10000)")
    parser.add_argument("--runs", type=int, help="runs of each (default 3)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_DIR / "bench" / "out",
        help="working folder: corpus, sites, outputs (default bench/out)",
    )
    add_shared_option(parser)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="another feedsvc checkout to measure in the same rounds (run with PYTHONPATH=DIR)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: 1000 posts, 1 run")
    args = parser.parse_args(argv)
    args.posts = args.posts if args.posts is not None else (1000 if args.quick else 10000)
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.posts < 1 or args.runs < 1:
        parser.error("--posts and --runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    try:
        ensure_commands({"hugo": "hugo"})
        package = compile_feedsvc()
        against = None if args.against is None else Against.of(args.against.resolve())
        posts_dir = ensure_corpus(out / "posts", args.posts, shared_dir=args.shared)
        corpus_bytes = read_all_files(posts_dir)  # warm the page cache for every run alike
        hugo = HugoSite.make(out / "hugo", posts_dir)
        sites = make_sites(out, posts_dir, against)
        version = run_measured([*FEEDSVC, "--version"])
        if not version.ok:
            raise BenchError(f"feedsvc cannot start: {version.failure()}")
        expected_items = min(FEED_LIMIT, args.posts)
        series, seen = run_benchmark(hugo, sites, args.runs, expected_items)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    machine = {
        **machine_info(),
        "hugo": command_version(["hugo", "version"]),
        "feedsvc": (version.stdout.strip() or version.stderr.strip()) + f" ({package})",
    }
    corpus = {
        "posts": str(args.posts),
        "folder": f"{posts_dir} ({corpus_bytes / 2**20:.0f} MB)",
        "files written": f"hugo {seen.hugo_files}, feedsvc 1 (RSS only, like Hugo) "
        f"or {seen.feedsvc_files} (all feeds)",
    }
    rows = report_rows(series)
    notes = []
    if seen.warm_rewrites:
        notes.append(
            f"warm runs rewrote {seen.warm_rewrites} file(s) with nothing changed "
            "(files are written only when their bytes change)"
        )
    if seen.feedsvc_stderr:
        lines = seen.feedsvc_stderr.splitlines()
        shown = "\n      ".join(lines[:5])
        notes.append(f"feedsvc cold build wrote {len(lines)} line(s) to stderr:\n      {shown}")
    print_report(series, rows, machine, corpus, notes)
    compared = against_rows(series)
    if compared:
        print()
        print_table(
            f"This checkout against {args.against}: medians over the same {args.runs} rounds",
            ["run", "then s", "now s", "change", "then CPU s", "now CPU s", "change"],
            compared,
        )
    if args.json is not None:
        document = {
            "benchmark": "build",
            "machine": machine,
            "corpus": corpus,
            "runs": args.runs,
            "rows": rows,
            "against": compared,
            "notes": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
