"""A first build's parse, started before the rest of feedsvc is even imported.

On a new store nothing is cached, so every file will be parsed whatever the store says:
``feedsvc build`` scans the folder and forks the parse workers right after reading its
config, and imports SQLAlchemy, opens the store and loads the renderers while they work
(about a third of a second on a 10,000-post site). Only what parsing needs is imported
here. The builder takes the parse over when the store is as empty as it looked; otherwise
it drops it and starts again with what the store knows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from feedsvc.batches import Batches, default_workers
from feedsvc.config import Settings
from feedsvc.reading import Outcome, parse_batch
from feedsvc.sources import Scan, SourceFile, scan_content

# Below this many files, worker processes cost more than they save (a parse is ~0.1 ms,
# forking the pool ~20 ms).
PARSE_THRESHOLD = 400


@dataclass
class HeadStart:
    scan: Scan
    to_read: list[tuple[SourceFile, str | None]]
    parsing: Batches[tuple[SourceFile, str | None], Outcome]

    def drop(self) -> None:
        """Stop the workers: the store knew more than its file's absence said."""
        if self.parsing.pool is not None:
            self.parsing.pool.shutdown(cancel_futures=True)


def parse_batches(
    settings: Settings, to_read: list[tuple[SourceFile, str | None]], workers: int, share: float
) -> Batches[tuple[SourceFile, str | None], Outcome]:
    """Parse ``to_read`` in worker processes, the main process taking ``share`` of a fair
    part (it also decodes every worker's results)."""
    return Batches(
        parse_batch,
        settings,
        to_read,
        workers=workers,
        threshold=PARSE_THRESHOLD,
        main_share=share / workers,
    )


def new_store(url: str) -> bool:
    """True for a SQLite store whose file does not exist yet (nothing can be cached)."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return False
    return not os.path.exists(url.removeprefix("sqlite:///"))


def head_start(settings: Settings) -> HeadStart | None:
    """Scan and start parsing now when the store is new and the site big enough."""
    if not new_store(settings.storage_url):
        return None
    content = settings.content
    scan = scan_content(settings.content_dir, content.extensions, content.max_bytes)
    if len(scan.files) < PARSE_THRESHOLD:
        return None
    to_read: list[tuple[SourceFile, str | None]] = [(file, None) for file in scan.files]
    # Workers parse everything: the main process imports the rest, opens the store, then
    # settles and writes each chunk of results as it comes.
    return HeadStart(scan, to_read, parse_batches(settings, to_read, default_workers(), 0.0))
