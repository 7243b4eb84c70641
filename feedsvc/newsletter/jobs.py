"""Digest jobs, composed from the pure parts and the store: what ``feedsvc digest send``
(and the daemon) run.

    announce_live_posts   posts the build published but nobody announced yet → new
    create_due_digests    due periods → digests + pending deliveries + cursors (one txn)
    render_pending        deliveries without bytes → personalised (and signed) bytes
    send_pending          rendered deliveries → a backend (the outbox), marked sent

Each step can run alone and again: every one of them is idempotent.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Connection

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.mime import DkimKey, ascii_address, dkim_sign
from feedsvc.delivery.outbox import Backend, OutboxBackend
from feedsvc.delivery.pacing import RetryPolicy
from feedsvc.delivery.return_path import UNSUBSCRIBE_CONTEXT, ReturnPaths
from feedsvc.errors import ConfigError, DeliveryError
from feedsvc.models import Recipient, RunPlan, SubscriberStatus
from feedsvc.newsletter.digests import plan_digests
from feedsvc.newsletter.messages import (
    DigestContent,
    MessageTemplate,
    Personal,
    Sender,
    render_digest,
)
from feedsvc.newsletter.tokens import Purpose, Tokens, tokens_for
from feedsvc.storage import Store
from feedsvc.storage.announcements import ArchivePost, archive_posts, note_published
from feedsvc.storage.delivery_claims import cancel_deliveries, claim_due
from feedsvc.storage.delivery_messages import (
    RenderedMessage,
    RenderJob,
    render_jobs,
    save_rendered,
)
from feedsvc.storage.delivery_outcomes import DeliveryOutcome, Result, record_outcomes
from feedsvc.storage.digests import (
    Created,
    create_digests,
    live_metas,
    load_announced,
    load_digest,
    load_posts,
    load_recipients,
    lock_digest_creation,
    oldest_cursor,
)
from feedsvc.templating import environment

log = logging.getLogger("feedsvc.digests")

RENDER_BATCH = 1000
SEND_BATCH = 100
LEASE = timedelta(minutes=5)  # delivery.lease
_TEMPLATE_CACHE = 64


def announce_live_posts(conn: Connection, settings: Settings, now: datetime) -> list[str]:
    """Announce published posts that were never announced (a no-op once the build does)."""
    digest = settings.digest
    return note_published(
        conn,
        live_metas(conn, now),
        now,
        flood_limit=digest.flood_limit,
        backdate_limit=digest.backdate_limit,
    )


@dataclass
class DueDigests:
    """What one run planned (and, unless a dry run, created)."""

    plan: RunPlan
    announced: list[str] = field(default_factory=list)
    recipients: dict[int, Recipient] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    created: Created | None = None
    # Archive posts (back-dated) that went live in the window this run looked at.
    archive: list[ArchivePost] = field(default_factory=list)


def _plan(conn: Connection, settings: Settings, now: datetime, *, keep: bool) -> DueDigests:
    """Announce, then plan the digests due at ``now`` (``keep``: remember the recipients)."""
    fresh = announce_live_posts(conn, settings, now)
    since = oldest_cursor(conn)
    announced = load_announced(conn, since=since, until=now)
    recipients: dict[int, Recipient] = {}

    def remember() -> Iterator[Recipient]:
        for recipient in load_recipients(conn):
            if keep:
                recipients[recipient.subscriber.id] = recipient
            yield recipient

    plan = plan_digests(
        remember() if announced else iter(()),
        announced,
        now=now,
        schedule=settings.digest_schedule,
        max_posts=settings.digest.max_posts,
    )
    if plan.late:
        log.warning(
            "%d subscribers' digests were due more than digest.max_lateness (%s) ago; their "
            "posts go into the next digest",
            plan.late,
            settings.digest.max_lateness,
        )
    titles = {a.post_id: a.title for a in announced}
    archive = archive_posts(conn, since=since) if since is not None else []
    return DueDigests(plan, fresh, recipients, titles, archive=archive)


def create_due_digests(store: Store, settings: Settings, now: datetime) -> DueDigests:
    """Announce new posts, plan the digests due at ``now`` and create them, all in one
    write transaction, so that a concurrent run cannot create anything twice."""
    with store.write() as conn:
        lock_digest_creation(conn)
        due = _plan(conn, settings, now, keep=False)
        due.created = create_digests(conn, due.plan, now)
    return due


def plan_due_digests(store: Store, settings: Settings, now: datetime) -> DueDigests:
    """What :func:`create_due_digests` would do, without a trace: the same transaction,
    rolled back."""
    with store.engine.connect() as conn:
        transaction = conn.begin()
        try:
            return _plan(conn, settings, now, keep=True)
        finally:
            transaction.rollback()


@dataclass
class Rendered:
    rendered: int = 0
    cancelled: int = 0


class Renderer:
    """Renders each digest once and personalises it for each recipient."""

    def __init__(
        self,
        settings: Settings,
        tokens: Tokens,
        *,
        env: Environment | None = None,
        dkim: DkimKey | None = None,
    ) -> None:
        self.settings = settings
        self.sender = Sender.from_settings(settings)
        self.tokens = tokens
        self.env = env if env is not None else environment(settings)
        self.dkim = dkim
        self.public_url = settings.server.public_url
        template = settings.delivery.return_path
        self.return_paths = ReturnPaths(template, tokens.keys) if template else None
        mailto = settings.bounces.unsubscribe_address
        self.unsubscribe_paths = (
            ReturnPaths(mailto, tokens.keys, UNSUBSCRIBE_CONTEXT) if mailto else None
        )
        self._templates: OrderedDict[int, MessageTemplate | None] = OrderedDict()

    def template(self, store: Store, digest_id: int, now: datetime) -> MessageTemplate | None:
        """The digest rendered (cached); None when none of its posts is live any more."""
        if digest_id in self._templates:
            self._templates.move_to_end(digest_id)
            return self._templates[digest_id]
        with store.read() as conn:
            digest = load_digest(conn, digest_id)
            found = load_posts(conn, digest.post_ids, now)
        posts = tuple(found[i] for i in digest.post_ids if i in found)
        template = None
        if posts:
            content = DigestContent(digest.id, digest.period, posts, digest.created_at)
            template = render_digest(self.sender, content, self.env)
        self._templates[digest_id] = template
        if len(self._templates) > _TEMPLATE_CACHE:
            self._templates.popitem(last=False)
        return template

    def personal(
        self, subscriber_id: int, email: str, name: str | None, delivery_id: int | None = None
    ) -> Personal:
        """``delivery_id``: the delivery the message is for (its unsubscribe mailto)."""
        paths = self.unsubscribe_paths
        mailto = None
        if paths is not None and delivery_id is not None:
            mailto = ascii_address(paths.address(delivery_id))
        return Personal(
            subscriber_id=subscriber_id,
            email=email,
            name=name,
            unsubscribe_url=self.tokens.url(
                self.public_url, Purpose.UNSUBSCRIBE, subscriber_id, email
            ),
            preferences_url=self.tokens.url(
                self.public_url, Purpose.PREFERENCES, subscriber_id, email
            ),
            unsubscribe_mailto=mailto,
        )

    def message(self, template: MessageTemplate, person: Personal) -> tuple[str, bytes]:
        made = template.personalise(person)
        data = made.data if self.dkim is None else dkim_sign(made.data, self.dkim)
        return made.message_id, data


def render_pending(
    store: Store, renderer: Renderer, now: datetime, *, batch: int = RENDER_BATCH
) -> Rendered:
    """Render every pending delivery that has no bytes yet; cancel those whose subscriber
    left, or whose posts were all removed, in the meantime.

    Each batch is written (one transaction) in a thread while the next one renders: the
    writes are mostly waiting on the disk, a megabyte or more per batch.
    """
    report = Rendered()
    after = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedsvc-render") as writer:
        writing: Future[None] | None = None
        while True:
            with store.read() as conn:
                jobs = render_jobs(conn, limit=batch, after_id=after)
            if not jobs:
                break
            after = jobs[-1].delivery_id
            done, left, gone = _render_batch(store, renderer, now, jobs)
            if writing is not None:
                writing.result()
            writing = writer.submit(_save_batch, store, done, left, gone)
            report.rendered += len(done)
            report.cancelled += len(left) + len(gone)
        if writing is not None:
            writing.result()
    return report


def _render_batch(
    store: Store, renderer: Renderer, now: datetime, jobs: list[RenderJob]
) -> tuple[list[RenderedMessage], list[int], list[int]]:
    """(delivery id, Message-ID, bytes, return path) of each job; the ids of those whose
    subscriber left; the ids of those whose posts are all gone."""
    paths = renderer.return_paths
    done: list[RenderedMessage] = []
    left: list[int] = []
    gone: list[int] = []
    for job in jobs:
        if job.status is not SubscriberStatus.ACTIVE:
            left.append(job.delivery_id)
            continue
        template = renderer.template(store, job.digest_id, now)
        if template is None:
            gone.append(job.delivery_id)
            continue
        person = renderer.personal(job.subscriber_id, job.email, job.name, job.delivery_id)
        message_id, data = renderer.message(template, person)
        path = paths.address(job.delivery_id) if paths is not None else None
        done.append((job.delivery_id, message_id, data, path))
    return done, left, gone


def _save_batch(
    store: Store, done: list[RenderedMessage], left: list[int], gone: list[int]
) -> None:
    with store.write() as conn:
        save_rendered(conn, done)
        cancel_deliveries(conn, left, "the subscriber is no longer active")
        cancel_deliveries(conn, gone, "every post of the digest was removed")


@dataclass
class Sent:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def send_pending(
    store: Store,
    backend: Backend,
    clock: Clock,
    *,
    batch: int = SEND_BATCH,
    policy: RetryPolicy | None = None,
    bounce_limit: int = 1,
    lease: timedelta = LEASE,
) -> Sent:
    """Hand every due, rendered delivery to ``backend`` (the outbox), one at a time.

    The same claims, outcomes and backoff as the SMTP sender (``feedsvc.delivery.dispatch``): a
    row is claimed with a lease and committed before the backend sees it, then marked.
    """
    policy = policy or RetryPolicy()
    report = Sent()
    while True:
        with store.write() as conn:
            claimed = claim_due(conn, clock.now(), limit=batch, lease=lease)
        if not claimed:
            return report
        outcomes: list[DeliveryOutcome] = []
        stop = False
        for claim in claimed:
            message = claim.message
            row = (message.delivery_id, message.subscriber_id)
            if stop:  # the backend is unwell: the rest stay due, untouched
                outcomes.append(DeliveryOutcome(*row, Result.RELEASED))
                continue
            try:
                backend.send(message)
            except DeliveryError as exc:
                report.errors.append(str(exc))
                retry_at = policy.next_attempt(message.attempts, claim.queued_at, clock.now())
                if exc.temporary and retry_at is not None:
                    outcomes.append(
                        DeliveryOutcome(*row, Result.RETRY, error=str(exc), next_attempt=retry_at)
                    )
                    report.retried += 1
                    stop = True
                else:
                    outcomes.append(DeliveryOutcome(*row, Result.FAILED, error=str(exc)))
                    report.failed += 1
                continue
            outcomes.append(DeliveryOutcome(*row, Result.SENT))
            report.sent += 1
        with store.write() as conn:
            record_outcomes(conn, outcomes, clock.now(), bounce_limit=bounce_limit)
        if stop:
            return report


def send_outbox(store: Store, backend: Backend, clock: Clock, settings: Settings) -> Sent:
    """:func:`send_pending` with the configured retry schedule, bounce limit and lease."""
    return send_pending(
        store,
        backend,
        clock,
        policy=RetryPolicy.from_settings(settings),
        bounce_limit=settings.delivery.bounce_limit,
        lease=settings.delivery.lease,
    )


def backend_for(settings: Settings) -> Backend | None:
    """The configured file backend, or None for SMTP: that is sent in bulk by
    :func:`feedsvc.delivery.dispatch.send_due` over a pool of connections."""
    if settings.delivery.backend == "outbox":
        return OutboxBackend(settings.path(settings.delivery.outbox_dir))
    return None


def read_dkim_key(settings: Settings) -> DkimKey | None:
    """The DKIM key when ``delivery.dkim`` is configured; ConfigError naming what is wrong."""
    dkim = settings.delivery.dkim
    given = {
        "domain": dkim.domain,
        "selector": dkim.selector,
        "private_key_path": dkim.private_key_path,
    }
    if all(value is None for value in given.values()):
        return None
    missing = [f"delivery.dkim.{key}" for key, value in given.items() if value is None]
    if missing:
        raise ConfigError(
            settings.source,
            [
                f"{key}: missing; DKIM signing needs domain, selector and private_key_path"
                for key in missing
            ],
        )
    assert dkim.private_key_path is not None and dkim.domain and dkim.selector
    path: Path = settings.path(dkim.private_key_path)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            settings.source,
            [
                f"delivery.dkim.private_key_path = '{dkim.private_key_path}': cannot read "
                f"{path}: {exc.strerror}"
            ],
        ) from None
    return DkimKey.from_pem(dkim.domain, dkim.selector, pem, str(path))


def renderer_for(settings: Settings) -> Renderer:
    """A Renderer with this site's secret, templates and DKIM key."""
    return Renderer(settings, tokens_for(settings), dkim=read_dkim_key(settings))
