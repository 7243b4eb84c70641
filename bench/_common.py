"""Helpers shared by the benchmark scripts in bench/ (see bench/README.md).

- ``ensure_commands``: install missing reference tools from Debian packages (apt-get).
- ``compile_feedsvc``: write feedsvc's bytecode, as installing it does, before measuring.
- ``ensure_corpus``: make (or reuse) the synthetic corpus with tests/corpus.py (or, with
  --shared DIR, the shared protocol's DIR/bench/make_corpus.py).
- ``run_measured``: run a command in a fresh process; wall time, CPU time, peak RSS.
- ``Series``: repeated measurements of one thing → best, median, peak RSS.
- ``machine_info`` and ``print_table``: describe the machine, print the result table.

The protocol these follow is /work/shared/bench/README.md: every figure comes with a
reference measured in the same run, because absolute numbers on these machines are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO_DIR = Path(__file__).resolve().parents[1]
# The corpus generator: the repository's own, which the tests use too. It writes the same
# kind and size of corpus as the shared protocol's make_corpus.py (not the same bytes);
# --shared DIR runs DIR/bench/make_corpus.py instead, for figures to set beside ones
# measured on that corpus.
CORPUS_SCRIPT = REPO_DIR / "tests" / "corpus.py"


class BenchError(Exception):
    """A benchmark cannot go on: a command failed or a reference is missing."""


def say(message: str) -> None:
    """Progress line on stderr, so stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- references from Debian packages ------------------------------------------------


def ensure_commands(packages_by_command: Mapping[str, str]) -> None:
    """Install the Debian package of every command that is not on PATH.

    ``packages_by_command`` maps a command name to its package, e.g. ``{"hugo": "hugo"}``.
    Runs ``apt-get update`` once and one ``apt-get install -y`` for everything missing,
    printing each command. Raises BenchError when that is impossible or does not help.
    """
    missing = {cmd: pkg for cmd, pkg in packages_by_command.items() if shutil.which(cmd) is None}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    by_hand = "apt-get update && apt-get install -y " + " ".join(packages)
    if shutil.which("apt-get") is None:
        raise BenchError(
            f"{', '.join(missing)} not on PATH and apt-get not found: "
            f"install {', '.join(packages)} some other way"
        )
    if os.geteuid() != 0:
        raise BenchError(f"{', '.join(missing)} not on PATH; as root, run: {by_hand}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        say("running: " + " ".join(argv))
        # Output goes to stderr, next to our progress lines, not into the report.
        result = subprocess.run(argv, env=env, stdout=sys.stderr, check=False)
        if result.returncode != 0:
            raise BenchError(f"'{' '.join(argv)}' exited with {result.returncode}")
    still_missing = [cmd for cmd in missing if shutil.which(cmd) is None]
    if still_missing:
        raise BenchError(
            f"installed {', '.join(packages)} but {', '.join(still_missing)} is still not on PATH"
        )


def compile_feedsvc(checkout: Path | None = None) -> str:
    """Write the bytecode (``__pycache__``) of the feedsvc package the benchmark runs, and
    say where it is.

    ``pip install`` compiles a package's modules once, so a user's ``feedsvc`` never
    compiles its source at start-up. A checkout run in place (an editable install, or
    PYTHONPATH) has no bytecode until Python writes it, and with PYTHONDONTWRITEBYTECODE
    set (as on these machines) it never does: every run would compile ~100 modules
    again (~50 ms, more for a bigger tree) and the figures would measure that.
    ``checkout``: another feedsvc checkout's folder, whose ``feedsvc/`` is compiled instead
    of the importable one.
    """
    import importlib.util

    if checkout is not None:
        package = checkout / "feedsvc"
        if not (package / "__init__.py").is_file():
            raise BenchError(f"{checkout} holds no feedsvc/__init__.py: not a feedsvc checkout")
    else:
        spec = importlib.util.find_spec("feedsvc")
        if spec is None or spec.origin is None:
            raise BenchError("feedsvc is not importable: install it (pip install -e .)")
        package = Path(spec.origin).parent
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"cannot compile {package}: {done.stdout}{done.stderr}".strip())
    return str(package)


def command_version(argv: Sequence[str]) -> str:
    """First line of a tool's version output, or why there is none."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else f"unknown (exit {result.returncode})"


# --- corpus -------------------------------------------------------------------------


def count_posts(posts_dir: Path) -> int:
    """Number of Markdown posts below ``posts_dir`` (what the generator writes)."""
    return sum(1 for _ in posts_dir.rglob("*.md")) if posts_dir.is_dir() else 0


def add_shared_option(parser: argparse.ArgumentParser) -> None:
    """``--shared DIR``: make the corpus with the shared protocol's generator."""
    parser.add_argument(
        "--shared",
        type=Path,
        metavar="DIR",
        help="make the corpus with DIR/bench/make_corpus.py, the shared benchmark "
        "protocol's generator, instead of tests/corpus.py",
    )


def corpus_script(shared_dir: Path | None) -> Path:
    """The generator to run: tests/corpus.py, or make_corpus.py in ``shared_dir``."""
    if shared_dir is None:
        return CORPUS_SCRIPT
    script = shared_dir.resolve() / "bench" / "make_corpus.py"
    if not script.is_file():
        raise BenchError(f"{script} not found: --shared takes the folder holding bench/")
    return script


def generator_stamp(script: Path, *args: object) -> str:
    """What made a corpus: the generator (by content, so an edited one makes it again)
    and its arguments."""
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:16]
    return " ".join([str(script), f"sha256:{digest}", *map(str, args)]) + "\n"


def _stamp_path(made: Path) -> Path:
    return made.with_name(made.name + ".made-by")


def made_by(made: Path, stamp: str) -> bool:
    """Whether ``made`` (a corpus folder or CSV) was made as ``stamp`` says."""
    try:
        return _stamp_path(made).read_text(encoding="utf-8") == stamp
    except FileNotFoundError:
        return False


def run_generator(script: Path, argv: Sequence[str], made: Path, stamp: str) -> None:
    """Run the corpus generator with ``argv``; then record that it made ``made``."""
    _stamp_path(made).unlink(missing_ok=True)
    command = [sys.executable, str(script), *argv]
    say("making the corpus: " + " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"{script.name} exited with {result.returncode}:\n{result.stderr}")
    _stamp_path(made).write_text(stamp, encoding="utf-8")


def ensure_corpus(
    posts_dir: Path, posts: int, *, shared_dir: Path | None = None, seed: int = 1
) -> Path:
    """Make the corpus at ``posts_dir``, or reuse it.

    A folder holding exactly ``posts`` posts, made by the same generator with the same
    seed (as recorded next to it, in ``posts_dir``.made-by), is reused; any other is
    removed and made again (the generators are deterministic for a seed, so reuse is
    safe).
    """
    script = corpus_script(shared_dir)
    stamp = generator_stamp(script, "--posts", posts, "--seed", seed)
    found = count_posts(posts_dir)
    if found == posts and made_by(posts_dir, stamp):
        say(f"reusing the corpus in {posts_dir} ({posts} posts)")
        return posts_dir
    if posts_dir.exists():
        say(f"{posts_dir} is not {posts} posts made by {script}: making it again")
        shutil.rmtree(posts_dir)
    argv = [str(posts_dir), "--posts", str(posts), "--seed", str(seed)]
    run_generator(script, argv, posts_dir, stamp)
    found = count_posts(posts_dir)
    if found != posts:
        raise BenchError(f"{script.name} wrote {found} posts to {posts_dir}, not {posts}")
    return posts_dir


def read_all_files(root: Path) -> int:
    """Read every file below ``root`` once, so the first timed run does not pay for a
    cold page cache that later runs would not; returns the bytes read."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


# --- measuring ----------------------------------------------------------------------


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# How often the process tree's memory is sampled: often enough for phases that last
# tenths of a second, rarely enough that scanning /proc (~2 ms) costs little CPU.
RSS_SAMPLE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Measurement:
    """One run of a command in a fresh process."""

    argv: tuple[str, ...]
    exit_code: int
    wall_s: float
    cpu_s: float  # user + system, of the child and the children it waited for
    # The largest single process: ru_maxrss of the child and the descendants it waited
    # for, from wait4 (exact, but a maximum, not a sum, over the processes).
    max_process_rss_bytes: int
    # The whole tree at once (the child and its descendants, summed), sampled every
    # RSS_SAMPLE_INTERVAL_S: what a program that forks workers really holds. Pages
    # shared after fork count once per process, so this leans high.
    tree_rss_bytes: int
    stdout: str
    stderr: str

    @property
    def peak_rss_bytes(self) -> int:
        """The peak to report: the sampled tree sum, or the exact single-process peak
        when sampling missed a short spike of a program that does not fork."""
        return max(self.max_process_rss_bytes, self.tree_rss_bytes)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def failure(self) -> str:
        """What went wrong, for an error message: command, exit status, its stderr."""
        tail = (self.stderr or self.stdout).strip()[-4000:]
        return f"'{' '.join(self.argv)}' exited with {self.exit_code}:\n{tail}"


class TreeRssSampler:
    """Samples the summed RSS of a process and its descendants in a thread (Linux /proc).

    ru_maxrss alone under-reports a program that forks workers: it is the largest single
    process, while the machine holds all of them at once.
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, self.sample())
            if self._stop.wait(RSS_SAMPLE_INTERVAL_S):
                return

    def sample(self) -> int:
        """Summed resident bytes of the tree now (0 once it is gone)."""
        return sum(_resident_bytes(pid) for pid in _descendants(self.root_pid))


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path("/proc", name, "stat").read_bytes()
        except OSError:
            continue  # the process ended while we looked
        # Fields after the command name, which is in parentheses and may hold spaces.
        parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def _resident_bytes(pid: int) -> int:
    try:
        return int(Path("/proc", str(pid), "statm").read_bytes().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0  # gone, or a zombie with nothing resident


def run_measured(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Measurement:
    """Run ``argv`` to completion; measure wall time, CPU time and peak memory.

    The child is reaped with ``os.wait4`` so its own resource usage is read, not a delta
    over everything this process ever ran; meanwhile a thread samples the RSS of its
    whole process tree. Output goes to temporary files so a chatty child never blocks
    on a pipe.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=None if env is None else dict(env), stdout=out, stderr=err
        )
        with TreeRssSampler(proc.pid) as sampler:
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        # Tell Popen the child is gone, so it never waits for it again.
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Measurement(
        argv=tuple(argv),
        exit_code=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_process_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports kilobytes
        tree_rss_bytes=sampler.peak_bytes,
        stdout=stdout,
        stderr=stderr,
    )


@dataclass
class Series:
    """Repeated measurements of one thing (a row of the report)."""

    name: str
    runs: list[Measurement] = field(default_factory=list)

    def add(self, measurement: Measurement) -> Measurement:
        """Record a run; raise BenchError (with the child's stderr) if it failed."""
        if not measurement.ok:
            raise BenchError(f"{self.name}: {measurement.failure()}")
        self.runs.append(measurement)
        return measurement

    @property
    def best_s(self) -> float:
        return min(m.wall_s for m in self.runs)

    @property
    def median_s(self) -> float:
        return statistics.median(m.wall_s for m in self.runs)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(m.cpu_s for m in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(m.peak_rss_bytes for m in self.runs) / 2**20

    @property
    def max_process_rss_mb(self) -> float:
        return max(m.max_process_rss_bytes for m in self.runs) / 2**20

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "wall_s": [round(m.wall_s, 4) for m in self.runs],
            "cpu_s": [round(m.cpu_s, 4) for m in self.runs],
            "best_s": round(self.best_s, 4),
            "median_s": round(self.median_s, 4),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "max_process_rss_mb": round(self.max_process_rss_mb, 1),
        }


# --- reporting ----------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    meminfo: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            meminfo[key] = value.strip()
    except OSError:
        pass  # not Linux: keep platform's answer and leave memory unknown
    memory = "unknown"
    if "MemTotal" in meminfo:
        memory = f"{int(meminfo['MemTotal'].split()[0]) / 2**20:.1f} GiB"
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = ""
) -> None:
    """Print a table to stdout; numeric-looking columns are right-aligned."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for index, name in enumerate(columns):
        numeric = bool(rows) and all(_looks_numeric(row[index]) for row in rows)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*row)
    # Rich assumes 80 columns when stdout is a file or a pipe; give it room to keep
    # rows on one line there. On a terminal, its own width is right.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table)


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(".", "", 1).replace("×", "").replace("-", "").strip()
    return stripped.isdigit() or text in {"", "—"}


def print_facts(title: str, facts: Mapping[str, str]) -> None:
    """Print ``key: value`` lines under a title (the machine, the corpus, …)."""
    print(title)
    width = max(len(k) for k in facts) if facts else 0
    for key, value in facts.items():
        print(f"  {key:<{width}}  {value}")
