"""The parse phase: which files are read again, and their parse in worker processes
(:mod:`feedsvc.content.reading` over :class:`~feedsvc.build.parallel.Batches`).

Two ways, one per kind of build:

- :func:`reparse`, every build but a new store's first: only the files whose size or
  mtime moved since the store's rows were written are read (after a watcher's report,
  only those it named), and one whose bytes hash as cached is not parsed. The main
  process takes a share of the files and decodes every result; the results come in the
  order of the files and are settled together.
- :func:`first_parse`, the first build on an empty store: nothing is cached, so every
  file will be parsed. The workers are forked before the folder is walked, and the walk
  feeds them its first files as it goes. The builder settles each chunk of results and
  saves its rows as they come (``Batches.chunks_ready``), parsing chunks itself when none
  is ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from feedsvc.build.parallel import Batches, chunk_bounds, default_workers
from feedsvc.config import ParseOptions, Settings
from feedsvc.content.reading import SourceReading, decoded_meta, parse_batch
from feedsvc.content.sources import Scan, SourceFile, sorted_scan, walk_content
from feedsvc.models import PostMeta, Problem

if TYPE_CHECKING:  # not imported at run time: a head start begins before SQLAlchemy loads
    from feedsvc.storage.posts import SourceRow

# Below this many files, worker processes cost more than they save (a parse is ~0.1 ms,
# forking the pool ~20 ms).
PARSE_THRESHOLD = 400
# A first parse's walk sends the workers this many files at a time until each has had
# some: they parse (~0.1 ms a file) while it goes on (~5 µs a file).
FIRST_CHUNK = 400
# The main process's part of a re-parse, as a fraction of a fair share: a little under,
# as it also decodes every worker's results.
MAIN_SHARE = 0.8

Parsing = Batches[ParseOptions, tuple[SourceFile, str | None], SourceReading]
Decoded = list[tuple[SourceReading, PostMeta | None]]  # each reading with its metadata


@dataclass
class ToRead:
    """The files a build looks at, split: those as the store's rows left them, and those
    to read again, each with its cached hash when bytes that hash the same need no parse."""

    unchanged: list[SourceRow] = field(default_factory=list)
    files: list[tuple[SourceFile, str | None]] = field(default_factory=list)


def files_to_read(
    files: Sequence[SourceFile], cached: dict[str, SourceRow], fingerprint: str, *, reuse: bool
) -> ToRead:
    """Which of ``files`` must be read. ``reuse``: whether the store's rows may stand for
    a file whose size and mtime are as cached (not for ``check``, which reads them all)."""
    split = ToRead()
    for file in files:
        row = cached.get(file.path)
        fresh = row is not None and row.fingerprint == fingerprint and reuse
        if fresh and row and row.size == file.size and row.mtime_ns == file.mtime_ns:
            split.unchanged.append(row)
        else:
            split.files.append((file, row.content_hash if fresh and row else None))
    return split


def reparse(
    options: ParseOptions, to_read: list[tuple[SourceFile, str | None]], workers: int
) -> Parsing:
    """Parse ``to_read`` in worker processes when there are many, the main process taking
    :data:`MAIN_SHARE` of a fair part."""
    return Batches(
        parse_batch,
        options,
        to_read,
        workers=workers,
        threshold=PARSE_THRESHOLD,
        main_share=MAIN_SHARE / workers,
    )


def first_parse(
    options: ParseOptions, folder: Path, extensions: tuple[str, ...], *, processes: int
) -> tuple[Scan, Parsing | None]:
    """Walk ``folder`` and parse every file it holds at once, in ``processes`` workers
    forked before the walk, which feeds them its first files while it goes on.

    The parse is None (its workers stopped) for a site too small to share out; the scan
    is the folder's either way.
    """
    parsing = Batches.fed(parse_batch, options, processes)
    files: list[SourceFile] = []
    problems: list[Problem] = []
    sent = 0
    for file in walk_content(folder, extensions, options.max_bytes, problems):
        files.append(file)
        if len(files) - sent == FIRST_CHUNK and sent < FIRST_CHUNK * (processes + 1):
            parsing.add([(f, None) for f in files[sent:]])
            sent = len(files)
    if len(files) < PARSE_THRESHOLD:
        parsing.stop()
        return sorted_scan(files, problems), None
    rest = files[sent:]
    for start, end in chunk_bounds(len(rest), processes + 1):
        parsing.add([(f, None) for f in rest[start:end]])
    return sorted_scan(files, problems), parsing


@dataclass(frozen=True)
class HeadStart:
    """A first parse begun before the store was opened (see :func:`head_start`)."""

    scan: Scan
    parsing: Parsing | None


def head_start(settings: Settings) -> HeadStart | None:
    """The first parse of a new SQLite store's site, begun before the store is opened.

    ``feedsvc build`` calls it before it imports SQLAlchemy and creates the store
    (~0.2 s), so that the workers parse meanwhile: the cold build of the benchmark's
    10,000 posts takes ~10 % less. Only where the store is certainly empty (its file does
    not exist yet); the builder still checks, and stops the parse if it is not needed.
    """
    path = settings.sqlite_path
    workers = default_workers()
    if path is None or path.exists() or workers < 2:
        return None
    content = settings.content
    scan, parsing = first_parse(
        settings.parse_options, settings.content_dir, content.extensions, processes=workers - 1
    )
    return HeadStart(scan, parsing)


def decode(readings: list[SourceReading]) -> Decoded:
    """Each reading with the PostMeta it carries (None when it carries none)."""
    return [(reading, decoded_meta(reading)) for reading in readings]


def import_renderers() -> None:
    """Import what renders posts and feeds (lxml, cmark, feedgen: ~0.1 s): called while
    the workers parse, so that neither the unchanged-site path nor the render waits."""
    import feedsvc.content.markup
    import feedsvc.feeds.render  # noqa: F401
