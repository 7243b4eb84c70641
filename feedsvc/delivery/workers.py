"""Sending from more than one process: ``delivery.workers`` for `feedsvc digest send`.

One Python process does at most one core's work; rendering and SMTP together need more.
With ``delivery.workers: N`` (N > 1, the ``smtp`` backend) the command starts N − 1
helper processes once it has created the digests. Each sends due rows over its own
``delivery.concurrency`` connections while the command is still rendering (looking for
newly rendered rows every :data:`feedsvc.delivery.dispatch.IDLE` seconds until it has finished);
then the command sends too. They share the work through the store's claims — the same
claims that let two `feedsvc digest send` commands, or a daemon and a command, run at
once — so no row goes out twice. ``delivery.rate`` is split evenly between them.

A helper ends when nothing is due and rendering has finished, and reports its counts to
the command. If the command goes away (Ctrl-C, kill -9) its helpers notice within
:data:`PARENT_CHECK` seconds, finish the messages in flight, release the rest and stop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from feedsvc.clock import SystemClock
from feedsvc.config import Settings
from feedsvc.delivery.dispatch import Pace, SendReport, deliver_pending, run_loop
from feedsvc.delivery.smtp import SmtpOptions
from feedsvc.storage import Store, open_store

log = logging.getLogger("feedsvc.delivery")

PARENT_CHECK = 0.5  # seconds between a helper's looks at whether the command still runs
# Below this many waiting messages one process is done before a helper would have started
# (about half a second of imports).
HELPERS_FROM = 500


@dataclass
class Helpers:
    """The helper processes of one `feedsvc digest send`, and what they said so far."""

    processes: list[SpawnProcess]
    rendered: Event
    messages: Queue[Any]
    done_by: dict[int, int] = field(default_factory=dict)
    reports: dict[int, SendReport] = field(default_factory=dict)

    @classmethod
    def start(cls, store: Store, settings: Settings, waiting: int) -> Helpers | None:
        """``delivery.workers`` − 1 helpers, if that is more than none and there is enough
        to send (``waiting`` messages) to be worth starting them."""
        count = settings.delivery.workers - 1
        if count < 1 or settings.delivery.backend != "smtp" or waiting < HELPERS_FROM:
            return None
        # spawn, not fork: the parent holds threads and open database connections.
        context = multiprocessing.get_context("spawn")
        rendered = context.Event()
        messages: Queue[Any] = context.Queue()
        url = store.engine.url.render_as_string(hide_password=False)
        processes = [
            context.Process(
                target=_helper,
                args=(settings, url, index, rendered, messages, os.getpid()),
                name=f"feedsvc-sender-{index + 1}",
            )
            for index in range(count)
        ]
        for process in processes:
            process.start()
        log.debug("started %d sender processes", count)
        return cls(processes, rendered, messages)

    def rendering_finished(self) -> None:
        """No more rows will be rendered: helpers stop once nothing is due."""
        self.rendered.set()

    def _drain(self) -> None:
        while True:
            try:
                kind, index, value = self.messages.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                self.done_by[index] = value
            else:
                self.reports[index] = value
                self.done_by[index] = value.done

    def done(self) -> int:
        """Messages the helpers have finished with so far (sent, retrying or failed)."""
        self._drain()
        return sum(self.done_by.values())

    def finish(self) -> SendReport:
        """Wait for every helper; their reports added up. A helper that died without
        reporting is a problem in the report (its rows go out once their lease ends)."""
        self.rendered.set()
        for process in self.processes:
            # Keep draining: a helper cannot exit while its last message waits in the pipe.
            while process.is_alive():
                self._drain()
                process.join(0.1)
        self._drain()
        total = SendReport()
        for index, process in enumerate(self.processes):
            report = self.reports.get(index)
            if report is None:
                total.problems.append(
                    f"sender process {process.name} ended (exit status {process.exitcode}) "
                    "without reporting; rows it held go out again once delivery.lease passes"
                )
                continue
            total.add(report)
        return total


def _helper(
    settings: Settings, url: str, index: int, rendered: Event, messages: Queue[Any], parent: int
) -> None:
    """A helper process's life: send, then report."""
    # Ctrl-C is the command's to handle; a helper follows it by seeing it go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store = open_store(url, migrate=False)
    try:
        report = run_loop(_send(store, settings, index, rendered, messages, parent))
    finally:
        store.close()
    messages.put(("report", index, report))


async def _send(
    store: Store,
    settings: Settings,
    index: int,
    rendered: Event,
    messages: Queue[Any],
    parent: int,
) -> SendReport:
    stop = asyncio.Event()

    async def watch_parent() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_CHECK)
        log.warning("feedsvc digest send went away: this sender stops")
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    try:
        return await deliver_pending(
            store,
            SmtpOptions.from_settings(settings),
            SystemClock(),
            Pace.from_settings(settings, share=settings.delivery.workers),
            on_progress=lambda report: messages.put(("progress", index, report.done)),
            stop=stop,
            more_coming=lambda: not rendered.is_set(),
        )
    finally:
        watcher.cancel()
