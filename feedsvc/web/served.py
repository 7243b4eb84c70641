"""Feed files in memory, ready to serve: bytes, gzip bytes, a strong ETag, Last-Modified.

The build writes feeds to ``feeds.output_dir`` atomically and only when their bytes change
(:mod:`feedsvc.feeds.output`). The cache reads a file the first time it is asked for and then
checks it with one ``stat`` at most every ``check_every`` (one second by default): a new
inode, size or mtime means new bytes, which are read, hashed and compressed once. The daemon
can also call :meth:`ServedFeeds.reload` right after a build, so no reader waits that second.

The ETag is a hash of the bytes (strong: the same bytes give the same tag on any machine).
Last-Modified comes from the content too — the feed's ``lastBuildDate`` / ``updated`` /
newest ``date_modified``, which the build sets to the newest item's time, never "now" — and
falls back to the file's mtime for a feed without one.

The route (:func:`routes`) answers from the cache: conditional GET (ETag, Last-Modified),
gzip for a client that accepts it, HEAD.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc.feeds.output import FEED_NAMES, GENERATED_DIRS

log = logging.getLogger("feedsvc.web")

CONTENT_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
# A feed URL path: the three names at the top, or below categories/<slug>/ or tags/<slug>/.
_FEED_PATH = re.compile(
    r"^(?:(?:"
    + "|".join(GENERATED_DIRS)
    + r")/[^/\x00]+/)?(?:"
    + "|".join(re.escape(name) for name in FEED_NAMES)
    + r")$"
)
_RSS_DATE = re.compile(rb"<lastBuildDate>([^<]+)</lastBuildDate>")
_ATOM_DATE = re.compile(rb"<updated>([^<]+)</updated>")
FEED_CACHE_CONTROL = "public, max-age=300"
GZIP_MIN = 512  # smaller bodies are not worth compressing
# What a path a stranger typed can make the file system answer: "no such feed", quietly
# (a 300-character category name is ENAMETOOLONG, not a fault of ours).
_NO_SUCH_FILE = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL}
)


@dataclass(frozen=True, slots=True)
class FeedFile:
    """One feed, as served."""

    path: str  # relative to the output folder, e.g. "categories/부산/feed.xml"
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay
    etag: str  # quoted, strong
    last_modified: datetime
    last_modified_header: str
    content_type: str
    stat_key: tuple[int, int, int]  # inode, size, mtime_ns


@dataclass(slots=True)
class _Slot:
    feed: FeedFile
    checked: float  # monotonic seconds of the last stat


def is_feed_path(path: str) -> bool:
    """True for a path (relative, no leading slash) that names a feed file."""
    return bool(_FEED_PATH.match(path)) and ".." not in path.split("/")


def content_last_modified(name: str, body: bytes) -> datetime | None:
    """The feed's own time: RSS lastBuildDate, Atom's first updated, JSON's newest item."""
    try:
        if name == "feed.xml":
            found = _RSS_DATE.search(body)
            return None if found is None else parsedate_to_datetime(found.group(1).decode())
        if name == "atom.xml":
            found = _ATOM_DATE.search(body)
            return None if found is None else datetime.fromisoformat(found.group(1).decode())
        items = json.loads(body).get("items") or []
        stamps = [
            datetime.fromisoformat(item.get("date_modified") or item["date_published"])
            for item in items
            if item.get("date_modified") or item.get("date_published")
        ]
        return max(stamps) if stamps else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _unreadable(target: Path, exc: OSError) -> None:
    """One log line (no traceback) for a feed that is there but cannot be read; nothing
    for a path that names no file."""
    if exc.errno not in _NO_SUCH_FILE:
        log.warning(
            "feed %s cannot be read (%s); it is answered 404 until the daemon's user can "
            "read it (check its permissions and the disk)",
            target,
            exc.strerror or exc,
        )


def load_feed(folder: Path, path: str) -> FeedFile | None:
    """Read and prepare the feed ``path`` below ``folder``; None when there is no such file
    or it cannot be read (any OSError: the caller answers 404)."""
    target = folder / path
    try:
        with open(target, "rb") as handle:
            stat = os.fstat(handle.fileno())
            body = handle.read()
    except OSError as exc:
        _unreadable(target, exc)
        return None
    name = path.rsplit("/", 1)[-1]
    moment = content_last_modified(name, body)
    if moment is None or moment.tzinfo is None:
        moment = datetime.fromtimestamp(stat.st_mtime, UTC)
    moment = moment.astimezone(UTC).replace(microsecond=0)
    packed = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN else None
    if packed is not None and len(packed) >= len(body):
        packed = None
    return FeedFile(
        path=path,
        body=body,
        gzipped=packed,
        etag='"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"',
        last_modified=moment,
        last_modified_header=format_datetime(moment, usegmt=True),
        content_type=CONTENT_TYPES[name],
        stat_key=(stat.st_ino, stat.st_size, stat.st_mtime_ns),
    )


class ServedFeeds:
    """The feed files of one output folder, in memory (see the module docstring)."""

    def __init__(self, folder: Path, *, check_every: float = 1.0) -> None:
        self.folder = folder
        self.check_every = check_every
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def get(self, path: str, now: float) -> FeedFile | None:
        """The feed at ``path`` (already checked by :func:`is_feed_path`); ``now`` is a
        monotonic time, for the stat throttle. Only feeds that exist are kept: a miss is
        forgotten at once, so strangers' made-up paths cannot grow the cache (the cache
        holds at most the feeds on disk)."""
        slot = self._slots.get(path)
        if slot is not None and now - slot.checked < self.check_every:
            return slot.feed
        with self._lock:
            slot = self._slots.get(path)
            if slot is not None and now - slot.checked < self.check_every:
                return slot.feed
            feed = self._refresh(path, None if slot is None else slot.feed)
            if feed is None:
                self._slots.pop(path, None)
            else:
                self._slots[path] = _Slot(feed, now)
            return feed

    def __len__(self) -> int:
        """How many feeds are kept in memory."""
        return len(self._slots)

    def reload(self) -> None:
        """Forget every check: the next request for each feed looks at the disk again."""
        with self._lock:
            for slot in self._slots.values():
                slot.checked = float("-inf")

    def feeds(self, now: float) -> list[FeedFile]:
        """The top-level feeds that exist (for the home page's links)."""
        return [feed for name in FEED_NAMES if (feed := self.get(name, now)) is not None]

    def _refresh(self, path: str, known: FeedFile | None) -> FeedFile | None:
        target = self.folder / path
        try:
            stat = target.stat()
        except OSError as exc:
            _unreadable(target, exc)
            return None
        if known is not None and known.stat_key == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
            return known
        return load_feed(self.folder, path)


# --- the route -------------------------------------------------------------------------


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _not_modified(request: Request, feed: FeedFile) -> bool:
    given = request.headers.get("if-none-match")
    if given is not None:
        return _etag_matches(given, feed.etag)
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return feed.last_modified <= moment


async def serve_feed(feeds: ServedFeeds, request: Request) -> Response:
    """A feed file from memory, conditional GET, gzip, HEAD."""
    path = request.path_params["path"]
    # time.monotonic, not the clock: only the stat throttle's interval.
    feed = feeds.get(path, time.monotonic()) if is_feed_path(path) else None
    if feed is None:
        raise HTTPException(404)
    headers = {
        "ETag": feed.etag,
        "Last-Modified": feed.last_modified_header,
        "Cache-Control": FEED_CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, feed):
        return Response(status_code=304, headers=headers)
    body = feed.body
    if feed.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = feed.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, headers=headers, media_type=feed.content_type)


def routes(feeds: ServedFeeds) -> list[Route]:
    """Every path no other route takes: last in the app's routes."""
    endpoint = partial(serve_feed, feeds)
    return [Route("/{path:path}", endpoint, methods=["GET", "HEAD"], name="serve_feed")]
