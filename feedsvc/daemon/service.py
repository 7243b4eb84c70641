"""``feedsvc run``: one asyncio process with the web app (uvicorn), the scheduler, the
content watcher and the delivery workers; its start-up checks, lock and shutdown.

Lifecycle::

    lock ─▶ checks ─▶ first build + catch-up cycle ─▶ serve … SIGTERM/SIGINT
                                                          │
        stop: no new HTTP connections, no new jobs, SMTP in flight finishes
        (at most ``delivery.shutdown_grace``) ─▶ exit 0; a second signal exits at once
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from feedsvc.build.builder import Builder
from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.daemon.leadership import leadership_for
from feedsvc.daemon.scheduler import Jobs, JobSchedule, watch_content
from feedsvc.delivery.outbox import Backend
from feedsvc.delivery.smtp import SmtpBackend, SmtpOptions
from feedsvc.errors import DaemonLocked, FeedsvcError
from feedsvc.newsletter.jobs import backend_for, renderer_for
from feedsvc.storage import Store

log = logging.getLogger("feedsvc.service")

EXIT_FORCED = 1  # the second signal: no grace
SMTP_PROBE_TIMEOUT = 3.0
LEAD_EVERY_S = 5.0  # how often a follower asks for the lead (and the leader checks it)


# --- logging -------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, *, verbose: bool = False) -> None:
    """Human lines (default) or JSON lines on stderr, for us and uvicorn alike."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


# --- the lock --------------------------------------------------------------------------


def lock_path(settings: Settings) -> Path | None:
    """Next to a SQLite store's file. None for PostgreSQL: several daemons may share it,
    and agree on who leads through the database (feedsvc.daemon.leadership)."""
    url = settings.storage_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.removeprefix("sqlite:///") + ".run-lock")
    if url.startswith("sqlite"):
        return settings.path(Path(".feedsvc-run.lock"))
    return None


class DaemonLock:
    """An exclusive transaction on a small SQLite file, held while the daemon runs. The
    operating system drops it when the process ends, even by SIGKILL: nothing to clean."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def acquire(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            conn.close()
            raise DaemonLocked(
                f"another `feedsvc run` is already running on this store (it holds "
                f"{self.path}); stop it first, or give this one its own storage.url"
            ) from None
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def held(self) -> Iterator[DaemonLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()


# --- start-up checks -----------------------------------------------------------------


def smtp_reachable(settings: Settings) -> str | None:
    """None when the SMTP server takes a TCP connection, else why not (a warning only:
    mail waits in the store until it is back)."""
    smtp = settings.delivery.smtp
    try:
        with socket.create_connection((smtp.host, smtp.port), timeout=SMTP_PROBE_TIMEOUT):
            return None
    except OSError as exc:
        return f"the SMTP server {smtp.host}:{smtp.port} is not reachable ({exc}); mail waits"


def check_templates(settings: Settings) -> int:
    """Compile every template (the site's over the packaged ones) now, not at 08:00; a
    syntax error is a ConfigError naming the file and line. Returns how many there are."""
    from jinja2 import TemplateSyntaxError

    from feedsvc.errors import ConfigError
    from feedsvc.templating import environment

    env = environment(settings)
    names = [name for name in env.list_templates() if name.endswith(".j2")]
    problems: list[str] = []
    for name in names:
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            problems.append(f"template {exc.filename or name}, line {exc.lineno}: {exc.message}")
    if problems:
        raise ConfigError(settings.source, problems)
    return len(names)


def describe_store(url: str) -> str:
    """The store URL without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        rest = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    return f"{scheme}{sep}{rest}"


# --- uvicorn, without its own signal handling ----------------------------------------


class _Server(uvicorn.Server):
    """Signals belong to the service (a second one must exit at once); uvicorn only
    serves and stops when told."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy settings: X-Forwarded-For/-Proto are believed only from the
    proxies in ``server.forwarded_allow_ips`` (by default from nobody: uvicorn would
    otherwise trust 127.0.0.1, or $FORWARDED_ALLOW_IPS, and let a local proxy's clients
    choose the address that rate limits and consent records see)."""
    proxies = list(settings.server.forwarded_allow_ips)
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": proxies}


def bind_socket(host: str) -> socket.socket:
    """A TCP socket bound to ``host`` on a port the system chooses (not listening yet:
    uvicorn listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), 0))
    except OSError as exc:
        sock.close()
        raise FeedsvcError(f"could not listen on {host}: {exc}") from None
    return sock


# --- the service ---------------------------------------------------------------------


@dataclass
class Listen:
    host: str
    port: int


class Service:
    """Everything ``feedsvc run`` runs, for one site and store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        listen: Listen,
        *,
        schedule_options: dict[str, Any] | None = None,
        lead_every: float = LEAD_EVERY_S,
    ) -> None:
        from feedsvc.web import create_app

        self.lead_every = lead_every
        # Port 0 with links that follow the served address: bind now, so the links name
        # the port the system chose.
        self.sockets = [bind_socket(listen.host)] if listen.port == 0 and settings.derived else []
        if self.sockets:
            listen = Listen(listen.host, int(self.sockets[0].getsockname()[1]))
        settings = settings.served_at(listen.host, listen.port)
        self.settings = settings
        self.store = store
        self.clock = clock
        self.listen = listen
        self.stop = asyncio.Event()
        self.signals = 0
        check_templates(settings)
        file_backend = backend_for(settings)
        confirmations: Backend = file_backend or SmtpBackend(SmtpOptions.from_settings(settings))
        self.app: Starlette = create_app(settings, store, clock, confirmations)
        self.jobs = Jobs(
            settings=settings,
            store=store,
            clock=clock,
            # One process parses (forked workers would each count the daemon's whole
            # resident set again: a slower first build, a lower peak). Renders of a big
            # change still get a worker.
            builder=Builder(settings, store, clock, workers=1),
            renderer=renderer_for(settings),
            backend=file_backend,
            confirmations=confirmations,
            stop=self.stop,
            on_feeds=self._feeds_changed,
        )
        self.schedule = JobSchedule(self.jobs, **(schedule_options or {}))
        self.leadership = leadership_for(store)
        self.jobs.on_next_publish = self.schedule.schedule_publish
        config = uvicorn.Config(
            self.app,
            host=listen.host,
            port=listen.port,
            lifespan="off",
            log_config=None,
            server_header=False,
            access_log=False,  # feedsvc.access instead (server.access_log), tokens hidden
            **proxy_options(settings),
        )
        self.server = _Server(config)

    async def _follow_the_lead(self) -> None:
        """Take the lead when it is free (its holder stopped or died); notice losing it."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.lead_every)
            if self.stop.is_set():
                return
            leading = await asyncio.to_thread(self.leadership.try_lead)
            if leading and not self.jobs.leading:
                log.info("this instance leads now: it builds the feeds and creates digests")
                self.jobs.leading = True
                self.jobs.request_rebuild()  # the whole folder: it was not watching for us
                self.jobs.request_cycle()
            elif not leading and self.jobs.leading:
                log.error("lost the lead (the store connection dropped); serving and sending")
                self.jobs.leading = False

    def _feeds_changed(self, paths: list[str]) -> None:
        # The web app rereads the files at once instead of at its next check.
        self.app.state.web.feeds.reload()

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals > 1:
            log.warning("second signal: exiting now")
            logging.shutdown()
            os._exit(EXIT_FORCED)
        log.info(
            "%s: stopping (SMTP in flight finishes, at most %s; again to exit at once)",
            signal.Signals(signum).name,
            self.settings.delivery.shutdown_grace,
        )
        self.stop.set()

    def checks(self) -> list[str]:
        """Warnings to log at start (errors raise before: config, store, templates)."""
        warnings: list[str] = []
        if not self.settings.content_dir.is_dir():
            warnings.append(f"the content folder {self.settings.content_dir} does not exist yet")
        if self.settings.delivery.backend == "smtp":
            problem = smtp_reachable(self.settings)
            if problem:
                warnings.append(problem)
        return warnings

    def announce(self) -> None:
        settings = self.settings
        base = f"http://{self.listen.host}:{self.server_port()}"
        public = settings.server.public_url
        log.info("serving %s (feeds %s/feed.xml)", base, base)
        given = "server.public_url" not in settings.derived
        log.info(
            "public URL %s (%s)", public, "server.public_url" if given else "the served address"
        )
        if settings.public_url_is_local:
            log.warning(
                "the public URL %s is a loopback address: links in email (confirm, unsubscribe, "
                "preferences) work only on this machine; set server.public_url to the address "
                "readers reach this daemon at, e.g. https://news.example.com/",
                public,
            )
        if settings.serves_site:
            log.info("serving the posts' pages too: site.url %s is this daemon", settings.site.url)
        log.info("watching %s, writing feeds to %s", settings.content_dir, settings.output_dir)
        log.info("store %s", describe_store(settings.storage_url))
        if settings.delivery.backend == "smtp":
            smtp = settings.delivery.smtp
            log.info("sending mail over SMTP %s:%s", smtp.host, smtp.port)
        else:
            log.info("writing mail to %s", settings.path(settings.delivery.outbox_dir))

    def server_port(self) -> int:
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.listen.port

    async def run(self) -> int:
        """Serve until a signal (or ``stop``); 0 once everything has finished."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.on_signal, signum)
        for warning in self.checks():
            log.warning("%s", warning)
        self.jobs.leading = await asyncio.to_thread(self.leadership.try_lead)
        if not self.jobs.leading:
            log.info("another instance leads (builds, digests); this one serves and sends")
        tasks = [
            asyncio.create_task(self.jobs.build_loop(), name="build"),
            asyncio.create_task(self.jobs.cycle_loop(), name="cycle"),
            asyncio.create_task(self.jobs.bounce_loop(), name="bounces"),
            asyncio.create_task(watch_content(self.settings.content_dir, self.jobs), name="watch"),
            asyncio.create_task(self._follow_the_lead(), name="leadership"),
        ]
        serving = asyncio.create_task(self.server.serve(self.sockets or None), name="http")
        try:
            # The first build, then the catch-up cycle (it follows the build: new posts).
            if self.jobs.leading:
                await self.jobs.rebuild()
            self.jobs.request_cycle()
            self.schedule.start()
            while not self.server.started and not serving.done():
                await asyncio.sleep(0.01)
            if serving.done():
                serving.result()  # uvicorn could not listen: say why
                raise FeedsvcError(f"could not listen on {self.listen.host}:{self.listen.port}")
            self.announce()
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({stopped, serving}, return_when=asyncio.FIRST_COMPLETED)
            self.stop.set()
        finally:
            self.schedule.shutdown()
            self.server.should_exit = True
            grace = self.settings.delivery.shutdown_grace.total_seconds()
            done, pending = await asyncio.wait([*tasks, serving], timeout=grace)
            for task in pending:
                log.warning("%s did not finish within delivery.shutdown_grace", task.get_name())
                task.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            self.leadership.release()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
        log.info("stopped")
        return 0
