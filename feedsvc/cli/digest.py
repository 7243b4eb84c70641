"""``feedsvc digest preview|send|release``: argument parsing and output.

The rules live in ``feedsvc.newsletter.digests`` (who gets what, when),
``feedsvc.newsletter.messages`` (the
bytes) and ``feedsvc.newsletter.jobs`` (the jobs). Exit status as for the rest of the CLI: 0 done;
1 some messages failed; 2 bad usage or configuration; 3 the store cannot be opened.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from feedsvc.cli.invocation import EXIT_PROBLEMS, EXIT_STORE, EXIT_USAGE, fail, store_for, texts
from feedsvc.cli.invocation import now as clock_now
from feedsvc.cli.words import address_problem, config_problem, error_line, number, when_label
from feedsvc.errors import AddressError, ConfigError, StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from feedsvc.cli.main import Context
    from feedsvc.config import Settings
    from feedsvc.delivery.workers import Helpers
    from feedsvc.messages import Texts
    from feedsvc.models import Cursor, Post, Subscriber
    from feedsvc.newsletter.jobs import DueDigests, Rendered
    from feedsvc.storage import Store
    from feedsvc.storage.digests import Created

PREVIEW_FILE = "digest-preview.html"


@click.group()
def digest() -> None:
    """Email digests: preview, send, release held posts."""


@digest.command()
@click.option("--to", "to", default=None, help="Preview what this subscriber's next digest holds.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Where to write the HTML (default ./{PREVIEW_FILE}).",
)
@click.pass_obj
def preview(obj: Context, to: str | None, out: Path | None) -> None:
    """Write the HTML of a digest to a file, to open in a browser.

    With --to, the posts that subscriber's next digest would hold (or, when none is
    waiting, their newest matching posts); otherwise the site's newest posts.
    """
    from feedsvc.delivery.mime import html_part
    from feedsvc.models import Frequency
    from feedsvc.newsletter.digests import upcoming_period
    from feedsvc.newsletter.jobs import renderer_for
    from feedsvc.newsletter.messages import DigestContent, render_digest

    settings = obj.settings()
    said = texts()
    now = clock_now()
    target = out if out is not None else Path(PREVIEW_FILE)
    try:
        renderer = renderer_for(settings)
        store = store_for(settings)
        subscriber = None if to is None else _subscriber(store, to)
        posts, note = _preview_posts(said, store, settings, subscriber, now)
        if not posts:
            fail(said("cli.preview.no_posts"), EXIT_PROBLEMS)
        period = upcoming_period(
            subscriber.frequency if subscriber else Frequency.DAILY,
            subscriber.timezone if subscriber else None,
            now,
            settings.digest_schedule,
        )
        template = render_digest(
            renderer.sender, DigestContent(0, period, tuple(posts), now), renderer.env
        )
        if subscriber is None:
            person = renderer.personal(0, "subscriber@example.com", None)
        else:
            person = renderer.personal(subscriber.id, subscriber.email, subscriber.name)
        _, data = renderer.message(template, person)
    except ConfigError as exc:
        fail(config_problem(said, exc), EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html_part(data), encoding="utf-8")
    except OSError as exc:
        fail(said("cli.cannot_write", path=str(target), reason=exc.strerror), EXIT_USAGE)
    who = subscriber.email if subscriber else said("cli.preview.sample_subscriber")
    click.echo(said("cli.preview.subject", subject=template.subject))
    if note:
        click.echo(note)
    posts_shown = said.plural("cli.count.posts", len(posts))
    click.echo(said("cli.preview.wrote", posts=posts_shown, who=who, path=str(target.resolve())))


def _subscriber(store: Store, raw: str) -> Subscriber:
    from feedsvc.newsletter.subscribers import normalise_address
    from feedsvc.storage.subscribers import get_subscriber

    try:
        address = normalise_address(raw, allow_test_domains=True)
    except AddressError as exc:
        fail(address_problem(texts(), exc), EXIT_USAGE)
    with store.read() as conn:
        found = get_subscriber(conn, address)
    if found is None:
        fail(texts()("cli.preview.not_a_subscriber", address=address), EXIT_USAGE)
    return found


def _preview_posts(
    texts: Texts, store: Store, settings: Settings, subscriber: Subscriber | None, now: datetime
) -> tuple[list[Post], str]:
    """The posts to preview, and a note when they are a sample, not the next digest."""
    from feedsvc.models import Frequency, Recipient
    from feedsvc.newsletter.digests import category_keys, joined_at, matches, plan_digests
    from feedsvc.storage.digests import live_metas, load_announced, load_posts, oldest_cursor

    limit = settings.digest.max_posts
    with store.read() as conn:
        metas = live_metas(conn, now)
        if subscriber is None:
            ids = [m.id for m in metas[:limit]]
            note = ""
        else:
            # What their next digest would hold: plan as if their period ended now.
            as_if_now = replace(subscriber, frequency=Frequency.IMMEDIATE)
            plan = plan_digests(
                [Recipient(as_if_now, _cursor_of(conn, subscriber.id))],
                load_announced(conn, since=oldest_cursor(conn), until=now),
                now=now,
                schedule=settings.digest_schedule,
                max_posts=limit,
            )
            ids = list(plan.digests[0].post_ids) if plan.digests else []
            note = ""
            if not ids:
                wanted = category_keys(subscriber.categories)
                ids = [m.id for m in metas if matches(m.categories, wanted)][:limit]
                note = texts(
                    "cli.preview.nothing_waiting",
                    address=subscriber.email,
                    joined=f"{joined_at(subscriber):%Y-%m-%d}",
                )
        found = load_posts(conn, ids, now)
    return [found[i] for i in ids if i in found], note


def _cursor_of(conn: Connection, subscriber_id: int) -> Cursor | None:
    from feedsvc.storage.digests import cursor_of

    return cursor_of(conn, subscriber_id)


@digest.command()
@click.option("--dry-run", is_flag=True, help="Print who would get which posts; send nothing.")
@click.pass_obj
def send(obj: Context, dry_run: bool) -> None:
    """Create the digests that are due, render them, and deliver them.

    Due: daily and weekly digests whose send time has passed (at most digest.max_lateness
    ago), immediate ones for every post not sent yet. With the outbox backend each
    message becomes a .eml file in delivery.outbox_dir; with smtp they go to
    delivery.smtp.host over pooled connections (a progress bar on a terminal).
    """
    from feedsvc.clock import SystemClock
    from feedsvc.newsletter.jobs import (
        backend_for,
        create_due_digests,
        plan_due_digests,
        render_pending,
        renderer_for,
        send_outbox,
    )

    settings = obj.settings()
    said = texts()
    now = clock_now()
    try:
        store = store_for(settings)
        if dry_run:
            plan = plan_due_digests(store, settings, now)
            _print_plan(said, plan, _next_digest(said, store, settings, now))
            return
        renderer = renderer_for(settings)
        due = create_due_digests(store, settings, now)
        backend = backend_for(settings)
        helpers = _start_helpers(store, settings, now) if backend is None else None
        try:
            rendered = render_pending(store, renderer, now)
        finally:
            if helpers is not None:
                helpers.rendering_finished()
        created = due.created
        assert created is not None
        if due.announced:
            click.echo(said.plural("cli.send.announced", len(due.announced)))
        _print_created(said, created, rendered)
        if backend is None:
            _send_smtp(said, store, settings, helpers)
            return
        sent = send_outbox(store, backend, SystemClock(), settings)
    except ConfigError as exc:
        fail(config_problem(said, exc), EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    folder = settings.path(settings.delivery.outbox_dir)
    written = said(
        "cli.send.written",
        messages=said.plural("cli.count.messages", sent.sent),
        folder=str(folder),
    )
    if sent.retried or sent.failed:
        written = said(
            "cli.send.written_failed",
            written=written,
            retried=number(sent.retried),
            failed=number(sent.failed),
        )
    click.echo(written)
    for error in sorted(set(sent.errors)):
        click.echo(error_line(said, error), err=True)
    if sent.failed or sent.retried:
        sys.exit(EXIT_PROBLEMS)


def _print_created(texts: Texts, created: Created, rendered: Rendered) -> None:
    """ "2 digests created for 3 subscribers; 3 messages rendered"."""
    line = texts(
        "cli.send.created",
        digests=texts.plural("cli.count.digests", created.digests),
        subscribers=texts.plural("cli.count.subscribers", created.deliveries),
        messages=texts.plural("cli.count.messages", rendered.rendered),
    )
    if rendered.cancelled:
        line = texts("cli.send.cancelled", line=line, count=number(rendered.cancelled))
    click.echo(line)


def _start_helpers(store: Store, settings: Settings, now: datetime) -> Helpers | None:
    """With ``delivery.workers`` > 1: the helper sender processes, which start sending
    while this process renders."""
    from feedsvc.delivery.smtp import SmtpOptions
    from feedsvc.delivery.workers import Helpers
    from feedsvc.storage.deliveries import due_count

    if settings.delivery.workers < 2:
        return None
    SmtpOptions.from_settings(settings)  # a missing password stops here, not in each helper
    with store.read() as conn:
        waiting = due_count(conn, now, rendered_only=False)
    return Helpers.start(store, settings, waiting)


def _send_smtp(texts: Texts, store: Store, settings: Settings, helpers: Helpers | None) -> None:
    """Send over SMTP (with the helper processes, if any) with a progress bar on a
    terminal; end with the counts."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from feedsvc.clock import SystemClock
    from feedsvc.delivery.dispatch import SendReport, send_due
    from feedsvc.storage.deliveries import due_count

    clock = SystemClock()
    smtp = settings.delivery.smtp
    helped = helpers.done() if helpers is not None else 0
    with store.read() as conn:
        total = due_count(conn, clock.now()) + helped
    bar = Progress(
        texts("cli.send.progress"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    task = bar.add_task("send", total=total)

    def progress(report: SendReport) -> None:
        bar.update(task, completed=report.done + (helpers.done() if helpers else 0))

    show = sys.stdout.isatty() and total > 0
    if show:
        bar.start()
    try:
        report = send_due(
            store,
            settings,
            clock,
            on_progress=progress if show else None,
            share=settings.delivery.workers if helpers is not None else 1,
        )
        if helpers is not None:
            report.add(helpers.finish())
    finally:
        if show:
            bar.stop()
    line = texts(
        "cli.send.smtp",
        sent=number(report.sent),
        retried=number(report.retried),
        failed=number(report.failed),
        server=f"{smtp.host}:{smtp.port}",
    )
    if report.bounced:
        bounced = texts.plural("cli.count.subscribers", report.bounced)
        line = texts("cli.send.bounced", line=line, subscribers=bounced)
    click.echo(line)
    for error, count in report.errors.most_common(5):
        click.echo(error_line(texts, f"{number(count)} × {error}"), err=True)
    for problem in report.problems:
        click.echo(error_line(texts, problem), err=True)
    if report.paused is not None:
        fail(texts("cli.send.paused", reason=report.paused), EXIT_PROBLEMS)
    if report.failed or report.retried or report.problems:
        sys.exit(EXIT_PROBLEMS)


def _next_digest(texts: Texts, store: Store, settings: Settings, now: datetime) -> str:
    """When the next daily or weekly digest goes out, for a dry run with nothing due."""
    from feedsvc.cli.status import next_digest_runs, run_label

    with store.read() as conn:
        runs = next_digest_runs(conn, settings, now)
    if not runs:
        return texts("cli.dry_run.no_scheduled")
    when = when_label(texts, runs[0].at, settings.site.timezone, now)
    return texts("cli.dry_run.next", what=run_label(texts, runs[0]), when=when)


def _print_plan(texts: Texts, due: DueDigests, next_digest: str) -> None:
    plan = due.plan
    if due.announced:
        click.echo(texts.plural("cli.dry_run.announced", len(due.announced)))
    for post in due.archive:
        click.echo(f"{post.source_path}: {texts.message(post.note)}")
    if not plan.digests:
        click.echo(texts("cli.dry_run.nothing_due", next=next_digest))
        return
    for item in plan.digests:
        titles = " · ".join(due.titles.get(i, i) for i in item.post_ids)
        for subscriber_id in item.subscriber_ids:
            subscriber = due.recipients[subscriber_id].subscriber
            name = f" ({subscriber.name})" if subscriber.name else ""
            count = texts.plural("cli.count.posts", len(item.post_ids))
            click.echo(f"{subscriber.email}{name} ← {count} [{item.period.key}]: {titles}")
    by_period = Counter(item.period.key for item in plan.digests)
    click.echo(
        texts(
            "cli.dry_run.summary",
            messages=texts.plural("cli.count.messages", plan.messages),
            digests=texts.plural("cli.count.digests", len(plan.digests)),
            periods=texts.plural("cli.count.periods", len(by_period)),
        )
    )


@digest.command()
@click.option("--discard", is_flag=True, help="Never email the held posts (they stop being held).")
@click.argument("posts", nargs=-1)
@click.pass_obj
def release(obj: Context, discard: bool, posts: tuple[str, ...]) -> None:
    """Release the posts the flood guard holds: they go out with the next digests.

    With POST arguments (an archive post's file as `feedsvc status` shows it, or its
    URL), release those archive posts instead: posts that went live dated more than
    digest.backdate_limit earlier, which are otherwise never mailed.
    """
    from feedsvc.errors import NotArchived
    from feedsvc.storage.announcements import release_archived, release_held

    settings = obj.settings()
    said = texts()
    store = store_for(settings)
    if posts and discard:
        fail(said("cli.release.discard_with_posts"), EXIT_USAGE)
    try:
        with store.write() as conn:
            if posts:
                archived = release_archived(conn, posts, clock_now())
            else:
                released = release_held(conn, clock_now(), discard=discard)
    except NotArchived as exc:
        fail(said("cli.release.not_archived", post=exc.args[0]), EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    if posts:
        for post in archived:
            click.echo(said("cli.release.released", path=post.source_path))
        click.echo(said.plural("cli.release.archive_done", len(archived)))
        return
    if not released:
        click.echo(said("cli.release.none_held"))
        return
    for held in released:
        click.echo(
            said(
                "cli.release.discarded" if discard else "cli.release.released",
                path=held.source_path,
            )
        )
    if discard:
        click.echo(said.plural("cli.release.discard_done", len(released)))
    else:
        click.echo(said.plural("cli.release.held_done", len(released)))
