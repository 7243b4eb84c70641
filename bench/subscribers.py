"""Benchmark: `feedsvc subscribers import` of a 100,000-row CSV, SQLite and PostgreSQL.

Measures, each in a fresh child process (wall time, CPU time, peak RSS):

- sqlite3 executemany   the reference for SQLite: Python's sqlite3 module inserting the
                        same CSV rows (csv.reader, executemany, 1,000 rows a transaction,
                        WAL) into a table with a unique index on email; no validation;
- feedsvc SQLite new    ``python -m feedsvc subscribers import --allow-test-domains CSV``
                        into a new SQLite store (created and migrated by that command);
- feedsvc SQLite again  the same import again: every row is an update;
- psql \\copy            the reference for PostgreSQL ("the loopback limit"): psql COPY of
                        the same CSV into a table with a unique index on email;
- feedsvc PG new        the import into an empty PostgreSQL schema;
- feedsvc PG again      the same import again (updates).

feedsvc's rows include starting Python, validating every address with email-validator and
every field, the upsert, and one event row per subscriber; the references do none of
that. Runs are interleaved (one of each per round) so that noise on the machine falls on
all alike. Targets (issue #3): ≥ 20,000 rows/s on SQLite, ≥ 10,000 rows/s on PostgreSQL,
peak RSS ≤ 200 MB.

    python bench/subscribers.py                  # 100,000 rows, 3 runs
    python bench/subscribers.py --quick          # smoke check: 10,000 rows, 1 run
    python bench/subscribers.py --pg-url postgresql://postgres@127.0.0.1:5432/test

PostgreSQL comes from --pg-url, else $FEEDSVC_TEST_DATABASE_URL, else the local test
database; its rows are skipped (with a note) when it does not answer. psql is installed
with apt-get (postgresql-client) when missing. The exit status is 0 when every command
worked, whatever the targets say (the table is the report), and 1 when one failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
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
    corpus_script,
    ensure_commands,
    generator_stamp,
    machine_info,
    made_by,
    print_facts,
    print_table,
    run_generator,
    run_measured,
    say,
)

FEEDSVC = (sys.executable, "-m", "feedsvc")
SCHEMA = "bench_subscribers"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MAX_RSS_MB = 200.0
BATCH = 1000
# feedsvc reads these from the environment over config.yaml; the benchmark must not.
FEEDSVC_ENV_OVERRIDES = ("FEEDSVC_CONFIG", "FEEDSVC_STORAGE_URL")


@dataclass(frozen=True)
class Target:
    min_rows_per_s: float
    max_rss_mb: float = MAX_RSS_MB

    def describe(self) -> str:
        return f"≥{self.min_rows_per_s:,.0f} rows/s, ≤{self.max_rss_mb:.0f} MB"

    def verdict(self, rows_per_s: float, rss_mb: float) -> str:
        misses = []
        if rows_per_s < self.min_rows_per_s:
            misses.append("speed")
        if rss_mb > self.max_rss_mb:
            misses.append("RSS")
        return "PASS" if not misses else "FAIL (" + ", ".join(misses) + ")"


SQLITE_TARGET = Target(min_rows_per_s=20_000)
PG_TARGET = Target(min_rows_per_s=10_000)


# --- the corpus ---------------------------------------------------------------------


def ensure_csv(out: Path, rows: int, *, shared_dir: Path | None = None) -> Path:
    """The subscriber CSV of ``rows`` rows from the corpus generator (tests/corpus.py, or
    the shared make_corpus.py with --shared), made once and then reused."""
    path = out / f"subscribers-{rows}.csv"
    script = corpus_script(shared_dir)
    stamp = generator_stamp(script, "--subscribers", rows)
    if path.is_file() and _count_lines(path) == rows + 1 and made_by(path, stamp):
        say(f"reusing {path}")
        return path
    no_posts = out / "no-posts"
    argv = [str(no_posts), "--posts", "0", "--subscribers", str(rows), "--csv", str(path)]
    try:
        run_generator(script, argv, path, stamp)
    finally:
        shutil.rmtree(no_posts, ignore_errors=True)
    if _count_lines(path) != rows + 1:
        raise BenchError(f"{script.name} wrote {_count_lines(path) - 1} rows, not {rows}")
    return path


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


# --- the SQLite reference (run in a child: ``--reference-sqlite DB CSV``) --------------


def reference_sqlite(database: Path, csv_path: Path) -> int:
    """Insert the CSV's rows with sqlite3's executemany; the number of rows."""
    database.unlink(missing_ok=True)
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE subscribers (id INTEGER PRIMARY KEY, email VARCHAR(320) NOT NULL, "
        "name TEXT, frequency TEXT, categories TEXT)"
    )
    conn.execute("CREATE UNIQUE INDEX ix_email ON subscribers (email)")
    sql = "INSERT INTO subscribers (email, name, frequency, categories) VALUES (?, ?, ?, ?)"
    count = 0
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == BATCH:
                count += _insert(conn, sql, batch)
        count += _insert(conn, sql, batch)
    conn.close()
    return count


def _insert(conn: sqlite3.Connection, sql: str, batch: list[list[str]]) -> int:
    if not batch:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    done = len(batch)
    batch.clear()
    return done


# --- the runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    csv: Path
    rows: int
    work: Path
    pg_url: str | None

    @property
    def sqlite_config(self) -> Path:
        return self.work / "sqlite" / "config.yaml"

    @property
    def pg_config(self) -> Path:
        return self.work / "postgresql" / "config.yaml"

    def write_configs(self) -> None:
        state = self.work / "sqlite" / "state.db"
        _write_config(self.sqlite_config, f"sqlite:///{state}")
        if self.pg_url is not None:
            sep = "&" if "?" in self.pg_url else "?"
            _write_config(self.pg_config, f"{self.pg_url}{sep}options=-csearch_path%3D{SCHEMA}")


def _write_config(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"site:\n  timezone: Asia/Seoul\nstorage:\n  url: '{url}'\n", "utf-8")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in FEEDSVC_ENV_OVERRIDES}


def feedsvc_import(config: Path, csv_path: Path) -> Measurement:
    argv = [*FEEDSVC, "--config", str(config), "subscribers", "import"]
    return run_measured([*argv, "--allow-test-domains", str(csv_path)], env=_env())


def check_summary(measurement: Measurement, rows: int, *, fresh: bool) -> None:
    """The import's summary line says every row was added (fresh) or updated (again)."""
    expected = f"{rows} rows: {rows} added" if fresh else f"{rows} rows: 0 added, {rows} updated"
    if expected not in measurement.stdout:
        raise BenchError(
            f"feedsvc import did not report '{expected}':\n{measurement.stdout}{measurement.stderr}"
        )


def psql(url: str, command: str) -> None:
    done = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", command],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"psql -c {command!r} exited with {done.returncode}:\n{done.stderr}")


def reset_schema(url: str) -> None:
    psql(url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")


def pg_reachable(url: str) -> bool:
    done = subprocess.run(
        ["psql", url, "-q", "-c", "SELECT 1"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def copy_reference(url: str, csv_path: Path) -> Measurement:
    psql(
        url,
        f"DROP TABLE IF EXISTS {SCHEMA}.copy_ref; "
        f"CREATE TABLE {SCHEMA}.copy_ref (id serial PRIMARY KEY, email varchar(320) NOT NULL "
        "UNIQUE, name text, frequency text, categories text)",
    )
    command = (
        f"\\copy {SCHEMA}.copy_ref (email, name, frequency, categories) FROM '{csv_path}' "
        "WITH (FORMAT csv, HEADER true)"
    )
    return run_measured(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", command])


def run_benchmark(setup: Setup, runs: int) -> list[Series]:
    sqlite_ref = Series("sqlite3 executemany (reference)")
    sqlite_new = Series("feedsvc import, SQLite, new store")
    sqlite_again = Series("feedsvc import again, SQLite (updates)")
    pg_ref = Series("psql \\copy (reference)")
    pg_new = Series("feedsvc import, PostgreSQL, empty schema")
    pg_again = Series("feedsvc import again, PostgreSQL (updates)")
    reference_db = setup.work / "reference.db"
    script = Path(__file__).resolve()
    reference_argv = [sys.executable, str(script), "--reference-sqlite"]
    reference_argv += [str(reference_db), str(setup.csv)]
    for round_no in range(1, runs + 1):
        m = sqlite_ref.add(run_measured(reference_argv))
        say(f"round {round_no}/{runs}: sqlite3 executemany {m.wall_s:.2f} s")

        for leftover in setup.sqlite_config.parent.glob("state.db*"):
            leftover.unlink()
        m = sqlite_new.add(feedsvc_import(setup.sqlite_config, setup.csv))
        check_summary(m, setup.rows, fresh=True)
        say(f"round {round_no}/{runs}: feedsvc SQLite new {m.wall_s:.2f} s")
        m = sqlite_again.add(feedsvc_import(setup.sqlite_config, setup.csv))
        check_summary(m, setup.rows, fresh=False)
        say(f"round {round_no}/{runs}: feedsvc SQLite again {m.wall_s:.2f} s")

        if setup.pg_url is None:
            continue
        reset_schema(setup.pg_url)
        m = pg_ref.add(copy_reference(setup.pg_url, setup.csv))
        say(f"round {round_no}/{runs}: psql copy {m.wall_s:.2f} s")
        reset_schema(setup.pg_url)
        m = pg_new.add(feedsvc_import(setup.pg_config, setup.csv))
        check_summary(m, setup.rows, fresh=True)
        say(f"round {round_no}/{runs}: feedsvc PostgreSQL new {m.wall_s:.2f} s")
        m = pg_again.add(feedsvc_import(setup.pg_config, setup.csv))
        check_summary(m, setup.rows, fresh=False)
        say(f"round {round_no}/{runs}: feedsvc PostgreSQL again {m.wall_s:.2f} s")
    if setup.pg_url is not None:
        reset_schema(setup.pg_url)
        psql(setup.pg_url, f"DROP SCHEMA {SCHEMA} CASCADE")
        return [sqlite_ref, sqlite_new, sqlite_again, pg_ref, pg_new, pg_again]
    return [sqlite_ref, sqlite_new, sqlite_again]


# --- the report ---------------------------------------------------------------------


def report_rows(series: Sequence[Series], rows: int) -> list[dict[str, object]]:
    """Figures per row: rows/s from the median, ratio to the backend's reference, verdict."""
    report: list[dict[str, object]] = []
    reference = series[0]
    for s in series:
        if "reference" in s.name:
            reference = s
        rate = rows / s.median_s
        row: dict[str, object] = {
            **s.as_json(),
            "rows_per_s": round(rate),
            "ratio_vs_reference": round(s.median_s / reference.median_s, 2),
        }
        if s is not reference:
            target = PG_TARGET if "PostgreSQL" in s.name else SQLITE_TARGET
            row["target"] = target.describe()
            row["result"] = target.verdict(rate, s.peak_rss_mb)
        report.append(row)
    return report


def print_report(
    series: Sequence[Series],
    rows: Sequence[dict[str, object]],
    facts: dict[str, str],
    notes: Sequence[str],
) -> None:
    print_facts("Machine and corpus", facts)
    print()
    table = [
        [
            s.name,
            f"{s.best_s:.2f}",
            f"{s.median_s:.2f}",
            f"{s.median_cpu_s:.2f}",
            f"{row['rows_per_s']:,}",
            f"{row['ratio_vs_reference']:.2f}×",
            f"{s.peak_rss_mb:.0f}",
            str(row.get("target", "reference")),
            str(row.get("result", "—")),
        ]
        for s, row in zip(series, rows, strict=True)
    ]
    print_table(
        f"feedsvc subscribers import: {facts['rows']} rows, runs: {len(series[0].runs)}",
        ["run", "best s", "median s", "CPU s", "rows/s", "× ref", "RSS MB", "target", "result"],
        table,
        caption=(
            "rows/s: rows / median wall time, process start included. × ref: median time /\n"
            "the median of the reference above it. CPU s: the child's user + system time\n"
            "(PostgreSQL's own work is in the server, not counted). RSS MB: peak of the child."
        ),
    )
    for note in notes:
        print("note: " + note)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="feedsvc subscribers import on SQLite and PostgreSQL, with references."
    )
    parser.add_argument("--rows", type=int, help="rows in the CSV (default 100000)")
    parser.add_argument("--runs", type=int, help="runs of each (default 3)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_DIR / "bench" / "out" / "subscribers",
        help="working folder (default bench/out/subscribers)",
    )
    add_shared_option(parser)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("FEEDSVC_TEST_DATABASE_URL") or DEFAULT_PG_URL,
        help="PostgreSQL database (a schema bench_subscribers is made and dropped in it)",
    )
    parser.add_argument("--no-postgresql", action="store_true", help="SQLite rows only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="smoke check: 10000 rows, 1 run")
    parser.add_argument(
        "--reference-sqlite", nargs=2, metavar=("DB", "CSV"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    args.rows = args.rows if args.rows is not None else (10_000 if args.quick else 100_000)
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.rows < 1 or args.runs < 1:
        parser.error("--rows and --runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reference_sqlite:
        database, csv_path = (Path(p) for p in args.reference_sqlite)
        print(reference_sqlite(database, csv_path))
        return 0
    out: Path = args.out.resolve()
    notes: list[str] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        csv_path = ensure_csv(out, args.rows, shared_dir=args.shared)
        csv_path.read_bytes()  # warm the page cache for every run alike
        pg_url: str | None = None if args.no_postgresql else args.pg_url
        if pg_url is not None:
            ensure_commands({"psql": "postgresql-client"})
            if not pg_reachable(pg_url):
                notes.append(f"PostgreSQL at {pg_url} does not answer: its rows are left out")
                pg_url = None
        setup = Setup(csv=csv_path, rows=args.rows, work=out, pg_url=pg_url)
        setup.write_configs()
        version = run_measured([*FEEDSVC, "--version"])
        if not version.ok:
            raise BenchError(f"feedsvc cannot start: {version.failure()}")
        series = run_benchmark(setup, args.runs)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    facts = {
        **machine_info(),
        "sqlite": sqlite3.sqlite_version,
        "feedsvc": version.stdout.strip(),
        "rows": str(args.rows),
        "csv": f"{csv_path} ({csv_path.stat().st_size / 2**20:.1f} MB)",
    }
    if pg_url is not None:
        facts["postgresql"] = command_version(["psql", pg_url, "-tAc", "SHOW server_version"])
    rows = report_rows(series, args.rows)
    print_report(series, rows, facts, notes)
    if args.json is not None:
        document = {"benchmark": "subscribers", "facts": facts, "rows": rows, "notes": notes}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
