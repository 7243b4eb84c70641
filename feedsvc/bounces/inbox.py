"""The bounce inbox folder (``bounces.inbox_dir``): one message a file, read in batches.

A batch's signals are written and applied in one transaction; only once it is committed
are its files moved to ``processed/`` beside them. A crash before the commit leaves the
files where they were (read again next time, nothing was applied); a crash after it
leaves files whose signals are kept (read again, their keys say ALREADY, and they are
moved). Either way every message is applied exactly once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from feedsvc.bounces.process import Matcher, signal_of
from feedsvc.bounces.report import InboxReport
from feedsvc.models import Message
from feedsvc.storage import Store
from feedsvc.storage.inbound_signals import SignalPolicy, record_signal

log = logging.getLogger("feedsvc.bounces")

PROCESSED = "processed"
BATCH = 500  # messages a transaction
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # larger files are left, with a problem


def waiting(folder: Path) -> list[Path]:
    """The messages in ``folder`` not yet processed, oldest name first (dot files, which
    an MTA may be writing, and sub-folders are left alone)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")
    )


def process_inbox(
    store: Store,
    folder: Path,
    matcher: Matcher,
    policy: SignalPolicy,
    now: Callable[[], datetime],
    *,
    batch: int = BATCH,
    after_commit: Callable[[Sequence[Path]], None] | None = None,
) -> InboxReport:
    """Read every message waiting in ``folder``; what each did. ``after_commit``: called
    with a batch's files between its commit and their move (tests stop there)."""
    report = InboxReport()
    files = waiting(folder)
    done = folder / PROCESSED
    for start in range(0, len(files), batch):
        chunk = _readable(files[start : start + batch], report)
        if not chunk:
            continue
        moment = now()
        with store.write() as conn:
            for _, raw in chunk:
                signal, _ = signal_of(conn, raw, matcher)
                outcome = record_signal(conn, signal, moment, policy, actor="bounce inbox")
                report.outcomes[outcome] += 1
        paths = [path for path, _ in chunk]
        if after_commit is not None:
            after_commit(paths)
        _move(paths, done, report)
        report.read += len(chunk)
    if report.read:
        shown = ", ".join(f"{n} {o.value}" for o, n in sorted(report.outcomes.items()))
        log.info("bounce inbox %s: %d message(s) read (%s)", folder, report.read, shown)
    return report


def _readable(paths: Sequence[Path], report: InboxReport) -> list[tuple[Path, bytes]]:
    chunk: list[tuple[Path, bytes]] = []
    for path in paths:
        try:
            if path.stat().st_size > MAX_MESSAGE_BYTES:
                report.problems.append(
                    Message.of(
                        "bounces.file_too_big",
                        "%(path)s: larger than %(mb)s MB, not a bounce; left where it is "
                        "(move or delete it)",
                        path=str(path),
                        mb=MAX_MESSAGE_BYTES // 2**20,
                    )
                )
                continue
            chunk.append((path, path.read_bytes()))
        except FileNotFoundError:
            continue  # taken by another reader since the listing
        except OSError as exc:
            report.problems.append(
                Message.of(
                    "bounces.file_unreadable",
                    "%(path)s: cannot be read (%(reason)s); left for next time",
                    path=str(path),
                    reason=exc.strerror,
                )
            )
    return chunk


def _move(paths: Sequence[Path], done: Path, report: InboxReport) -> None:
    try:
        done.mkdir(exist_ok=True)
    except OSError as exc:
        report.problems.append(
            Message.of(
                "bounces.folder_not_created",
                "%(path)s: cannot be created (%(reason)s); the messages read stay in the inbox "
                "and are skipped as read next time",
                path=str(done),
                reason=exc.strerror,
            )
        )
        return
    for path in paths:
        target = done / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            continue
        except OSError as exc:
            report.problems.append(
                Message.of(
                    "bounces.file_not_moved",
                    "%(path)s: cannot be moved to %(folder)s (%(reason)s); it is skipped as read "
                    "next time",
                    path=str(path),
                    folder=str(done),
                    reason=exc.strerror,
                )
            )
