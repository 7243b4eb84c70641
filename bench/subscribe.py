"""Sign-up timing benchmark: does ``POST /subscribe`` take as long for a new address as for
a pending or an active one? (Issue 14, item 11: the time must not tell.)

    python bench/subscribe.py [--rounds 200] [--pause 0.02]

Serves the web app on uvicorn (a thread, loopback, a free port, SQLite in a temporary
folder, confirmations to the outbox) and posts JSON sign-ups, interleaving the three
kinds in a shuffled order; prints each kind's median and p90 answer time and the ratio to
the active address's median. After each request it pauses (``--pause``) so the previous
sign-up's background work (recorded after the answer) does not delay the next answer on
the keep-alive connection. Not a test: figures on a shared machine are noisy; read the
ratios, expected near 1.0.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where bench/http.py would
# shadow the standard library's http package (httpx needs it): move the folder last.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from feedsvc.clock import SystemClock  # noqa: E402
from feedsvc.config import settings_from_mapping  # noqa: E402
from feedsvc.models import Frequency  # noqa: E402
from feedsvc.newsletter.jobs import backend_for  # noqa: E402
from feedsvc.storage import open_store  # noqa: E402
from feedsvc.storage.subscriptions import confirm, sign_up  # noqa: E402
from feedsvc.web import create_app  # noqa: E402
from feedsvc.web.ratelimit import RateLimiter  # noqa: E402

ACTIVE = "활성@example.kr"
PENDING = "대기@example.kr"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def measure(args: argparse.Namespace, root: Path) -> dict[str, list[float]]:
    settings = settings_from_mapping(
        {"site": {"title": "구독 시간 측정"}, "storage": {"url": f"sqlite:///{root / 'b.db'}"}},
        base_dir=root,
    )
    store = open_store(settings.storage_url)
    clock = SystemClock()
    with store.write() as conn:
        for address in (ACTIVE, PENDING):
            known = sign_up(
                conn,
                address,
                name=None,
                frequency=Frequency.WEEKLY,
                categories=(),
                now=clock.now(),
                ip=None,
            )
            if known is not None and address == ACTIVE:
                confirm(conn, known, now=clock.now(), ip=None)
    unlimited = RateLimiter(burst=10**9, per_second=10**9)
    app = create_app(settings, store, clock, backend_for(settings), subscribe_limit=unlimited)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    kinds = ["new", "pending", "active"] * args.rounds
    random.shuffle(kinds)
    times: dict[str, list[float]] = {"new": [], "pending": [], "active": []}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            client.post("/subscribe", json={"email": "warm-up@example.kr"})
            for n, kind in enumerate(kinds):
                addresses = {"new": f"새-{n}@example.kr", "pending": PENDING, "active": ACTIVE}
                time.sleep(args.pause)
                started = time.perf_counter()
                answer = client.post("/subscribe", json={"email": addresses[kind]})
                times[kind].append((time.perf_counter() - started) * 1000)
                if answer.status_code != 202:
                    raise SystemExit(f"unexpected answer {answer.status_code}: {answer.text}")
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-subscribe-") as tmp:
        times = measure(args, Path(tmp))
    base = statistics.median(times["active"])
    print(f"POST /subscribe (JSON), {args.rounds} each, answer time in ms")
    print(f"{'address':<10}{'median':>10}{'p90':>10}{'÷ active':>10}")
    for kind, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{kind:<10}{median:>10.2f}{p90:>10.2f}{median / base:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
