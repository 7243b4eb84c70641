"""One build: content folder → posts → feeds on disk, incrementally, reporting every problem.

    scan    the content folder (content.sources), beside the store's rows and last build;
            when nothing changed, the last build's feeds stand and the build ends here
    parse   the files that changed (build.parse: content.reading, in worker processes
            when many)
    settle  each file: a post's metadata or its problem, with first-seen dates, last good
            versions and duplicates (build.settle); then which posts are live
    render  the posts some feed shows (feeds.plan, build.render), then the feeds' bytes
            (feeds.render; build.kept keeps what the next build can reuse); the store's
            rows are written meanwhile
    write   the changed feed files, atomically (feeds.output); WebSub; the renders and
            the build's record in the store

A file whose size and mtime match the cache is not read; one whose bytes hash the same is
not parsed. Only posts that appear in some feed are rendered, and a render is reused while
the file's hash and the settings fingerprint stay the same.

How a build runs follows from what it is asked (:class:`BuildMode`) and from what the
store and the builder hold:

- the first build on an empty store parses while it walks the folder, and settles and
  saves each chunk of results as it comes (:func:`~feedsvc.build.parse.first_parse`);
- after a watcher's report (``changed``), a builder that built before looks only at the
  paths it names;
- a builder with no feeds kept (a one-off ``feedsvc build``) renders a big site's posts
  and feeds in two halves at once (:func:`~feedsvc.build.render.render_split`);
- ``feedsvc check`` (``dry_run``, ``render_all``) reads and renders everything and
  writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from feedsvc.build.kept import Feeds, KeptFeeds, KeptRenders
from feedsvc.build.memo import (
    Memo,
    nothing_changed,
    outputs_key,
    remember,
    render_basis,
    settings_fingerprint,
)
from feedsvc.build.parallel import default_workers
from feedsvc.build.report import BuildReport, build_record
from feedsvc.clock import Clock
from feedsvc.config import PostRenderOptions, Settings
from feedsvc.content.sources import Scan, rescan, scan_content
from feedsvc.errors import OutputError
from feedsvc.models import Message, Post, PostMeta, Problem, Severity, meta_from_dict
from feedsvc.storage import Store
from feedsvc.storage.announcements import (
    announce_first,
    any_announced,
    any_subscriber,
    note_published,
    settle_first,
)
from feedsvc.storage.posts import (
    BuildRecord,
    Render,
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
from feedsvc.storage.schema import first_seen

# A build with nothing to do needs only the scan and the store: the parse, settle and
# render machinery (content parsing, worker pools, Liquid's link table; ~20 ms to import)
# is imported by the phase that uses it, and feeds (feedgen, lxml) when feeds are rendered.
if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from feedsvc.build.parse import Decoded, HeadStart, Parsing
    from feedsvc.build.render import Rendering
    from feedsvc.build.settle import Settled, Settling
    from feedsvc.feeds.plan import FeedSpec

log = logging.getLogger("feedsvc.build")


@dataclass(frozen=True)
class BuildMode:
    """What a build is asked to do (the CLI's ``build`` and ``check``, the daemon's
    rebuilds)."""

    dry_run: bool = False  # write nothing; trust no cached row or render (``check``)
    render_all: bool = False  # render every published post, not only the feeds' (``check``)
    # The only paths that may have changed since this builder's last build (a watcher's
    # report); the folder is walked again when that cannot be trusted.
    changed: Collection[str] | None = None

    @property
    def may_repeat(self) -> bool:
        """Whether an unchanged site keeps the last build's feeds, and what this build
        renders is kept for the next."""
        return not (self.dry_run or self.render_all)


@dataclass
class _BuildUnderWay:
    """One build under way: what its scan found, for the phases after it."""

    mode: BuildMode
    now: datetime
    report: BuildReport
    memo: Memo | None  # what this builder's last build left, while still the store's
    scan: Scan
    cached: dict[str, SourceRow]  # the store's source rows, by path
    known_metas: dict[str, tuple[str, PostMeta]]  # rows' metadata decoded before
    first: Parsing | None  # the first build on an empty store: its parse, under way
    lapped: float  # when the phase under way began (time.perf_counter)

    def lap(self, phase: str) -> None:
        self.lapped = self.report.lap(phase, self.lapped)


@dataclass(frozen=True)
class _Parsed:
    """The parse and settle of the files looked at."""

    settled: Settled
    rows: list[SourceRow]  # every source row this build made
    # A new store's first build: its rows are saved already and its live posts
    # announced, here by id with their files; None for any other build.
    recorded: dict[str, str] | None


@dataclass(frozen=True)
class _Chosen:
    """What the settle phase chose: the live posts and the files left out."""

    published: list[PostMeta]
    refused: dict[str, str]  # duplicates left out: path → why
    broken_paths: set[str]  # files with a problem (their last good version may stand)
    hashes: dict[str, str]  # each file's content hash, by path
    links: dict[str, str]  # what Liquid's {% link %} and {% post_url %} name → URLs


@dataclass(frozen=True)
class _Rendered:
    feeds: Feeds
    renders: list[Render]  # the posts rendered now, for the store
    written: list[str] | None  # feed files written already (two halves), else None


@dataclass(frozen=True)
class _Saved:
    """What writing the source rows did, for the builder's memo."""

    gone: list[str]  # files no longer there, forgotten
    announced: frozenset[str]  # post ids the store knows as announced


class Builder:
    """Runs builds for one site and store; ``feedsvc build``, ``check`` and the daemon use it.

    A Builder that builds again reuses what it read the last time (see
    :class:`~feedsvc.build.memo.Memo`) unless another process has built on the store since.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        workers: int | None = None,
        *,
        head: HeadStart | None = None,
    ):
        """``head``: a first parse begun before the store was opened (parse.head_start),
        used by the first build if the store is empty, else stopped."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self.workers = default_workers() if workers is None else workers
        self.fingerprint = settings_fingerprint(settings)
        self._render_basis = render_basis(settings, self.fingerprint)
        self._memo: Memo | None = None
        self._settler: Settling | None = None
        # A builder that builds again (the daemon) re-renders only the feeds whose posts
        # changed, and keeps the rendered posts those feeds show.
        self._feeds = KeptFeeds()
        self._renders = KeptRenders()
        self._output_stats: dict[str, list[int]] = {}  # feed file → [size, mtime_ns]
        self._head = head

    @property
    def _settling(self) -> Settling:
        """What settles parsed files (made by the first build that parses)."""
        if self._settler is None:
            from feedsvc.build.settle import Settling

            self._settler = Settling(self.settings, self.store, self.fingerprint)
        return self._settler

    def build(
        self,
        *,
        dry_run: bool = False,
        render_all: bool = False,
        changed: Collection[str] | None = None,
    ) -> BuildReport:
        """Publish what is good and report the rest (see :class:`BuildMode`). When the feeds
        cannot be written (a full disk), the previous ones stay on disk and the next build
        must not take them for this build's: the last build's record of its outputs is
        dropped, so the next one renders and writes every feed again."""
        mode = BuildMode(dry_run=dry_run, render_all=render_all, changed=changed)
        try:
            return self._build(mode)
        except OutputError:
            with self.store.write() as conn:
                forget_outputs(conn)
            self._memo = None
            raise

    def _build(self, mode: BuildMode) -> BuildReport:
        """scan → parse → settle → render → write, each phase a method below."""
        run = self._scan_phase(mode)
        if isinstance(run, BuildReport):
            return run  # nothing changed
        parsed = self._parse_phase(run)
        chosen = self._settle_phase(run, parsed)
        rendered, saved = self._render_phase(run, parsed, chosen)
        self._write_phase(run, parsed, rendered, saved)
        return run.report

    # --- scan ---------------------------------------------------------------------------

    def _scan_phase(self, mode: BuildMode) -> _BuildUnderWay | BuildReport:
        """The content folder beside the store's rows; the report of a build with nothing
        to do, or the build under way (on an empty store, parsing already)."""
        now = self.clock.now()
        report = BuildReport(started=now)
        lapped = time.perf_counter()
        first: Parsing | None = None
        with self.store.read() as conn:
            last = last_build(conn)
            memo = self._remembered(last)
            head, self._head = self._head, None
            if self._first_build(mode, last, conn):
                scan, first = (head.scan, head.parsing) if head else self._first_parse()
            else:
                if head is not None and head.parsing is not None:
                    head.parsing.stop()
                scan = self._scan(memo, None if mode.dry_run else mode.changed)
            report.files = len(scan.files)
            if mode.may_repeat and nothing_changed(
                self.settings, self.fingerprint, scan, conn, last, now, memo
            ):
                return self._repeat(report, last, lapped, scan)
            cached = dict(memo.sources) if memo is not None else load_sources(conn)
        self._memo = None  # rebuilt once this build is recorded
        report.problems.extend(scan.problems)
        known_metas = memo.metas if memo is not None else {}
        run = _BuildUnderWay(mode, now, report, memo, scan, cached, known_metas, first, lapped)
        run.lap("scan+cache")
        return run

    def _first_parse(self) -> tuple[Scan, Parsing | None]:
        from feedsvc.build.parse import first_parse

        settings = self.settings
        return first_parse(
            settings.parse_options,
            settings.content_dir,
            settings.content.extensions,
            processes=self.workers - 1,
        )

    def _remembered(self, last: BuildRecord | None) -> Memo | None:
        memo = self._memo
        return memo if memo is not None and last == memo.record else None

    def _first_build(self, mode: BuildMode, last: BuildRecord | None, conn: Connection) -> bool:
        """Whether this is the first build on an empty store, which parses as it scans:
        no build, no row, no slug seen, nothing announced, nobody subscribed (nobody is
        owed the back catalogue), and worker processes to parse in."""
        if mode.dry_run or self.workers < 2 or last is not None or has_sources(conn):
            return False
        seen = conn.execute(select(first_seen.c.slug).limit(1)).first() is not None
        return not (seen or any_announced(conn) or any_subscriber(conn))

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

    def _repeat(
        self, report: BuildReport, last: BuildRecord | None, lapped: float, scan: Scan
    ) -> BuildReport:
        """The report of a build that had nothing to do: the last build's findings."""
        assert last is not None
        report.published = last.published
        report.drafts, report.scheduled = held_counts(last.outputs)
        report.problems = list(last.problems)
        report.next_publish = last.next_publish
        report.outputs = last.outputs
        report.lap("unchanged check", lapped)
        report.finished = self.clock.now()
        record = build_record(report)
        with self.store.write() as conn:
            record_build(conn, record)
        if self._memo is not None and last == self._memo.record:
            self._memo.record = record  # nothing changed: the rows are still the store's
            self._memo.scan = scan
        return report

    # --- parse ----------------------------------------------------------------------------

    def _parse_phase(self, run: _BuildUnderWay) -> _Parsed:
        """Parse what changed, and settle each file looked at: its metadata or problem."""
        from feedsvc.build.parse import import_renderers

        if run.first is not None:
            import_renderers()  # while the workers parse
            parsed = self._settle_as_parsed(run, run.first)
        else:
            parsed = self._reparse(run)
        run.lap("parse")
        for found in parsed.settled.problems.values():
            run.report.problems.extend(found)
        kept, self._settling.kept_ids = self._settling.kept_ids, []
        if kept:
            run.report.problems.append(_kept_ids_warning(self.settings, kept))
        return parsed

    def _reparse(self, run: _BuildUnderWay) -> _Parsed:
        """Read the files whose size or mtime moved, parse those whose bytes did, and
        settle them with the rest. After a watcher's report, only the paths it named: the
        others are as the last build settled them."""
        from feedsvc.build.parse import decode, files_to_read, import_renderers, reparse
        from feedsvc.build.settle import FirstSeen, Settled

        memo, scan = run.memo, run.scan
        base: Settled | None = None
        if memo is not None and memo.settled is not None and scan.touched is not None:
            base = memo.settled.without(scan.touched)
            candidates = [f for p in sorted(scan.touched) if (f := scan.find(p)) is not None]
        else:
            candidates = scan.files
        dry_run = run.mode.dry_run
        to_read = files_to_read(candidates, run.cached, self.fingerprint, reuse=not dry_run)
        parsing = reparse(self.settings.parse_options, to_read.files, self.workers)
        import_renderers()  # while the workers parse, not on the unchanged-site path
        readings: Decoded = []
        for chunk in parsing.chunks():
            readings.extend(decode(chunk))
        settled, rows, run.report.parsed = self._settling.settle(
            readings,
            unchanged=to_read.unchanged,
            cached=run.cached,
            now=run.now,
            known_metas=run.known_metas,
            base=base or Settled({}, {}, {}),
            first_seen=FirstSeen.PEEK if dry_run else FirstSeen.RECORD,
        )
        return _Parsed(settled, rows, recorded=None)

    def _settle_as_parsed(self, run: _BuildUnderWay, parsing: Parsing) -> _Parsed:
        """A new store's files, settled and saved a chunk at a time as the workers finish
        them. Nothing is cached, so a chunk's rows are final: its slugs are first seen
        now and its live posts announced as they come (announcements.announce_first)."""
        from feedsvc.build.parse import decode
        from feedsvc.build.settle import FirstSeen, Settled

        settled, rows = Settled({}, {}, {}), []
        recorded: dict[str, str] = {}
        run.report.parsed = 0
        for chunk in parsing.chunks_ready():
            readings = decode(chunk)
            settled, chunk_rows, parsed = self._settling.settle(
                readings,
                cached=run.cached,
                now=run.now,
                known_metas=run.known_metas,
                base=settled,
                first_seen=FirstSeen.NOW,
            )
            chunk_metas = [settled.metas[r.source_path] for r in chunk_rows if r.post_id]
            with self.store.write() as conn:
                save_sources(conn, chunk_rows)
                record_first_seen(conn, _slugs(readings), run.now)
                announce_first(conn, chunk_metas, run.now, recorded)
            rows += chunk_rows
            run.report.parsed += parsed
        return _Parsed(settled, rows, recorded)

    # --- settle ---------------------------------------------------------------------------

    def _settle_phase(self, run: _BuildUnderWay, parsed: _Parsed) -> _Chosen:
        """Which posts are live: a broken file's last good version stands in for it, and
        of two files with one slug or id, the post that was there first keeps it."""
        report = run.report
        # the scan's and the parse's (a warning's post is published as it is)
        broken_paths = {p.path for p in report.problems if p.severity is Severity.ERROR}
        metas = dict(parsed.settled.metas)
        for path in sorted(broken_paths):
            row = run.cached.get(path)
            if row is not None and row.meta is not None and path not in metas:
                metas[path] = meta_from_dict(json.loads(row.meta))
        live, refused = self._settling.without_duplicates(
            metas, run.cached, report.problems, self._refused_before
        )
        eligible = [m for m in live if not m.draft]
        # The same instant in the zone of the posts' dates: comparing datetimes that share
        # a tzinfo object is ~20× cheaper than across zones, and the answer is the same.
        at = run.now.astimezone(eligible[0].published.tzinfo) if eligible else run.now
        future = [m.published for m in eligible if m.published > at]
        report.next_publish = min(future) if future else None
        report.drafts, report.scheduled = len(live) - len(eligible), len(future)
        published = [m for m in eligible if m.published <= at]
        report.published = len(published)
        links = self._links(eligible, live, parsed.settled, report.problems)
        run.lap("settle")
        return _Chosen(published, refused, broken_paths, parsed.settled.hashes, links)

    def _links(
        self,
        eligible: list[PostMeta],
        live: list[PostMeta],
        settled: Settled,
        problems: list[Problem],
    ) -> dict[str, str]:
        """With Liquid on, the posts' file names → URLs for {% link %} and {% post_url %},
        and a warning for each link of a live post that names none (every file parsed, so
        that ``build`` and ``check`` say the same)."""
        liquid = self.settings.liquid_options
        if not liquid.enabled:
            return {}
        from feedsvc.content.links import link_table, unknown_links

        table = link_table(((m.source, m.url) for m in eligible), liquid.link_prefix)
        for meta in live:
            refs = settled.links.get(meta.source)
            if refs:
                problems.extend(unknown_links(meta.source, refs, table))
        return table

    def _refused_before(self) -> set[str]:
        """The files the last build left out as duplicates (asked only when there are
        duplicates to choose between)."""
        with self.store.read() as conn:
            return refused_paths(conn)

    # --- render ---------------------------------------------------------------------------

    def _render_phase(
        self, run: _BuildUnderWay, parsed: _Parsed, chosen: _Chosen
    ) -> tuple[_Rendered, _Saved | None]:
        """Render the posts some feed shows (every published one with ``render_all``),
        then the feeds; the store's source rows are written while the workers render."""
        from feedsvc.build.render import start_render, tail_pool
        from feedsvc.feeds.plan import plan_feeds

        plan = plan_feeds(chosen.published, self.settings.feed_options)
        needed = _needed(plan, chosen.published, render_all=run.mode.render_all)
        options = self.settings.render_options
        links_key = ""
        if chosen.links:  # a post's render holds the URLs its links name
            options = replace(options, links=chosen.links)
            links_key = _digest(sorted(chosen.links.items()))
        keys = {
            m.source: self._render_key(chosen.hashes.get(m.source, ""), links_key) for m in needed
        }
        saved = None
        with tail_pool(self.workers, len(needed), len(plan)) as pool:
            # With no feed kept from an earlier build (a one-off `feedsvc build`), a big
            # build renders and writes posts and feeds in two halves at once.
            halves = pool is not None and run.mode.may_repeat and self._feeds.empty
            rendering = start_render(
                self.settings, options, self.store, self._renders, needed, keys,
                chosen.broken_paths,
                reuse=not run.mode.dry_run, pool=pool, workers=self.workers,
                stored=parsed.recorded is None, begin=not halves,
            )  # fmt: skip
            if not run.mode.dry_run:
                saved = self._save_sources(run, parsed, chosen)
            if halves:
                assert pool is not None
                rendered = self._render_halves(run, plan, rendering, pool, keys, options)
            else:
                rendered = self._render_in_turn(run, plan, rendering, keys)
        run.report.feeds_rendered = rendered.feeds.rendered
        run.lap("render feeds")
        return rendered, saved

    def _render_in_turn(
        self,
        run: _BuildUnderWay,
        plan: Sequence[FeedSpec],
        rendering: Rendering,
        keys: dict[str, str],
    ) -> _Rendered:
        """The posts (the pool's workers sharing them, if any), then the feeds whose
        posts or settings changed since the kept ones."""
        from feedsvc.build.render import finish_render

        renders = finish_render(rendering, lambda m: keys[m.source], run.report.problems)
        self._rendered_posts(run, renders, rendering.posts, keys)
        posts = rendering.posts
        shown = [replace(s, post_ids=tuple(i for i in s.post_ids if i in posts)) for s in plan]
        return _Rendered(self._feeds.render(shown, posts, self.settings), renders, None)

    def _render_halves(
        self,
        run: _BuildUnderWay,
        plan: Sequence[FeedSpec],
        rendering: Rendering,
        pool: ProcessPoolExecutor,
        keys: dict[str, str],
        options: PostRenderOptions,
    ) -> _Rendered:
        """Posts and feeds in two halves at once, here and in ``pool``, the feed files
        written when both halves are staged (render.render_split). No feed is kept: the
        next build renders every feed."""
        from feedsvc.build.render import render_split

        names, written, renders = render_split(
            self.settings,
            options,
            plan,
            rendering,
            pool,
            lambda m: keys[m.source],
            run.report.problems,
        )
        self._rendered_posts(run, renders, rendering.posts, keys)
        return _Rendered(Feeds({}, names, len(plan)), renders, written)

    def _rendered_posts(
        self,
        run: _BuildUnderWay,
        renders: list[Render],
        posts: dict[str, Post],
        keys: dict[str, str],
    ) -> None:
        """Count the new renders, and keep the feeds' posts for the next build."""
        run.report.rendered = len(renders)
        if run.mode.may_repeat:
            self._renders.keep({p.meta.source: (keys[p.meta.source], p) for p in posts.values()})
        run.lap("render posts")

    def _render_key(self, content_hash: str, links_key: str = "") -> str:
        """What a stored render was made from: the file's bytes and the settings (and,
        with Liquid on, the URLs links may name)."""
        blob = f"{content_hash}:{self._render_basis}{links_key}".encode()
        return hashlib.sha256(blob).hexdigest()[:32]  # fits posts.render_key (64)

    def _save_sources(self, run: _BuildUnderWay, parsed: _Parsed, chosen: _Chosen) -> _Saved:
        """Save the rows (a new store's first build saved its own), forget the files gone,
        mark the refused duplicates, and announce the posts live for the first time."""
        gone = _gone(run.scan, run.memo, run.cached, chosen.broken_paths)
        with self.store.write() as conn:
            save_sources(conn, [] if parsed.recorded is not None else parsed.rows)
            delete_sources(conn, gone)
            mark_refused(conn, chosen.refused)
            if parsed.recorded is not None:
                run.report.announced = settle_first(
                    conn, parsed.recorded, chosen.published, run.now
                )
                return _Saved(gone, frozenset(run.report.announced))
            return _Saved(gone, self._announce(conn, run, chosen.published))

    def _announce(
        self, conn: Connection, run: _BuildUnderWay, published: list[PostMeta]
    ) -> frozenset[str]:
        """Posts live for the first time become "new" for the digests, once; the ids
        announced so far. The first build on a store with nobody subscribed is the back
        catalogue: nobody can be owed those (anyone joining later joins after them), so
        neither the flood guard nor the back-date rule applies, and holding a whole site
        is only noise."""
        digest = self.settings.digest
        flood_limit, backdate_limit = digest.flood_limit, digest.backdate_limit
        known = run.memo.announced if run.memo is not None else frozenset()
        if not known and not any_announced(conn) and not any_subscriber(conn):
            flood_limit, backdate_limit = max(flood_limit, len(published)), timedelta(0)
        unknown = [m for m in published if m.id not in known]
        run.report.announced = note_published(
            conn, unknown, run.now, flood_limit=flood_limit, backdate_limit=backdate_limit
        )
        return known.union(m.id for m in unknown) if unknown else known

    # --- write ----------------------------------------------------------------------------

    def _write_phase(
        self, run: _BuildUnderWay, parsed: _Parsed, rendered: _Rendered, saved: _Saved | None
    ) -> None:
        """Write the feed files, then the renders and the build's record (nothing for a
        dry run); the builder remembers what its next build can reuse."""
        report = run.report
        if not run.mode.dry_run:
            self._write_feeds(run, rendered)
        report.problems.sort(key=lambda p: (p.path, p.line or 0, p.reason))
        report.finished = self.clock.now()
        if not run.mode.dry_run:
            assert saved is not None
            record = build_record(report)
            with self.store.write() as conn:  # the renders, and the build that made them
                save_renders(conn, rendered.renders)
                record_build(conn, record)
            memo = remember(
                record, run.cached, parsed.rows, saved.gone, rendered.renders, run.known_metas
            )
            memo.scan, memo.announced, memo.settled = run.scan, saved.announced, parsed.settled
            self._memo = memo
        run.lap("write store")

    def _write_feeds(self, run: _BuildUnderWay, rendered: _Rendered) -> None:
        """The feed files (atomic, only changed bytes) and the hub told of them. After a
        watcher's report, the files this builder wrote last time are as it left them."""
        from feedsvc.feeds.output import remove_stale_feeds, write_feed_files

        settings, report, feeds = self.settings, run.report, rendered.feeds
        files = feeds.files
        trusted = run.mode.changed is not None and run.memo is not None
        only = feeds.fresh if trusted and files.keys() == self._output_stats.keys() else None
        if rendered.written is not None:  # only the feeds no longer produced are left
            removed = remove_stale_feeds(settings.output_dir, feeds.fresh)
            report.feeds_written = sorted(rendered.written + removed)
        else:
            report.feeds_written = write_feed_files(settings.output_dir, files, only=only)
        if settings.feeds.websub_hub and report.feeds_written:
            from feedsvc.feeds.plan import feed_base_url
            from feedsvc.feeds.websub import announce, feed_urls

            urls = feed_urls(feed_base_url(settings.feed_options), report.feeds_written)
            report.problems.extend(announce(settings.feeds.websub_hub, urls))
        written_now = feeds.fresh if rendered.written is not None else files
        report.outputs = self._outputs(written_now, only, (report.drafts, report.scheduled))

    def _outputs(
        self, files: Collection[str], only: Collection[str] | None, held: tuple[int, int]
    ) -> str:
        """The outputs record of this build: its key and each feed file's size and mtime,
        and how many posts were held back (drafts, scheduled), for the report of a build
        that finds nothing changed. ``only``: the files that may have changed (the others
        are as last recorded)."""
        stats = {}
        for rel in sorted(files):
            known = self._output_stats.get(rel) if only is not None and rel not in only else None
            if known is None:
                info = (self.settings.output_dir / rel).stat()
                known = [info.st_size, info.st_mtime_ns]
            stats[rel] = known
        self._output_stats = stats
        key = outputs_key(self.settings, self.fingerprint)
        return json.dumps({"key": key, "files": stats, "held": list(held)})


def held_counts(outputs: str | None) -> tuple[int, int]:
    """(drafts, scheduled) as a build's outputs record keeps them; (0, 0) when it does not."""
    try:
        drafts, scheduled = json.loads(outputs or "{}").get("held", (0, 0))
        return int(drafts), int(scheduled)
    except (ValueError, TypeError, AttributeError):
        return 0, 0


def _needed(
    plan: Sequence[FeedSpec], published: list[PostMeta], *, render_all: bool
) -> list[PostMeta]:
    """The posts to render: those some feed shows, or every published one."""
    by_id = {m.id: m for m in published}
    needed_ids = set(by_id) if render_all else {pid for spec in plan for pid in spec.post_ids}
    return [by_id[i] for i in sorted(needed_ids)]


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


def _kept_ids_warning(settings: Settings, paths: list[str]) -> Problem:
    """What a build says when posts kept the ids they were published with."""
    first = ", ".join(sorted(paths)[:3])
    shown: Message | str = first
    if len(paths) > 3:
        shown = Message.of(
            "build.paths_and_more", "%(paths)s and %(more)s more", paths=first, more=len(paths) - 3
        )
    warning = Message.counted(
        "build.kept_ids",
        (
            "%(count)s post keeps the id it was first published with, although feeds.id_style "
            "(%(style)s) or its front matter now gives another (%(paths)s): a changed id shows "
            "a post to every feed reader again as new. New posts get ids of this style. If "
            "these feeds were never public (a trial run), start from a new store (storage.url) "
            "to give every post an id of this style",
            "%(count)s posts keep the id they were first published with, although "
            "feeds.id_style (%(style)s) or their front matter now gives another (%(paths)s): a "
            "changed id shows a post to every feed reader again as new. New posts get ids of "
            "this style. If these feeds were never public (a trial run), start from a new "
            "store (storage.url) to give every post an id of this style",
        ),
        len(paths),
        style=settings.feeds.id_style,
        paths=shown,
    )
    return Problem.of(settings.source, warning, None, Severity.WARNING)


def _digest(items: list[tuple[str, str]]) -> str:
    """A short hash of ``items`` (the link table, in a render key)."""
    return ":" + hashlib.blake2b(json.dumps(items).encode(), digest_size=16).hexdigest()


def _slugs(readings: Decoded) -> list[str]:
    """The slugs of the files that parsed (each one's first sighting is recorded)."""
    slugs = [meta.slug for _, meta in readings if meta is not None]
    return slugs + [r.parsed.slug for r, meta in readings if meta is None and r.parsed]
