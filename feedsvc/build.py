"""One build: content folder → posts → feeds on disk, incrementally, reporting every problem.

    scan (sources) → parse what changed (content, in worker processes when many)
      → first-seen dates, duplicates, last good versions (store)
      → choose feed posts (feeds.plan_feeds) → render only those (markup)
      → feed bytes (feeds.render_feeds) → atomic writes of changed files (output)

A file whose size and mtime match the cache is not read; one whose bytes hash the same is
not parsed. Only posts that appear in some feed are rendered, and a render is reused while
the file's hash and the settings fingerprint stay the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from feedsvc import __version__
from feedsvc.batches import Batches, default_workers
from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.content import to_meta
from feedsvc.errors import ContentError
from feedsvc.models import Post, PostMeta, Problem, Severity, meta_from_dict
from feedsvc.output import write_feed_files
from feedsvc.reading import (
    AssetSizes,
    Outcome,
    decoded_meta,
    import_renderers,
    meta_json_of,
    parse_batch,
    render_batch,
)
from feedsvc.sources import Scan, SourceFile, scan_content
from feedsvc.storage import Store
from feedsvc.storage.digests import any_announced, note_published
from feedsvc.storage.posts import (
    BuildRecord,
    Render,
    SourceRow,
    delete_sources,
    first_seen_dates,
    last_build,
    load_renders,
    load_sources,
    load_stats,
    peek_first_seen,
    record_build,
    save_renders,
    save_sources,
)

if TYPE_CHECKING:  # feeds (feedgen, lxml) is imported only when feeds are rendered
    from feedsvc.feeds import FeedSpec

log = logging.getLogger("feedsvc.build")

# Below this many items, worker processes cost more than they save (a parse is ~0.1 ms,
# a render ~0.5 ms; forking the pool costs ~20 ms).
PARSE_THRESHOLD = 400
RENDER_THRESHOLD = 64


@dataclass
class BuildReport:
    started: datetime
    finished: datetime | None = None
    files: int = 0
    parsed: int = 0
    published: int = 0
    rendered: int = 0
    feeds_written: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    next_publish: datetime | None = None
    outputs: str | None = None  # JSON record of the feed files written (see Builder._outputs)
    announced: list[str] = field(default_factory=list)  # post ids new for the digests
    feeds_rendered: int = 0  # feeds (site, category, tag) rendered, not reused
    # Wall time of each phase in seconds, for `feedsvc build -v` and benchmarks.
    timings: dict[str, float] = field(default_factory=dict)

    def lap(self, phase: str, since: float) -> float:
        """Record the time since ``since`` as ``phase``; returns now for the next lap."""
        now = time.perf_counter()
        self.timings[phase] = now - since
        return now

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.WARNING)


def settings_fingerprint(settings: Settings) -> str:
    """Hash of everything a parse or render depends on besides the file's bytes."""
    relevant = {
        "version": __version__,
        "hash": "sha256",
        "site": settings.site.model_dump(mode="json"),
        "content": settings.content.model_dump(mode="json"),
        "assets": str(settings.assets_dir),
    }
    blob = json.dumps(relevant, sort_keys=True).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


@dataclass
class _Memo:
    """What the last build of this Builder left in the store, kept between builds (the
    daemon builds again and again): the source rows and their decoded metadata. Valid only
    while the store's last build record is the one this Builder wrote."""

    record: BuildRecord
    sources: dict[str, SourceRow]
    metas: dict[str, tuple[str, PostMeta]] = field(default_factory=dict)  # path → (json, meta)


class Builder:
    """Runs builds for one site and store; ``feedsvc build``, ``check`` and the daemon use it.

    A Builder that builds again reuses what it read the last time (see :class:`_Memo`)
    unless another process has built on the store in the meantime.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock, workers: int | None = None):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.workers = default_workers() if workers is None else workers
        self.fingerprint = settings_fingerprint(settings)
        self._memo: _Memo | None = None
        # Each feed's bytes by folder, with the key of what they were made from: a builder
        # that builds again (the daemon) re-renders only the feeds whose posts changed.
        self._feed_files: dict[str, tuple[str, dict[str, bytes]]] = {}

    def _remembered(self, last: BuildRecord | None) -> _Memo | None:
        memo = self._memo
        return memo if memo is not None and last == memo.record else None

    def build(self, *, dry_run: bool = False, render_all: bool = False) -> BuildReport:
        """Publish what is good and report the rest. ``dry_run`` writes nothing (``check``)."""
        settings = self.settings
        now = self.clock.now()
        report = BuildReport(started=now)
        lap = time.perf_counter()
        scan = scan_content(
            settings.content_dir, settings.content.extensions, settings.content.max_bytes
        )
        report.files = len(scan.files)
        with self.store.read() as conn:
            last = last_build(conn)
            if not (dry_run or render_all) and self._nothing_changed(scan, conn, last, now):
                return self._repeat(report, last, lap)
            memo = self._remembered(last)
            cached = dict(memo.sources) if memo is not None else load_sources(conn)
        self._memo = None  # rebuilt below once this build is recorded
        report.problems.extend(scan.problems)
        broken_paths = {p.path for p in scan.problems}
        lap = report.lap("scan+cache", lap)

        # 1. Which files need reading, and which of those need parsing.
        unchanged: list[SourceRow] = []
        to_read: list[tuple[SourceFile, str | None]] = []
        for file in scan.files:
            row = cached.get(file.path)
            fresh = row is not None and row.fingerprint == self.fingerprint and not dry_run
            if fresh and row and row.size == file.size and row.mtime_ns == file.mtime_ns:
                unchanged.append(row)
            else:
                to_read.append((file, row.content_hash if fresh and row else None))
        parsing = Batches(
            parse_batch,
            settings,
            to_read,
            workers=self.workers,
            threshold=PARSE_THRESHOLD,
            # A little under a fair share: the main process also decodes every result.
            main_share=0.8 / self.workers,
        )
        import_renderers()  # while the workers parse, not on the unchanged-site path
        outcomes: list[tuple[Outcome, PostMeta | None]] = []
        for chunk in parsing.chunks():
            outcomes.extend((o, decoded_meta(o)) for o in chunk)
        lap = report.lap("parse", lap)

        # 2. Settle every file: a post's metadata, or its problem (keeping its last good row).
        memo_metas = memo.metas if memo is not None else {}
        metas, rows, hashes = self._settle(
            outcomes, unchanged, cached, report, now, dry_run, memo_metas
        )
        broken_paths |= {p.path for p in report.problems}

        # 3. Last good versions of files that are broken now.
        for path in sorted(broken_paths):
            row = cached.get(path)
            if row is not None and row.meta is not None and path not in metas:
                metas[path] = meta_from_dict(json.loads(row.meta))

        # 4. Duplicates: the post that was there first keeps its slug/id.
        live = self._without_duplicates(metas, cached, report)
        eligible = [m for m in live if not m.draft]
        future = [m.published for m in eligible if m.published > now]
        report.next_publish = min(future) if future else None
        published = [m for m in eligible if m.published <= now]
        report.published = len(published)

        lap = report.lap("settle", lap)

        # 5. Render only the posts some feed shows (or all, for `check`).
        from feedsvc.feeds import plan_feeds

        plan = plan_feeds(published, settings)
        by_id = {m.id: m for m in published}
        needed_ids = {pid for spec in plan for pid in spec.post_ids}
        if render_all:
            needed_ids = set(by_id)
        posts, todo, rendering = self._start_render(
            [by_id[i] for i in sorted(needed_ids)], hashes, broken_paths, reuse=not dry_run
        )
        if not dry_run:
            # The store's rows are written while the worker processes render.
            gone = sorted(set(cached) - {f.path for f in scan.files} - broken_paths)
            with self.store.write() as conn:
                save_sources(conn, rows)
                delete_sources(conn, gone)
                # Posts live for the first time become "new" for the digests, once. The
                # first build on a store announces the back catalogue without the flood
                # guard: digests only carry posts published after a subscriber joined, so
                # nobody is owed those, and holding a whole site's history is only noise.
                flood_limit = settings.digest.flood_limit
                if not any_announced(conn):
                    flood_limit = max(flood_limit, len(published))
                report.announced = note_published(conn, published, now, flood_limit=flood_limit)
        renders = self._finish_render(todo, rendering, posts, hashes, report)
        report.rendered = len(renders)
        plan_ids_ok = [
            replace(s, post_ids=tuple(i for i in s.post_ids if i in posts)) for s in plan
        ]
        lap = report.lap("render posts", lap)
        files = self._render_feeds(plan_ids_ok, posts, report)
        lap = report.lap("render feeds", lap)

        # 6. Write the feeds (atomic, only changed bytes), then the renders.
        if not dry_run:
            report.feeds_written = write_feed_files(settings.output_dir, files)
            if settings.feeds.websub_hub and report.feeds_written:
                from feedsvc.feeds import feed_base_url
                from feedsvc.websub import announce, feed_urls

                urls = feed_urls(feed_base_url(settings), report.feeds_written)
                report.problems.extend(announce(settings.feeds.websub_hub, urls))
            report.outputs = self._outputs(files)
            with self.store.write() as conn:
                save_renders(conn, renders)
        lap = report.lap("write store", lap)
        report.problems.sort(key=lambda p: (p.path, p.line or 0, p.reason))
        report.finished = self.clock.now()
        if not dry_run:
            record = _record(report)
            with self.store.write() as conn:
                record_build(conn, record)
            self._remember(record, cached, rows, gone, renders, memo_metas)
        return report

    def _remember(
        self,
        record: BuildRecord,
        cached: dict[str, SourceRow],
        rows: list[SourceRow],
        gone: list[str],
        renders: list[Render],
        metas: dict[str, tuple[str, PostMeta]],
    ) -> None:
        """Keep the store's source rows as this build left them, for the next build."""
        sources = cached
        for row in rows:
            sources[row.source_path] = row
        for path in gone:
            sources.pop(path, None)
        for render in renders:
            rendered = sources.get(render.source_path)
            if rendered is not None:
                sources[render.source_path] = replace(rendered, render_key=render.render_key)
        self._memo = _Memo(record, sources, {p: metas[p] for p in sources if p in metas})

    def _outputs_key(self) -> str:
        """What the feed files depend on besides the posts: content and feed settings."""
        feeds = self.settings.feeds.model_dump(mode="json")
        blob = json.dumps([self.fingerprint, feeds, str(self.settings.output_dir)], sort_keys=True)
        return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()

    def _outputs(self, files: dict[str, bytes]) -> str:
        """The outputs record of this build: its key and each feed file's size and mtime."""
        stats = {}
        for rel in sorted(files):
            info = (self.settings.output_dir / rel).stat()
            stats[rel] = [info.st_size, info.st_mtime_ns]
        return json.dumps({"key": self._outputs_key(), "files": stats})

    def _nothing_changed(
        self, scan: Scan, conn: Connection, last: BuildRecord | None, now: datetime
    ) -> bool:
        """True when the last build's feeds are still exactly right, without reading posts.

        Same settings, the same files with the same size and mtime, no scheduled post
        come due, and every feed file still as that build left it.
        """
        if last is None or last.outputs is None:
            return False
        if last.next_publish is not None and last.next_publish <= now:
            return False
        outputs = json.loads(last.outputs)
        if outputs.get("key") != self._outputs_key():
            return False
        if not {p.path for p in scan.problems} <= {p.path for p in last.problems}:
            return False
        stats = load_stats(conn)
        if len(stats) != len(scan.files):
            return False
        for file in scan.files:
            if stats.get(file.path) != (file.size, file.mtime_ns, self.fingerprint):
                return False
        for rel, (size, mtime_ns) in outputs["files"].items():
            try:
                info = (self.settings.output_dir / rel).stat()
            except OSError:
                return False
            if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
                return False
        return True

    def _repeat(self, report: BuildReport, last: BuildRecord | None, lap: float) -> BuildReport:
        """The report of a build that had nothing to do: the last build's findings."""
        assert last is not None
        report.published = last.published
        report.problems = list(last.problems)
        report.next_publish = last.next_publish
        report.outputs = last.outputs
        report.lap("unchanged check", lap)
        report.finished = self.clock.now()
        record = _record(report)
        with self.store.write() as conn:
            record_build(conn, record)
        if self._memo is not None and last == self._memo.record:
            self._memo.record = record  # nothing changed: the rows are still the store's
        return report

    def _settle(
        self,
        outcomes: list[tuple[Outcome, PostMeta | None]],
        unchanged: list[SourceRow],
        cached: dict[str, SourceRow],
        report: BuildReport,
        now: datetime,
        dry_run: bool,
        known_metas: dict[str, tuple[str, PostMeta]],
    ) -> tuple[dict[str, PostMeta], list[SourceRow], dict[str, str]]:
        """Metadata of every good post by path, the rows to save, and every file's hash."""
        rows: list[SourceRow] = []
        fresh: list[Outcome] = []
        parsed_metas: dict[str, PostMeta] = {}
        for outcome, decoded in outcomes:
            if decoded is not None:
                parsed_metas[outcome.path] = decoded
            row = cached.get(outcome.path)
            if outcome.problem is not None:
                report.problems.append(outcome.problem)
                rows.append(self._broken_row(outcome, outcome.problem, row, now))
            elif not outcome.meta_json and outcome.parsed is None and row is not None:
                # Same bytes as cached: only the stat moved (a touch, a checkout).
                refreshed = replace(row, size=outcome.size, mtime_ns=outcome.mtime_ns)
                rows.append(refreshed)
                unchanged.append(refreshed)
            else:
                fresh.append(outcome)
        report.parsed = len(fresh)

        # Every slug's first sighting is recorded, so removing a date later keeps it put.
        slugs = [m.slug for m in parsed_metas.values()]
        slugs += [o.parsed.slug for o in fresh if o.parsed]
        if dry_run:
            with self.store.read() as conn:
                seen = peek_first_seen(conn, slugs)
        else:
            with self.store.write() as conn:
                seen = first_seen_dates(conn, slugs, now)

        metas: dict[str, PostMeta] = {}
        for outcome in fresh:
            row = cached.get(outcome.path)
            meta = parsed_metas.get(outcome.path)
            if meta is None:
                assert outcome.parsed is not None
                try:
                    meta = to_meta(
                        outcome.parsed,
                        self.settings,
                        first_seen=seen.get(outcome.parsed.slug, now),
                        asset_size=AssetSizes(self.settings),
                    )
                except ContentError as exc:
                    problem = Problem(outcome.path, exc.reason, exc.line)
                    report.problems.append(problem)
                    rows.append(self._broken_row(outcome, problem, row, now))
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
        hashes = {row.source_path: row.content_hash for row in rows}
        for row in unchanged:
            hashes[row.source_path] = row.content_hash
            if row.problem is not None:
                report.problems.append(Problem(row.source_path, row.problem, row.problem_line))
            elif row.meta is not None:
                known = known_metas.get(row.source_path)
                if known is not None and known[0] == row.meta:
                    metas[row.source_path] = known[1]
                else:
                    meta = meta_from_dict(json.loads(row.meta))
                    known_metas[row.source_path] = (row.meta, meta)
                    metas[row.source_path] = meta
        return metas, rows, hashes

    def _broken_row(
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

    def _without_duplicates(
        self, metas: dict[str, PostMeta], cached: dict[str, SourceRow], report: BuildReport
    ) -> list[PostMeta]:
        def seniority(meta: PostMeta) -> tuple[int, str]:
            row = cached.get(meta.source)
            was_there = row is not None and row.post_id == meta.id and row.meta is not None
            return (0 if was_there else 1, meta.source)

        taken_slug: dict[str, str] = {}
        taken_id: dict[str, str] = {}
        live: list[PostMeta] = []
        for meta in sorted(metas.values(), key=seniority):
            if meta.slug in taken_slug:
                report.problems.append(
                    Problem(
                        meta.source,
                        f"duplicate slug {meta.slug!r}: {taken_slug[meta.slug]} already uses it; "
                        "give this post its own `slug:` in the front matter",
                    )
                )
                continue
            if meta.id in taken_id:
                report.problems.append(
                    Problem(
                        meta.source,
                        f"duplicate id {meta.id!r}: {taken_id[meta.id]} already uses it; "
                        "give this post its own `id:` (or permalink)",
                    )
                )
                continue
            taken_slug[meta.slug] = meta.source
            taken_id[meta.id] = meta.source
            live.append(meta)
        return live

    def _render_feeds(
        self, plan: Sequence[FeedSpec], posts: dict[str, Post], report: BuildReport
    ) -> dict[str, bytes]:
        """Every feed file's bytes; a feed whose spec and posts are unchanged since this
        builder's last build is not rendered again."""
        from feedsvc.feeds import render_feeds

        keys = {spec.path: _feed_key(spec, posts) for spec in plan}
        stale = [s for s in plan if self._feed_files.get(s.path, ("", {}))[0] != keys[s.path]]
        stale_paths = {s.path for s in stale}
        rendered = render_feeds(stale, posts, self.settings) if stale else {}
        report.feeds_rendered = len(stale)
        by_folder: dict[str, dict[str, bytes]] = {}
        for name, data in rendered.items():
            folder = name.rpartition("/")[0]
            by_folder.setdefault(folder + "/" if folder else "", {})[name] = data
        files: dict[str, bytes] = {}
        cache: dict[str, tuple[str, dict[str, bytes]]] = {}
        for spec in plan:
            reused = spec.path not in stale_paths
            own = self._feed_files[spec.path][1] if reused else by_folder.get(spec.path, {})
            cache[spec.path] = (keys[spec.path], own)
            files.update(own)
        self._feed_files = cache
        return files

    def _render_key(self, content_hash: str) -> str:
        """What a stored render was made from: the file's bytes and the settings."""
        blob = f"{content_hash}:{self.fingerprint}".encode()
        return hashlib.sha256(blob).hexdigest()[:32]  # fits posts.render_key (64)

    def _start_render(
        self,
        metas: Sequence[PostMeta],
        hashes: dict[str, str],
        broken_paths: set[str],
        *,
        reuse: bool,
    ) -> tuple[dict[str, Post], list[tuple[PostMeta, str]], Batches[Any, Any]]:
        """Posts whose stored render still fits (by id), and the renders started for the rest."""
        with self.store.read() as conn:
            stored = load_renders(conn, [m.source for m in metas])
        posts: dict[str, Post] = {}
        todo: list[tuple[PostMeta, str]] = []
        for meta in metas:
            render = stored.get(meta.source)
            key = self._render_key(hashes.get(meta.source, ""))
            if render is not None and (
                meta.source in broken_paths or (reuse and render.render_key == key)
            ):
                posts[meta.id] = Post(meta, render.html, render.summary)
            elif meta.source not in broken_paths:
                todo.append((meta, str(self.settings.content_dir / meta.source)))
        rendering = Batches(
            render_batch,
            self.settings,
            todo,
            workers=self.workers,
            threshold=RENDER_THRESHOLD,
            main_share=0.0,
        )
        return posts, todo, rendering

    def _finish_render(
        self,
        todo: list[tuple[PostMeta, str]],
        rendering: Batches[Any, Any],
        posts: dict[str, Post],
        hashes: dict[str, str],
        report: BuildReport,
    ) -> list[Render]:
        """Collect the renders into ``posts``; the new ones, for the store."""
        renders: list[Render] = []
        for (meta, _), (post, problems) in zip(todo, rendering.collect(), strict=True):
            report.problems.extend(problems)
            if post is None:
                continue
            posts[meta.id] = post
            key = self._render_key(hashes.get(meta.source, ""))
            renders.append(Render(meta.source, post.html, post.summary, key))
        return renders


def _feed_key(spec: FeedSpec, posts: dict[str, Post]) -> str:
    """What one feed's bytes are made of: its spec and its posts, whole."""
    digest = hashlib.sha256(repr(spec).encode())
    for post_id in spec.post_ids:
        post = posts[post_id]
        digest.update(repr(post.meta).encode())
        digest.update(post.summary.encode("utf-8", "surrogatepass"))
        digest.update(post.html.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _record(report: BuildReport) -> BuildRecord:
    assert report.finished is not None
    return BuildRecord(
        started_at=report.started,
        finished_at=report.finished,
        files=report.files,
        parsed=report.parsed,
        published=report.published,
        rendered=report.rendered,
        feeds_written=len(report.feeds_written),
        errors=report.errors,
        warnings=report.warnings,
        problems=tuple(report.problems),
        next_publish=report.next_publish,
        outputs=report.outputs,
    )
