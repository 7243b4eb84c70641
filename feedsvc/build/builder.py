"""One build: content folder → posts → feeds on disk, incrementally, reporting every problem.

    scan (sources) → parse what changed (content, in worker processes when many)
      → first-seen dates, duplicates, last good versions (store)
      → choose feed posts (feed_plan.plan_feeds) → render only those (markup)
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
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from feedsvc.build.head_start import HeadStart, parse_batches
from feedsvc.build.kept import FeedCache, Feeds, RenderCache
from feedsvc.build.memo import Memo, nothing_changed, outputs_key, remember, settings_fingerprint
from feedsvc.build.parallel import default_workers
from feedsvc.build.render import finish_render, render_split, start_render, tail_pool
from feedsvc.build.report import BuildReport, build_record
from feedsvc.build.settle import Settled, Settling
from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.content.reading import Outcome, decoded_meta, import_renderers
from feedsvc.content.sources import Scan, SourceFile, rescan, scan_content
from feedsvc.errors import OutputError
from feedsvc.feeds.output import remove_stale_feeds, write_feed_files
from feedsvc.models import PostMeta, meta_from_dict
from feedsvc.storage import Store
from feedsvc.storage.announcements import announce_first
from feedsvc.storage.posts import (
    BuildRecord,
    SourceRow,
    delete_sources,
    forget_outputs,
    has_sources,
    last_build,
    load_sources,
    mark_refused,
    record_build,
    record_first_seen,
    refused_paths,
    save_renders,
    save_sources,
)

log = logging.getLogger("feedsvc.build")


class Builder:
    """Runs builds for one site and store; ``feedsvc build``, ``check`` and the daemon use it.

    A Builder that builds again reuses what it read the last time (see
    :class:`~feedsvc.build.memo.Memo`) unless another process has built on the store since.
    """

    def __init__(self, settings: Settings, store: Store, clock: Clock, workers: int | None = None):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.workers = default_workers() if workers is None else workers
        self.fingerprint = settings_fingerprint(settings)
        self._memo: Memo | None = None
        self._settling = Settling(settings, store, self.fingerprint)
        # A builder that builds again (the daemon) re-renders only the feeds whose posts
        # changed, and keeps the rendered posts those feeds show.
        self._feeds = FeedCache()
        self._renders = RenderCache()
        self._output_stats: dict[str, list[int]] = {}  # feed file → [size, mtime_ns]

    def _remembered(self, last: BuildRecord | None) -> Memo | None:
        memo = self._memo
        return memo if memo is not None and last == memo.record else None

    def build(
        self,
        *,
        dry_run: bool = False,
        render_all: bool = False,
        changed: Collection[str] | None = None,
        head_start: HeadStart | None = None,
    ) -> BuildReport:
        """Publish what is good and report the rest (see :meth:`_build`). When the feeds
        cannot be written (a full disk), the previous ones stay on disk and the next build
        must not take them for this build's: the last build's record of its outputs is
        dropped, so the next one renders and writes every feed again."""
        try:
            return self._build(
                dry_run=dry_run, render_all=render_all, changed=changed, head_start=head_start
            )
        except OutputError:
            with self.store.write() as conn:
                forget_outputs(conn)
            self._memo = None
            raise

    def _build(
        self,
        *,
        dry_run: bool = False,
        render_all: bool = False,
        changed: Collection[str] | None = None,
        head_start: HeadStart | None = None,
    ) -> BuildReport:
        """Publish what is good and report the rest. ``dry_run`` writes nothing (``check``).

        ``changed``: the only paths that may have changed since this builder's last build
        (from a watcher); the folder is walked again when that cannot be trusted.
        ``head_start``: the parse of a new store, started before the store was opened.
        """
        settings = self.settings
        now = self.clock.now()
        report = BuildReport(started=now)
        lap = time.perf_counter()
        with self.store.read() as conn:
            last = last_build(conn)
            memo = self._remembered(last)
            if head_start is not None and (dry_run or last is not None or has_sources(conn)):
                head_start.drop()  # the store is not as new as it looked
                head_start = None
            if head_start is not None:
                scan = head_start.scan
            else:
                scan = self._scan(memo, None if dry_run else changed)
            report.files = len(scan.files)
            if not (dry_run or render_all) and nothing_changed(
                settings, self.fingerprint, scan, conn, last, now, memo
            ):
                return self._repeat(report, last, lap, scan)
            cached = dict(memo.sources) if memo is not None else load_sources(conn)
        self._memo = None  # rebuilt below once this build is recorded
        report.problems.extend(scan.problems)
        broken_paths = {p.path for p in scan.problems}
        lap = report.lap("scan+cache", lap)

        # 1. Which files need reading, and which of those need parsing. After a watcher's
        # report, only the paths it named: the others are as the last build settled them.
        base = memo.settled if memo is not None and scan.touched is not None else None
        if base is not None and scan.touched is not None:
            base = base.without(scan.touched)
            candidates = [f for p in sorted(scan.touched) if (f := scan.find(p)) is not None]
        else:
            candidates = scan.files
        unchanged: list[SourceRow] = []
        to_read: list[tuple[SourceFile, str | None]] = []
        for file in candidates if head_start is None else ():
            row = cached.get(file.path)
            fresh = row is not None and row.fingerprint == self.fingerprint and not dry_run
            if fresh and row and row.size == file.size and row.mtime_ns == file.mtime_ns:
                unchanged.append(row)
            else:
                to_read.append((file, row.content_hash if fresh and row else None))
        if head_start is not None:  # nothing cached: every file, parsing already
            parsing = head_start.parsing
        else:
            # A little under a fair share: the main process also decodes every result.
            parsing = parse_batches(settings.parse_options, to_read, self.workers, 0.8)
        import_renderers()  # while the workers parse, not on the unchanged-site path
        # 2. Settle every file: a post's metadata, or its problem (keeping its last good row).
        memo_metas = memo.metas if memo is not None else {}
        settled = base or Settled({}, {}, {})
        recorded: dict[str, str] | None = None  # a new store's announcements, by post id
        if head_start is not None:
            # A new store: each chunk is settled and its rows written as it comes, while
            # the workers parse the next (nothing cached, so a chunk's rows are final).
            rows, saved, recorded = [], True, {}
            report.parsed = 0
            for chunk in parsing.chunks_ready():
                decoded = [(o, decoded_meta(o)) for o in chunk]
                settled, chunk_rows, parsed = self._settling.settle(
                    decoded, [], cached, now, False, memo_metas, settled, new_store=True
                )
                chunk_metas = [settled.metas[r.source_path] for r in chunk_rows if r.post_id]
                with self.store.write() as conn:
                    save_sources(conn, chunk_rows)
                    record_first_seen(conn, _slugs(decoded), now)
                    announce_first(conn, chunk_metas, now, recorded)
                rows += chunk_rows
                report.parsed += parsed
        else:
            outcomes: list[tuple[Outcome, PostMeta | None]] = []
            for chunk in parsing.chunks():
                outcomes.extend((o, decoded_meta(o)) for o in chunk)
            settled, rows, report.parsed = self._settling.settle(
                outcomes, unchanged, cached, now, dry_run, memo_metas, settled
            )
            saved = False
        lap = report.lap("parse", lap)
        for found in settled.problems.values():
            report.problems.extend(found)
        metas, hashes = dict(settled.metas), settled.hashes
        broken_paths |= {p.path for p in report.problems}

        # 3. Last good versions of files that are broken now.
        for path in sorted(broken_paths):
            row = cached.get(path)
            if row is not None and row.meta is not None and path not in metas:
                metas[path] = meta_from_dict(json.loads(row.meta))

        # 4. Duplicates: the post that was there first keeps its slug/id.
        live, refused = self._settling.without_duplicates(
            metas, cached, report.problems, self._refused_before
        )
        eligible = [m for m in live if not m.draft]
        # The same instant in the zone of the posts' dates: comparing datetimes that share
        # a tzinfo object is ~20× cheaper than across zones, and the answer is the same.
        at = now.astimezone(eligible[0].published.tzinfo) if eligible else now
        future = [m.published for m in eligible if m.published > at]
        report.next_publish = min(future) if future else None
        published = [m for m in eligible if m.published <= at]
        report.published = len(published)

        lap = report.lap("settle", lap)

        # 5. Render only the posts some feed shows (or all, for `check`), then their feeds.
        from feedsvc.feeds.plan import plan_feeds

        plan = plan_feeds(published, settings)
        by_id = {m.id: m for m in published}
        needed_ids = {pid for spec in plan for pid in spec.post_ids}
        if render_all:
            needed_ids = set(by_id)
        needed = [by_id[i] for i in sorted(needed_ids)]
        keys = {m.source: self._render_key(hashes.get(m.source, "")) for m in needed}
        with tail_pool(self.workers, len(needed), len(plan)) as pool:
            # With no feed kept from an earlier build (a one-off `feedsvc build`), a big
            # build renders and writes posts and feeds in two halves at once.
            split = pool is not None and not (dry_run or render_all) and self._feeds.empty
            rendering = start_render(
                settings, self.store, self._renders, needed, keys, broken_paths,
                reuse=not dry_run, pool=pool, workers=self.workers, stored=recorded is None,
                begin=not split,
            )  # fmt: skip
            if not dry_run:  # the store's rows are written while the workers render
                gone = self._gone(scan, memo, cached, broken_paths)
                announced = self._write_sources(
                    [] if saved else rows, gone, published, memo, now, report, recorded,
                    refused,
                )  # fmt: skip
            if split:
                assert pool is not None
                names, report.feeds_written, renders = render_split(
                    settings, plan, rendering, pool, lambda m: keys[m.source], report.problems
                )
            else:
                renders = finish_render(rendering, lambda m: keys[m.source], report.problems)
            posts = rendering.posts
            report.rendered = len(renders)
            if not (dry_run or render_all):
                self._renders.keep(
                    {p.meta.source: (keys[p.meta.source], p) for p in posts.values()}
                )
            lap = report.lap("render posts", lap)
            if split:  # the feed cache stays empty: the next build renders every feed
                feeds = Feeds({}, names, len(plan))
            else:
                plan_ids_ok = [
                    replace(s, post_ids=tuple(i for i in s.post_ids if i in posts)) for s in plan
                ]
                feeds = self._feeds.render(plan_ids_ok, posts, settings)
        files = feeds.files
        report.feeds_rendered = feeds.rendered
        lap = report.lap("render feeds", lap)

        # 6. Write the feeds (atomic, only changed bytes), then the renders. After a
        # watcher's report, the files this builder wrote last time are as it left them.
        if not dry_run:
            trusted = changed is not None and memo is not None
            only = feeds.fresh if trusted and files.keys() == self._output_stats.keys() else None
            if split:  # written already; only the feeds no longer produced are left
                removed = remove_stale_feeds(settings.output_dir, feeds.fresh)
                report.feeds_written = sorted(report.feeds_written + removed)
            else:
                report.feeds_written = write_feed_files(settings.output_dir, files, only=only)
            if settings.feeds.websub_hub and report.feeds_written:
                from feedsvc.feeds.plan import feed_base_url
                from feedsvc.feeds.websub import announce, feed_urls

                urls = feed_urls(feed_base_url(settings), report.feeds_written)
                report.problems.extend(announce(settings.feeds.websub_hub, urls))
            report.outputs = self._outputs(feeds.fresh if split else files, only)
        report.problems.sort(key=lambda p: (p.path, p.line or 0, p.reason))
        report.finished = self.clock.now()
        if not dry_run:
            record = build_record(report)
            with self.store.write() as conn:  # the renders, and the build that made them
                save_renders(conn, renders)
                record_build(conn, record)
            self._memo = remember(record, cached, rows, gone, renders, memo_metas)
            self._memo.scan = scan
            self._memo.announced = announced
            self._memo.settled = settled
        report.lap("write store", lap)
        return report

    def _refused_before(self) -> set[str]:
        """The files the last build left out as duplicates (asked only when there are
        duplicates to choose between)."""
        with self.store.read() as conn:
            return refused_paths(conn)

    @staticmethod
    def _gone(
        scan: Scan, memo: Memo | None, cached: dict[str, SourceRow], broken_paths: set[str]
    ) -> list[str]:
        """The cached files that are no longer there."""
        if scan.touched is not None and memo is not None:
            maybe_gone: Collection[str] = scan.touched  # the rest are as memo knows
        else:
            maybe_gone = set(cached) - {f.path for f in scan.files}
        return sorted(
            p for p in maybe_gone if p in cached and p not in broken_paths and scan.find(p) is None
        )

    def _write_sources(
        self,
        rows: list[SourceRow],
        gone: list[str],
        published: list[PostMeta],
        memo: Memo | None,
        now: datetime,
        report: BuildReport,
        recorded: dict[str, str] | None,
        refused: dict[str, str],
    ) -> frozenset[str]:
        """Save ``rows``, forget the ``gone`` files, mark the ``refused`` duplicates, and
        announce the posts live for the first time; the ids announced so far.
        ``recorded``: a new store's announcements, written with its chunks
        (storage.announcements.announce_first)."""
        from feedsvc.storage.announcements import (
            any_announced,
            any_subscriber,
            note_published,
            settle_first,
        )

        with self.store.write() as conn:
            save_sources(conn, rows)
            delete_sources(conn, gone)
            mark_refused(conn, refused)
            if recorded is not None:
                report.announced = settle_first(conn, recorded, published, now)
                return frozenset(report.announced)
            # Posts live for the first time become "new" for the digests, once. The first
            # build on a store with nobody subscribed is the back catalogue: nobody can be
            # owed those (anyone joining later joins after them), so neither the flood
            # guard nor the back-date rule applies, and holding a whole site is only noise.
            digest = self.settings.digest
            flood_limit, backdate_limit = digest.flood_limit, digest.backdate_limit
            known = memo.announced if memo is not None else frozenset()
            if not known and not any_announced(conn) and not any_subscriber(conn):
                flood_limit, backdate_limit = max(flood_limit, len(published)), timedelta(0)
            unknown = [m for m in published if m.id not in known]
            report.announced = note_published(
                conn, unknown, now, flood_limit=flood_limit, backdate_limit=backdate_limit
            )
        return known.union(m.id for m in unknown) if unknown else known

    def _scan(self, memo: Memo | None, changed: Collection[str] | None) -> Scan:
        """The content folder now: the last build's scan with ``changed`` looked at again,
        when this builder has one it can trust; otherwise a full walk."""
        content = self.settings.content
        folder = self.settings.content_dir
        if memo is not None and memo.scan is not None and changed is not None:
            scan = rescan(memo.scan, folder, changed, content.extensions, content.max_bytes)
            if scan is not None:
                return scan
        return scan_content(folder, content.extensions, content.max_bytes)

    def _outputs(self, files: Collection[str], only: Collection[str] | None) -> str:
        """The outputs record of this build: its key and each feed file's size and mtime.
        ``only``: the files that may have changed (the others are as last recorded)."""
        stats = {}
        for rel in sorted(files):
            known = self._output_stats.get(rel) if only is not None and rel not in only else None
            if known is None:
                info = (self.settings.output_dir / rel).stat()
                known = [info.st_size, info.st_mtime_ns]
            stats[rel] = known
        self._output_stats = stats
        return json.dumps({"key": outputs_key(self.settings, self.fingerprint), "files": stats})

    def _repeat(
        self, report: BuildReport, last: BuildRecord | None, lap: float, scan: Scan
    ) -> BuildReport:
        """The report of a build that had nothing to do: the last build's findings."""
        assert last is not None
        report.published = last.published
        report.problems = list(last.problems)
        report.next_publish = last.next_publish
        report.outputs = last.outputs
        report.lap("unchanged check", lap)
        report.finished = self.clock.now()
        record = build_record(report)
        with self.store.write() as conn:
            record_build(conn, record)
        if self._memo is not None and last == self._memo.record:
            self._memo.record = record  # nothing changed: the rows are still the store's
            self._memo.scan = scan
        return report

    def _render_key(self, content_hash: str) -> str:
        """What a stored render was made from: the file's bytes and the settings."""
        blob = f"{content_hash}:{self.fingerprint}".encode()
        return hashlib.sha256(blob).hexdigest()[:32]  # fits posts.render_key (64)


def _slugs(decoded: list[tuple[Outcome, PostMeta | None]]) -> list[str]:
    """The slugs of the files that parsed (each one's first sighting is recorded)."""
    slugs = [meta.slug for _, meta in decoded if meta is not None]
    return slugs + [o.parsed.slug for o, meta in decoded if meta is None and o.parsed]
