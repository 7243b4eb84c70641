"""Feed files on disk: atomic writes (temp file + rename), only when the bytes change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from feedsvc.errors import OutputError

FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")
GENERATED_DIRS = ("categories", "tags")
# Files staged at once by write_feed_files. Writing and fsync release the GIL, and a
# cold build's cost is mostly fsync waits, which overlap well.
_WRITERS = 8


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly these bytes."""
    if _holds(path, data):
        return False
    _publish(_stage(path, data), path)
    return True


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False


def _stage(path: Path, data: bytes) -> str:
    """The name of a new temp file beside ``path``, holding ``data`` synced to disk."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # a new folder: mkdir only then, not for every file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}; no feed of this build was "
            "published, the previous ones stay as they were: free disk space or fix the "
            "folder's permissions, then build again"
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _publish(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_feed_files(
    output_dir: Path, files: dict[str, bytes], *, only: Collection[str] | None = None
) -> list[str]:
    """Write every feed file that changed; remove category/tag feeds no longer produced.

    ``only``: the files that may differ from the disk, when the caller knows the others
    are as it wrote them and no feed went away (the daemon after a watcher's report).
    Returns the relative paths written or removed, sorted.
    """
    changed = publish(stage_feed_files(output_dir, files, only=only))
    if only is not None:
        return sorted(changed)
    return sorted(changed + remove_stale_feeds(output_dir, files.keys()))


@dataclass(frozen=True)
class Staged:
    """Feed files written to temp files beside their place and synced, not yet renamed:
    ``(relative path, temp file)`` in the order they are to be published."""

    output_dir: Path
    files: tuple[tuple[str, str], ...]


def stage_feed_files(
    output_dir: Path, files: dict[str, bytes], *, only: Collection[str] | None = None
) -> Staged:
    """Every changed feed file written and synced under a temp name. If one cannot be
    written (a full disk), none is kept and the error is raised: the feeds on disk stay
    the previous build's complete set."""
    # The site's own feeds first: they are the ones most readers poll.
    names = sorted(files, key=lambda rel: ("/" in rel, rel))
    names = [rel for rel in names if only is None or rel in only]
    return Staged(output_dir, _stage_all(output_dir, names, files))


def publish(*sets: Staged) -> list[str]:
    """Rename staged files into place, in order; the relative paths published."""
    published: list[str] = []
    pending = [(staged.output_dir, rel, tmp) for staged in sets for rel, tmp in staged.files]
    try:
        for output_dir, rel, tmp in pending:
            os.replace(tmp, output_dir / rel)
            published.append(rel)
    except BaseException:
        discard(Staged(Path(), tuple((rel, tmp) for _, rel, tmp in pending[len(published) :])))
        raise
    return published


def discard(*sets: Staged) -> None:
    """Remove staged temp files that will not be published."""
    for staged in sets:
        for _, tmp in staged.files:
            with suppress(OSError):
                os.unlink(tmp)


def remove_stale_feeds(output_dir: Path, produced: Collection[str]) -> list[str]:
    """Remove the category and tag feed files not among ``produced`` (and their emptied
    folders); the relative paths removed."""
    removed = []
    for folder in GENERATED_DIRS:
        root = output_dir / folder
        if not root.is_dir():
            continue
        for feed in sorted(root.glob("*/*")):
            rel = feed.relative_to(output_dir).as_posix()
            if feed.name in FEED_NAMES and rel not in produced:
                feed.unlink()
                removed.append(rel)
                if not any(feed.parent.iterdir()):
                    feed.parent.rmdir()
    return removed


def _stage_all(
    output_dir: Path, names: Sequence[str], files: dict[str, bytes]
) -> tuple[tuple[str, str], ...]:
    """The changed ones of ``names`` staged, in that order.

    The comparisons run here (a warm build is all reads, which threads only slow down);
    the changed files' temp files are written and synced by a few threads at once. Nothing
    is renamed here: a failure removes every temp file and raises.
    """
    changed = [rel for rel in names if not _holds(output_dir / rel, files[rel])]
    if not changed:
        return ()
    with ThreadPoolExecutor(min(_WRITERS, len(changed)), "feedsvc-write") as pool:
        staged = [pool.submit(_stage, output_dir / rel, files[rel]) for rel in changed]
        try:
            temps = [future.result() for future in staged]
        except BaseException:
            _discard(staged)
            raise
    return tuple(zip(changed, temps, strict=True))


def _discard(staged: Sequence[Future[str]]) -> None:
    """Remove the temp files of staged writes that will not be published."""
    for future in staged:
        future.cancel()
    wait(staged)
    for future in staged:
        if not future.cancelled() and future.exception() is None:
            with suppress(OSError):
                os.unlink(future.result())
