"""``feedsvc run [--host] [--port] [--log-format human|json]``: the daemon.

One process serves the web app, rebuilds the feeds when content changes, publishes
future-dated posts at their time, creates and sends digests and retries; see
:mod:`feedsvc.daemon.service`. Exit status: 0 after a SIGTERM/SIGINT shutdown; 1 after a second
signal or when another daemon holds the store; 2 bad configuration or templates; 3 the
store cannot be opened.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

import click

from feedsvc.cli.invocation import fail, texts
from feedsvc.cli.words import config_problem
from feedsvc.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from feedsvc.cli.main import Context

EXIT_LOCKED = 1
EXIT_USAGE = 2
EXIT_STORE = 3


@click.command()
@click.option("--host", default=None, help="Address to listen on (default server.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default server.port)."
)
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="Log lines for people, or one JSON object per line.",
)
@click.pass_obj
def run(obj: Context, host: str | None, port: int | None, log_format: str) -> None:
    """Serve feeds and email links, keep the feeds current, send the digests."""
    from feedsvc.clock import SystemClock
    from feedsvc.daemon.service import DaemonLock, Listen, Service, configure_logging, lock_path
    from feedsvc.errors import DaemonLocked
    from feedsvc.storage import open_store

    settings = obj.settings()
    configure_logging(log_format, verbose=logging.getLogger().level <= logging.DEBUG)
    # SQLite: one daemon per store (a lock file). PostgreSQL: several, one leading.
    path = lock_path(settings)
    lock = DaemonLock(path) if path is not None else None
    try:
        if lock is not None:
            lock.acquire()
    except DaemonLocked:
        fail(texts()("cli.run.locked", lock=str(path)), EXIT_LOCKED)
    try:
        try:
            store = open_store(settings.storage_url)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
        try:
            listen = Listen(
                host or settings.server.host, settings.server.port if port is None else port
            )
            try:

                async def main() -> int:
                    # The service makes its events on the running loop.
                    return await Service(settings, store, SystemClock(), listen).run()

                code = asyncio.run(main())
            except ConfigError as exc:
                fail(config_problem(texts(), exc), EXIT_USAGE)
        finally:
            store.close()
    finally:
        if lock is not None:
            lock.release()
    sys.exit(code)
