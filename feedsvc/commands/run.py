"""``feedsvc run [--host] [--port]``: serve the web app (SPEC §7) with uvicorn.

For now the process serves HTTP only; the daemon adds the scheduler, the content watcher
and the delivery workers to the same process. Confirmation emails asked for on the web
are sent right after each sign-up through the configured backend.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from feedsvc.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from feedsvc.cli import Context

EXIT_USAGE = 2
EXIT_STORE = 3


@click.command()
@click.option("--host", default=None, help="Address to listen on (default server.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default server.port)."
)
@click.pass_obj
def run(obj: Context, host: str | None, port: int | None) -> None:
    """Serve feeds, the subscribe form and the email links over HTTP."""
    import uvicorn

    from feedsvc.clock import SystemClock
    from feedsvc.mailer import backend_for
    from feedsvc.storage import open_store
    from feedsvc.web import create_app

    settings = obj.settings()
    try:
        store = open_store(settings.storage_url)
    except StoreError as exc:
        click.echo(f"feedsvc: {exc}", err=True)
        sys.exit(EXIT_STORE)
    try:
        app = create_app(settings, store, SystemClock(), backend_for(settings))
    except ConfigError as exc:
        click.echo(f"feedsvc: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        uvicorn.run(
            app,
            host=host or settings.server.host,
            port=settings.server.port if port is None else port,
            log_level="info",
            server_header=False,
            proxy_headers=True,
        )
    finally:
        store.close()
