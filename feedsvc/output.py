"""Feed files on disk: atomic writes (temp file + rename), only when the bytes change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path

FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")
GENERATED_DIRS = ("categories", "tags")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly these bytes."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_feed_files(
    output_dir: Path, files: dict[str, bytes], *, only: Collection[str] | None = None
) -> list[str]:
    """Write every feed file that changed; remove category/tag feeds no longer produced.

    ``only``: the files that may differ from the disk, when the caller knows the others
    are as it wrote them and no feed went away (the daemon after a watcher's report).
    Returns the relative paths written or removed, sorted.
    """
    # The site's own feeds first: they are the ones most readers poll.
    names = sorted(files, key=lambda rel: ("/" in rel, rel))
    changed = [
        rel
        for rel in names
        if (only is None or rel in only) and write_if_changed(output_dir / rel, files[rel])
    ]
    if only is not None:
        return sorted(changed)
    for folder in GENERATED_DIRS:
        root = output_dir / folder
        if not root.is_dir():
            continue
        for feed in sorted(root.glob("*/*")):
            rel = feed.relative_to(output_dir).as_posix()
            if feed.name in FEED_NAMES and rel not in files:
                feed.unlink()
                changed.append(rel)
                if not any(feed.parent.iterdir()):
                    feed.parent.rmdir()
    return sorted(changed)
