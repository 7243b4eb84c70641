"""HTTP benchmark: ``GET /feed.xml`` (200, and 304 with If-None-Match) under wrk.

    python bench/http.py [--duration 10] [--connections 64] [--threads 2]

Builds the sample site (content/) into a temporary folder, serves it with ``feedsvc run``'s
app on uvicorn (one process, loopback, a free port), runs wrk (Debian package, installed
when missing) against it, and prints requests/s, latency percentiles and errors. Target
(issue #6): at least 3,000 requests/s and p99 at most 50 ms for both, with no errors.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where "http" would be this
# file instead of the standard library's package: move the folder to the end (after the
# standard library), where ``_common`` is still found.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import (  # noqa: E402
    REPO_DIR,
    BenchError,
    command_version,
    ensure_commands,
    machine_info,
    print_facts,
    print_table,
    say,
)

TARGET_RPS = 3000.0
TARGET_P99_MS = 50.0


def serve(site: Path, port: int) -> None:
    """Child process: build the site and serve it (what ``feedsvc run`` does)."""
    import uvicorn

    from feedsvc.build.builder import Builder
    from feedsvc.clock import SystemClock
    from feedsvc.config import load_settings
    from feedsvc.newsletter.jobs import backend_for
    from feedsvc.storage import open_store
    from feedsvc.web import create_app

    settings = load_settings(site / "config.yaml")
    store = open_store(settings.storage_url)
    Builder(settings, store, SystemClock()).build()
    app = create_app(settings, store, SystemClock(), backend_for(settings))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _millis(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, args: argparse.Namespace, headers: list[str]) -> dict[str, str]:
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s"]
    argv += ["--latency"]
    for header in headers:
        argv += ["-H", header]
    argv.append(url)
    say("running: " + " ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"wrk exited with {result.returncode}: {result.stderr}")
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M))
    p = {k: _millis(*re.fullmatch(r"([\d.]+)(\w+)", v).groups()) for k, v in pct.items()}  # type: ignore[union-attr]
    errors = 0
    for found in re.findall(r"Socket errors: (.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", found))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    total = re.search(r"(\d+) requests in", out)
    return {
        "requests": total.group(1) if total else "?",
        "rps": f"{rps:,.0f}",
        "p50": f"{p['50']:.2f}",
        "p99": f"{p['99']:.2f}",
        "errors": str(errors),
        "ok": "yes" if rps >= TARGET_RPS and p["99"] <= TARGET_P99_MS and errors == 0 else "NO",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", nargs=2, metavar=("SITE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0
    ensure_commands({"wrk": "wrk"})
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-http-") as tmp:
        site = Path(tmp)
        (site / "config.yaml").write_text((REPO_DIR / "config.yaml").read_text("utf-8"), "utf-8")
        (site / "content").symlink_to(REPO_DIR / "content")
        if (REPO_DIR / "assets").is_dir():
            (site / "assets").symlink_to(REPO_DIR / "assets")
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(site), str(port)])
        url = f"http://127.0.0.1:{port}/feed.xml"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        etag = response.headers["ETag"]
                        size = len(response.read())
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise BenchError("the server did not start") from None
                    time.sleep(0.2)
            rows = []
            for label, headers in (
                ("GET /feed.xml → 200", []),
                ("GET /feed.xml → 304 (If-None-Match)", [f"If-None-Match: {etag}"]),
            ):
                got = run_wrk(url, args, headers)
                rows.append(
                    [
                        label,
                        got["requests"],
                        got["rps"],
                        got["p50"],
                        got["p99"],
                        got["errors"],
                        got["ok"],
                    ]
                )
        finally:
            server.terminate()
            server.wait(10)
    print_facts(
        "machine",
        {**machine_info(), "wrk": command_version(["wrk", "--version"]), "feed bytes": str(size)},
    )
    print_table(
        f"HTTP: {args.connections} connections, {args.threads} wrk threads, "
        f"{args.duration} s, loopback",
        [
            "request",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            f"≥{TARGET_RPS:,.0f}/s, p99≤{TARGET_P99_MS:.0f} ms",
        ],
        rows,
    )
    return 0 if all(row[-1] == "yes" for row in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
