"""Parse outcomes → what each file is now: a post's metadata, or its problem.

    outcomes + unchanged rows ─▶ first-seen dates (store) ─▶ metadata or problem per file
                              ─▶ duplicates (the post there first keeps its slug and id)

A file that breaks keeps its row's last good metadata (the build publishes that version);
its problem is reported. ``Settled`` is the result per file, so a builder that builds
again after a watcher's report settles only the files it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime

from feedsvc.config import Settings
from feedsvc.content.plaintext import shown
from feedsvc.content.posts import to_meta
from feedsvc.content.reading import AssetSizes, Outcome, meta_json_of
from feedsvc.errors import ContentError
from feedsvc.models import PostMeta, Problem, meta_from_dict
from feedsvc.storage import Store
from feedsvc.storage.posts import SourceRow, first_seen_dates, peek_first_seen


@dataclass(frozen=True)
class Settled:
    """Each file's outcome in a build: good posts' metadata, every hash, the problems."""

    metas: dict[str, PostMeta]
    hashes: dict[str, str]
    problems: dict[str, list[Problem]]

    def without(self, paths: Collection[str]) -> Settled:
        metas, hashes, problems = dict(self.metas), dict(self.hashes), dict(self.problems)
        for path in paths:
            metas.pop(path, None)
            hashes.pop(path, None)
            problems.pop(path, None)
        return Settled(metas, hashes, problems)


class Settling:
    """Settles files for one site and store; ``fingerprint`` marks the rows it writes."""

    def __init__(self, settings: Settings, store: Store, fingerprint: str) -> None:
        self.settings = settings
        self.store = store
        self.fingerprint = fingerprint

    def settle(
        self,
        outcomes: list[tuple[Outcome, PostMeta | None]],
        unchanged: list[SourceRow],
        cached: dict[str, SourceRow],
        now: datetime,
        dry_run: bool,
        known_metas: dict[str, tuple[str, PostMeta]],
        base: Settled,
        *,
        new_store: bool = False,
    ) -> tuple[Settled, list[SourceRow], int]:
        """What each file is now (``base``, the files not looked at, plus the outcomes and
        the unchanged rows), the rows to save, and how many files were parsed.

        ``new_store``: nothing was ever seen, so every slug is first seen ``now``; the
        caller records them with the rows (:func:`record_first_seen`).
        """
        rows: list[SourceRow] = []
        fresh: list[Outcome] = []
        parsed_metas: dict[str, PostMeta] = {}
        settled = base
        problems = settled.problems
        for outcome, decoded in outcomes:
            if decoded is not None:
                parsed_metas[outcome.path] = decoded
            row = cached.get(outcome.path)
            if outcome.problem is not None:
                problems[outcome.path] = [outcome.problem]
                rows.append(self.broken_row(outcome, outcome.problem, row, now))
            elif not outcome.meta_json and outcome.parsed is None and row is not None:
                # Same bytes as cached: only the stat moved (a touch, a checkout).
                refreshed = replace(row, size=outcome.size, mtime_ns=outcome.mtime_ns)
                rows.append(refreshed)
                unchanged.append(refreshed)
            else:
                fresh.append(outcome)

        # Every slug's first sighting is recorded, so removing a date later keeps it put.
        seen: dict[str, datetime] = {}  # a new store's: every slug defaults to now
        if not new_store:
            slugs = [m.slug for m in parsed_metas.values()]
            slugs += [o.parsed.slug for o in fresh if o.parsed]
            if dry_run:
                with self.store.read() as conn:
                    seen = peek_first_seen(conn, slugs)
            else:
                with self.store.write() as conn:
                    seen = first_seen_dates(conn, slugs, now)

        metas = settled.metas
        for outcome in fresh:
            row = cached.get(outcome.path)
            meta = parsed_metas.get(outcome.path)
            if meta is None:
                assert outcome.parsed is not None
                try:
                    meta = to_meta(
                        outcome.parsed,
                        self.settings.parse_options,
                        first_seen=seen.get(outcome.parsed.slug, now),
                        asset_size=AssetSizes(self.settings.parse_options),
                    )
                except ContentError as exc:
                    problem = Problem(outcome.path, exc.reason, exc.line)
                    problems[outcome.path] = [problem]
                    rows.append(self.broken_row(outcome, problem, row, now))
                    continue
            metas[meta.source] = meta
            rows.append(
                SourceRow(
                    source_path=meta.source,
                    post_id=meta.id,
                    slug=meta.slug,
                    size=outcome.size,
                    mtime_ns=outcome.mtime_ns,
                    content_hash=outcome.content_hash,
                    fingerprint=self.fingerprint,
                    first_seen=seen.get(meta.slug, now),
                    published=meta.published,
                    meta=outcome.meta_json or meta_json_of(meta),
                    render_key=row.render_key if row else None,
                    problem=None,
                    problem_line=None,
                )
            )
        hashes = settled.hashes
        for row in rows:
            hashes[row.source_path] = row.content_hash
        for row in unchanged:
            hashes[row.source_path] = row.content_hash
            if row.problem is not None:
                problems[row.source_path] = [
                    Problem(row.source_path, row.problem, row.problem_line)
                ]
            elif row.meta is not None:
                known = known_metas.get(row.source_path)
                if known is not None and known[0] == row.meta:
                    metas[row.source_path] = known[1]
                else:
                    meta = meta_from_dict(json.loads(row.meta))
                    known_metas[row.source_path] = (row.meta, meta)
                    metas[row.source_path] = meta
        return settled, rows, len(fresh)

    def broken_row(
        self, outcome: Outcome, problem: Problem, row: SourceRow | None, now: datetime
    ) -> SourceRow:
        """The row of a file that cannot be a post now; its last good version stays."""
        return SourceRow(
            source_path=outcome.path,
            post_id=row.post_id if row else None,
            slug=row.slug if row else None,
            size=outcome.size,
            mtime_ns=outcome.mtime_ns,
            content_hash=outcome.content_hash,
            fingerprint=self.fingerprint,
            first_seen=row.first_seen if row else now,
            published=row.published if row else None,
            meta=row.meta if row else None,
            render_key=row.render_key if row else None,
            problem=problem.reason,
            problem_line=problem.line,
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
                refused[path] = (
                    f"duplicate slug {shown(meta.slug)}: {taken_slug[meta.slug]} already uses it; "
                    "give this post its own `slug:` in the front matter"
                )
            elif meta.id in taken_id:
                refused[path] = (
                    f"duplicate id {shown(meta.id)}: {taken_id[meta.id]} already uses it; "
                    "give this post its own `id:` (or permalink)"
                )
            else:
                taken_slug[meta.slug] = meta.source
                taken_id[meta.id] = meta.source
                live.append(meta)
                continue
            problems.append(Problem(meta.source, refused[path]))
        return live, refused
