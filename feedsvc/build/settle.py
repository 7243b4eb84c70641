"""The settle phase: readings → what each file is now, a post's metadata or its problem.

    readings + unchanged rows ─▶ first-seen dates (store) ─▶ metadata or problem per file
                              ─▶ duplicates (the post there first keeps its slug and id)

A file that breaks keeps its row's last good metadata (the build publishes that version);
its problem is reported. ``Settled`` is the result per file, so a builder that builds
again after a watcher's report settles only the files it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from feedsvc.build.parse import Decoded
from feedsvc.config import Settings
from feedsvc.content.links import LinkRef
from feedsvc.content.plaintext import shown
from feedsvc.content.posts import to_meta
from feedsvc.content.reading import AssetSizes, SourceReading, meta_json_of
from feedsvc.errors import ContentError
from feedsvc.models import Message, PostMeta, Problem, meta_from_dict
from feedsvc.storage import Store
from feedsvc.storage.posts import (
    SourceRow,
    first_seen_dates,
    peek_first_seen,
    problem_message_from_json,
    problem_message_json,
)


@dataclass(frozen=True)
class Settled:
    """Each file's outcome in a build: good posts' metadata, every hash, the problems, and
    the posts each one's Liquid links to (for the files parsed, checked once the live
    posts are known)."""

    metas: dict[str, PostMeta]
    hashes: dict[str, str]
    problems: dict[str, list[Problem]]
    links: dict[str, tuple[LinkRef, ...]] = field(default_factory=dict)

    def without(self, paths: Collection[str]) -> Settled:
        metas, hashes, problems = dict(self.metas), dict(self.hashes), dict(self.problems)
        links = dict(self.links)
        for path in paths:
            metas.pop(path, None)
            hashes.pop(path, None)
            problems.pop(path, None)
            links.pop(path, None)
        return Settled(metas, hashes, problems, links)


class FirstSeen(Enum):
    """Where a settle finds each slug's first sighting (the date of a post without one)."""

    RECORD = "record"  # the store's, the slugs never seen before recorded as seen now
    PEEK = "peek"  # the store's, recording nothing (``feedsvc check``)
    NOW = "now"  # a new store's first build: every slug is first seen now; the caller
    # records them with the rows (:func:`~feedsvc.storage.posts.record_first_seen`)


@dataclass
class _Sorted:
    """A settle's readings, sorted: the rows already made, and the files still to settle."""

    rows: list[SourceRow]
    unchanged: list[SourceRow]  # the rows standing for their files, as cached
    fresh: list[SourceReading]  # parsed files, to become posts (or problems)
    metas: dict[str, PostMeta]  # the metadata the workers decoded, by path


class Settling:
    """Settles files for one site and store; ``fingerprint`` marks the rows it writes."""

    def __init__(self, settings: Settings, store: Store, fingerprint: str) -> None:
        self.settings = settings
        self.store = store
        self.fingerprint = fingerprint
        # The files whose post kept the id it was published with (see _keep_id), since
        # the builder last took them.
        self.kept_ids: list[str] = []

    def settle(
        self,
        readings: Decoded,
        *,
        unchanged: Sequence[SourceRow] = (),
        cached: dict[str, SourceRow],
        now: datetime,
        known_metas: dict[str, tuple[str, PostMeta]],
        base: Settled,
        first_seen: FirstSeen,
    ) -> tuple[Settled, list[SourceRow], int]:
        """What each file is now (``base``, the files not looked at, plus the readings and
        the ``unchanged`` rows), the rows to save, and how many files were parsed.

        ``base`` is updated in place and returned. ``known_metas``: the metadata decoded
        from rows before (path → (JSON, metadata)), reused while a row's JSON is the same.
        """
        problems = base.problems
        ready = self._sort(readings, unchanged, cached, now, problems)
        slugs = [m.slug for m in ready.metas.values()]
        slugs += [r.parsed.slug for r in ready.fresh if r.parsed]
        seen = self._first_seen(slugs, now, first_seen)
        for reading in ready.fresh:
            row = cached.get(reading.path)
            meta = ready.metas.get(reading.path)
            if meta is None:
                assert reading.parsed is not None
                try:
                    meta = to_meta(
                        reading.parsed,
                        self.settings.parse_options,
                        first_seen=seen.get(reading.parsed.slug, now),
                        asset_size=AssetSizes(self.settings.parse_options),
                    )
                except ContentError as exc:
                    problem = Problem(reading.path, exc.reason, exc.line, message=exc.message)
                    problems[reading.path] = [problem]
                    ready.rows.append(self.broken_row(reading, problem, row, now))
                    continue
            if reading.warnings:
                problems[reading.path] = list(reading.warnings)
            if reading.links:
                base.links[reading.path] = reading.links
            kept = self._keep_id(reading, meta, row)
            base.metas[meta.source] = kept
            json_text = reading.meta_json if kept is meta else ""
            first = seen.get(meta.slug, now)
            ready.rows.append(self._post_row(reading, kept, row, first, json_text))
        for row in ready.rows:
            base.hashes[row.source_path] = row.content_hash
        _settle_unchanged(ready.unchanged, base, known_metas)
        return base, ready.rows, len(ready.fresh)

    def _sort(
        self,
        readings: Decoded,
        unchanged: Sequence[SourceRow],
        cached: dict[str, SourceRow],
        now: datetime,
        problems: dict[str, list[Problem]],
    ) -> _Sorted:
        """Broken files get their problem and row now; a file whose bytes hash as cached
        keeps its row with the new stat (after the ``unchanged`` ones); the rest are to
        settle."""
        ready = _Sorted([], list(unchanged), [], {})
        for reading, decoded in readings:
            if decoded is not None:
                ready.metas[reading.path] = decoded
            row = cached.get(reading.path)
            if reading.problem is not None:
                problems[reading.path] = [reading.problem]
                ready.rows.append(self.broken_row(reading, reading.problem, row, now))
            elif not reading.meta_json and reading.parsed is None and row is not None:
                # Same bytes as cached: only the stat moved (a touch, a checkout).
                refreshed = replace(row, size=reading.size, mtime_ns=reading.mtime_ns)
                ready.rows.append(refreshed)
                ready.unchanged.append(refreshed)
            else:
                ready.fresh.append(reading)
        return ready

    def _first_seen(self, slugs: list[str], now: datetime, how: FirstSeen) -> dict[str, datetime]:
        """Each slug's first sighting. Every one is recorded (unless ``check``), so that
        removing a post's date later keeps it put."""
        if how is FirstSeen.NOW:
            return {}  # every slug defaults to now
        if how is FirstSeen.PEEK:
            with self.store.read() as conn:
                return peek_first_seen(conn, slugs)
        with self.store.write() as conn:
            return first_seen_dates(conn, slugs, now)

    def _keep_id(self, reading: SourceReading, meta: PostMeta, row: SourceRow | None) -> PostMeta:
        """``meta``, with the id its post was published with when that differs and its URL
        did not change: ids stay once chosen (``feeds.id_style`` changed on a store that
        knows the post; its front matter no longer sets one). A front-matter ``id:`` wins."""
        if row is None or row.post_id is None or row.post_id == meta.id or row.meta is None:
            return meta
        own_id = reading.parsed.id is not None if reading.parsed is not None else reading.own_id
        if own_id or json.loads(row.meta).get("url") != meta.url:
            return meta
        self.kept_ids.append(meta.source)
        return replace(meta, id=row.post_id)

    def _post_row(
        self,
        reading: SourceReading,
        meta: PostMeta,
        row: SourceRow | None,
        first_seen: datetime,
        meta_json: str,
    ) -> SourceRow:
        """The row of a file that is a post now (``meta_json``: its JSON, if made)."""
        return SourceRow(
            source_path=meta.source,
            post_id=meta.id,
            slug=meta.slug,
            size=reading.size,
            mtime_ns=reading.mtime_ns,
            content_hash=reading.content_hash,
            fingerprint=self.fingerprint,
            first_seen=first_seen,
            published=meta.published,
            meta=meta_json or meta_json_of(meta),
            render_key=row.render_key if row else None,
            problem=None,
            problem_line=None,
        )

    def broken_row(
        self, reading: SourceReading, problem: Problem, row: SourceRow | None, now: datetime
    ) -> SourceRow:
        """The row of a file that cannot be a post now; its last good version stays."""
        return SourceRow(
            source_path=reading.path,
            post_id=row.post_id if row else None,
            slug=row.slug if row else None,
            size=reading.size,
            mtime_ns=reading.mtime_ns,
            content_hash=reading.content_hash,
            fingerprint=self.fingerprint,
            first_seen=row.first_seen if row else now,
            published=row.published if row else None,
            meta=row.meta if row else None,
            render_key=row.render_key if row else None,
            problem=problem.reason,
            problem_line=problem.line,
            problem_message=problem_message_json(problem),
        )

    def without_duplicates(
        self,
        metas: dict[str, PostMeta],
        cached: dict[str, SourceRow],
        problems: list[Problem],
        refused_before: Callable[[], Collection[str]],
    ) -> tuple[list[PostMeta], dict[str, str]]:
        """The posts that keep their slug and id, and the files left out (path → why).

        Decided once and kept: a post that was live with its id before (not left out by
        the last build, ``refused_before``) keeps it against newcomers; among equals the
        path decides. A file stays left out while the other one holds the slug or id.
        """
        values = metas.values()
        if len({m.slug for m in values}) == len({m.id for m in values}) == len(metas):
            return list(values), {}  # the usual case: nothing to choose between
        before = set(refused_before())
        was_there: list[str] = []
        newcomers: list[str] = []
        for path, meta in metas.items():
            row = cached.get(path)
            if (
                row is not None
                and row.post_id == meta.id
                and row.meta is not None
                and path not in before
            ):
                was_there.append(path)
            else:
                newcomers.append(path)
        was_there.sort()
        newcomers.sort()
        taken_slug: dict[str, str] = {}
        taken_id: dict[str, str] = {}
        live: list[PostMeta] = []
        refused: dict[str, str] = {}
        for path in was_there + newcomers:
            meta = metas[path]
            if meta.slug in taken_slug:
                why = Message.of(
                    "build.duplicate_slug",
                    "duplicate slug %(slug)s: %(other)s already uses it; give this post its "
                    "own `slug:` in the front matter",
                    slug=shown(meta.slug),
                    other=taken_slug[meta.slug],
                )
            elif meta.id in taken_id:
                why = Message.of(
                    "build.duplicate_id",
                    "duplicate id %(id)s: %(other)s already uses it; give this post its own "
                    "`id:` (or permalink)",
                    id=shown(meta.id),
                    other=taken_id[meta.id],
                )
            else:
                taken_slug[meta.slug] = meta.source
                taken_id[meta.id] = meta.source
                live.append(meta)
                continue
            refused[path] = str(why)
            problems.append(Problem.of(meta.source, why))
        return live, refused


def _settle_unchanged(
    unchanged: list[SourceRow], settled: Settled, known_metas: dict[str, tuple[str, PostMeta]]
) -> None:
    """Files as their rows say: a problem, or metadata decoded from the row's JSON (or
    reused from ``known_metas`` while the JSON is the same)."""
    for row in unchanged:
        settled.hashes[row.source_path] = row.content_hash
        if row.problem is not None:
            message = problem_message_from_json(row.problem_message)
            settled.problems[row.source_path] = [
                Problem(row.source_path, row.problem, row.problem_line, message=message)
            ]
        elif row.meta is not None:
            known = known_metas.get(row.source_path)
            if known is not None and known[0] == row.meta:
                settled.metas[row.source_path] = known[1]
            else:
                meta = meta_from_dict(json.loads(row.meta))
                known_metas[row.source_path] = (row.meta, meta)
                settled.metas[row.source_path] = meta
