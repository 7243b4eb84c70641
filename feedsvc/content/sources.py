"""The content folder on disk → the list of source files to consider (the I/O edge of content).

Rules: every file below the folder with a configured extension, recursively; hidden
files and folders skipped, and those whose name starts with '_' (``_drafts/``, Astro's
``_templates/``, Hugo's ``_index.md``) but Jekyll's ``_posts/``; a symlink whose target
leaves the folder is refused and reported; a file over ``content.max_bytes`` is reported, not read.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from urllib.parse import unquote, urlsplit

from feedsvc.models import Message, Problem

POSTS_DIR = "_posts"  # Jekyll's posts: the one '_' folder that holds posts


def skipped(name: str) -> bool:
    """Whether a file or folder of this name below the content folder is left out."""
    return name[:1] in "._" and name != POSTS_DIR


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # below the content folder, "/"-separated
    abspath: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Scan:
    files: list[SourceFile]  # sorted by path
    problems: list[Problem]
    # The paths a rescan looked at (None: the whole folder was walked).
    touched: frozenset[str] | None = field(default=None, compare=False)

    def find(self, path: str) -> SourceFile | None:
        at = bisect_left(self.files, path, key=_PATH)
        found = self.files[at] if at < len(self.files) else None
        return found if found is not None and found.path == path else None


def scan_content(root: Path, extensions: tuple[str, ...], max_bytes: int) -> Scan:
    """Walk ``root`` and list the source files, sorted by path, with what was refused."""
    problems: list[Problem] = []
    files = list(walk_content(root, extensions, max_bytes, problems))
    return sorted_scan(files, problems)


def sorted_scan(files: list[SourceFile], problems: list[Problem]) -> Scan:
    files.sort(key=_PATH)
    problems.sort(key=lambda p: p.path)
    return Scan(files, problems)


def walk_content(
    root: Path, extensions: tuple[str, ...], max_bytes: int, problems: list[Problem]
) -> Iterator[SourceFile]:
    """The source files below ``root`` as they are found (in no order); what is refused
    goes to ``problems``."""
    if not root.is_dir():
        missing = Message.of(
            "content.no_folder",
            "the content folder does not exist (set content.dir in config.yaml)",
        )
        problems.append(Problem.of(str(root), missing))
        return
    real_root = os.path.realpath(root)
    wanted = tuple(ext.lower() for ext in extensions)
    seen_dirs: set[str] = {real_root}
    pending: list[tuple[str, str]] = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            unreadable = Message.of(
                "content.folder_unreadable",
                "cannot read the folder: %(reason)s",
                reason=exc.strerror,
            )
            problems.append(Problem.of(prefix or ".", unreadable))
            continue
        for entry in entries:
            name = entry.name
            if name[:1] in "._" and name != POSTS_DIR:  # skipped(name), inlined: a call a file
                continue
            relative = f"{prefix}{name}"
            is_link = entry.is_symlink()
            if is_link:
                target = os.path.realpath(entry.path)
                if target != real_root and not target.startswith(real_root + os.sep):
                    if entry.is_dir() or name.lower().endswith(wanted):
                        problems.append(Problem.of(relative, _OUTSIDE))
                    continue
            try:
                info = entry.stat()
            except OSError as exc:
                problems.append(Problem.of(relative, cannot_read(exc)))
                continue
            if stat.S_ISDIR(info.st_mode):
                real = os.path.realpath(entry.path)
                if real not in seen_dirs:  # a symlink loop inside the folder is walked once
                    seen_dirs.add(real)
                    pending.append((entry.path, relative + "/"))
                continue
            if not stat.S_ISREG(info.st_mode) or not name.lower().endswith(wanted):
                continue
            if info.st_size > max_bytes:
                problems.append(_too_big(relative, info.st_size, max_bytes))
                continue
            yield SourceFile(relative, entry.path, info.st_size, info.st_mtime_ns)


def rescan(
    previous: Scan,
    root: Path,
    changed: Iterable[str],
    extensions: tuple[str, ...],
    max_bytes: int,
) -> Scan | None:
    """``previous`` brought up to date for the ``changed`` paths (absolute, as a watcher
    reports them), looking only at those; None when only a full walk can tell: a folder
    came, went or changed, a path is outside ``root``, or a symlink is involved.
    """
    base = os.path.abspath(root)
    real_root = os.path.realpath(root)
    wanted = tuple(ext.lower() for ext in extensions)
    files = list(previous.files)  # sorted by path: edited in place, a path at a time
    problems = list(previous.problems)
    touched: set[str] = set()
    for abspath in changed:
        relative = os.path.relpath(os.path.abspath(abspath), base)
        if relative == "." or relative.startswith(".." + os.sep) or relative == "..":
            return None
        parts = relative.split(os.sep)
        if any(map(skipped, parts)):
            continue  # never a source file, whatever happened to it
        path = "/".join(parts)
        touched.add(path)
        at = bisect_left(files, path, key=_PATH)
        if at < len(files) and files[at].path == path:
            del files[at]
        problems = [p for p in problems if p.path != path]
        try:
            info = os.lstat(abspath)
        except FileNotFoundError:
            below = bisect_left(files, path + "/", key=_PATH)
            if below < len(files) and files[below].path.startswith(path + "/"):
                return None  # a folder went away
            continue
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode):
            return None
        if os.path.realpath(abspath) != os.path.join(real_root, *parts):
            return None  # reached through a symlinked folder
        if not stat.S_ISREG(info.st_mode) or not parts[-1].lower().endswith(wanted):
            continue
        if info.st_size > max_bytes:
            problems.append(_too_big(path, info.st_size, max_bytes))
            continue
        file = SourceFile(path, os.path.join(root, *parts), info.st_size, info.st_mtime_ns)
        files.insert(bisect_left(files, path, key=_PATH), file)
    problems.sort(key=lambda p: p.path)
    return Scan(files, problems, frozenset(touched))


_PATH = attrgetter("path")


def _too_big(path: str, size: int, max_bytes: int) -> Problem:
    return Problem.of(
        path,
        Message.of(
            "content.file_too_big",
            "file is %(size)s bytes, over content.max_bytes (%(limit)s); split it or raise "
            "content.max_bytes",
            size=size,
            limit=max_bytes,
        ),
    )


_OUTSIDE = Message.of(
    "content.symlink_outside",
    "symlink points outside the content folder; refused (copy the file into the folder instead)",
)


def cannot_read(exc: OSError) -> Message:
    """A file that cannot be read, and the system's reason."""
    return Message.of(
        "content.cannot_read", "cannot read: %(reason)s", reason=exc.strerror or str(exc)
    )


def asset_size(
    assets_dir: Path, site_url: str, url: str, folders: dict[str, bool] | None = None
) -> int | None:
    """Size of the local file behind an absolute asset URL of this site, if there is one.

    ``folders``: whether the folder behind each URL folder (the URL up to its last '/')
    exists, as found so far: a site's images share a few folders, and when one is
    missing none of its files needs a look. (URLs alike up to their last '/' name files
    of one folder, whatever '?' or '#' they hold.)
    """
    if not url.startswith(site_url):
        return None
    head = url.rpartition("/")[0]
    if folders is not None and folders.get(head) is False:
        return None
    relative = unquote(urlsplit(url[len(site_url) :]).path)
    base = os.path.normpath(assets_dir)
    candidate = os.path.normpath(os.path.join(base, relative))
    if not candidate.startswith(base + os.sep):  # '..' must not climb out of the folder
        return None
    if folders is not None and head not in folders:
        folders[head] = os.path.isdir(os.path.dirname(candidate))
        if not folders[head]:
            return None
    try:
        info = os.stat(candidate)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
