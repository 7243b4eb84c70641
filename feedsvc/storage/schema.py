"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` build the same.

``HEAD_REVISION`` names the newest migration; a test checks it against Alembic's script
directory, and that running every migration gives exactly this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

HEAD_REVISION = "0011"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no zone support) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the store; attach a zone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    @staticmethod
    def sqlite_bind(value: datetime | None) -> str | None:
        """The text Core stores on SQLite for ``value`` ("2024-06-01 00:00:00.000000"),
        in C where Core's processor takes ~3 µs a value (bulk writes of 10,000 rows)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the store; attach a zone first")
        # "+00:00" cut off: cheaper than replace(tzinfo=None), and the length is fixed.
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - SQLite returns datetime via the type
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = MetaData()

# One row per source file below the content folder: the build's cache, and the last good
# version of each post (kept when the file later breaks).
posts = Table(
    "posts",
    metadata,
    Column("source_path", String(1024), primary_key=True),
    Column("post_id", String(2048), nullable=True, index=True),
    Column("slug", String(512), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # Hash of the settings and version the row was parsed with; a change re-parses.
    Column("fingerprint", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("published", UTCDateTime, nullable=True),
    Column("meta", Text, nullable=True),  # JSON of the last good PostMeta
    Column("html", Text, nullable=True),  # last good full render
    Column("summary", Text, nullable=True),
    Column("render_key", String(64), nullable=True),  # content_hash:fingerprint rendered
    Column("problem", Text, nullable=True),  # the current error, if the file is broken now
    Column("problem_line", Integer, nullable=True),
    # Revision 0011: the problem as message id and values (JSON), for the command line to
    # show in the site's language; NULL when the problem has no message.
    Column("problem_message", Text, nullable=True),
    # Why the last build left this post out although it parses (revision 0008): another
    # file keeps its slug or id. Never announced, in a feed or mailed while set.
    Column("refused", Text, nullable=True),
)

# When each slug was first seen: the date of posts with no date anywhere. It never moves,
# whatever happens to the file (touches, checkouts, moves within the folder).
first_seen = Table(
    "first_seen",
    metadata,
    Column("slug", String(512), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
)

# One row per `feedsvc build` (and daemon rebuild): what `feedsvc status` shows.
builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("files", Integer, nullable=False),
    Column("parsed", Integer, nullable=False),
    Column("published", Integer, nullable=False),
    Column("rendered", Integer, nullable=False),
    Column("feeds_written", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
    Column("problems", Text, nullable=False),  # JSON list of [path, line, severity, reason]
    Column("next_publish", UTCDateTime, nullable=True),  # the earliest future-dated post
    # JSON: the outputs key and each feed file's size and mtime after this build, so that
    # a build of an unchanged site can see there is nothing to do (revision 0003).
    Column("outputs", Text, nullable=True),
)

# One row per email address that ever subscribed (or was added or imported). Rows are never
# deleted except by `feedsvc subscribers forget`: an unsubscribed or bounced row is what
# keeps a later import from writing to that address again.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Normalised and lower-cased by feedsvc.newsletter.subscribers.normalise_address, so the plain
    # unique index is case-insensitive uniqueness, on both backends, without functions.
    Column("email", String(320), nullable=False),
    Column("name", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("categories", Text, nullable=False),  # JSON list of names; [] = every category
    Column("timezone", String(64), nullable=True),  # IANA name; NULL = site.timezone
    Column("created", UTCDateTime, nullable=False),
    Column("confirmed", UTCDateTime, nullable=True),
    Column("unsubscribed", UTCDateTime, nullable=True),
    Column("consent_source", String(256), nullable=True),  # "cli", "import FILE", "web"
    Column("consent_ip", String(45), nullable=True),
    # OR chains, not IN lists: SQLite builds a temporary table for an IN list on every
    # row checked, which made bulk imports 40% slower.
    CheckConstraint(
        "status = 'pending' OR status = 'active' OR status = 'unsubscribed' "
        "OR status = 'bounced' OR status = 'complained'",
        name="ck_subscribers_status",
    ),
    CheckConstraint(
        "frequency = 'immediate' OR frequency = 'daily' OR frequency = 'weekly'",
        name="ck_subscribers_frequency",
    ),
    Index("ix_subscribers_email", "email", unique=True),
    Index("ix_subscribers_status", "status"),
)

# Who changed what about a subscriber, and when. `forget` deletes a subscriber's events
# with it and leaves one "forgotten" row with no subscriber.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE", name="fk_subscriber_events_subscriber"),
        nullable=True,
    ),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(256), nullable=False),  # "cli", "import FILE", "web", "delivery"
    Column("detail", Text, nullable=True),  # JSON object
    Index("ix_subscriber_events_subscriber_id", "subscriber_id"),
)

# Addresses erased with `forget`: only a hash (feedsvc.storage.subscribers.suppression_hash),
# so that no import or `add` can bring the address back, and nothing else is kept about it.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

# Digests (revision 0004). A post becomes "new" once: its row here is written the first time
# a build publishes it and never again, whatever later edits do. ``eligible_at`` is when it
# may go out: when it was announced, or when a held flood was released; NULL while held, or
# for ever when the owner discarded the flood (`feedsvc digest release --discard`).
announcements = Table(
    "announcements",
    metadata,
    Column("post_id", String(2048), primary_key=True),
    Column("source_path", String(1024), nullable=False),
    Column("became_new_at", UTCDateTime, nullable=False),
    Column("held", Boolean, nullable=False),
    Column("released_at", UTCDateTime, nullable=True),
    Column("eligible_at", UTCDateTime, nullable=True),
    # An archive post (revision 0008): dated more than digest.backdate_limit before it
    # went live; eligible_at stays NULL until `feedsvc digest release` names it.
    Column("archived", Boolean, nullable=False, server_default=false()),
    Index("ix_announcements_eligible_at", "eligible_at"),
)

# One row per distinct content of one period: the posts some subscribers get, e.g. period
# "daily:2024-06-01@Asia/Seoul" and the posts of the category 부산. Rendered once.
digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("frequency", String(16), nullable=False),
    Column("period_key", String(160), nullable=False),
    Column("content_key", String(64), nullable=False),  # hash of the post ids
    Column("period_start", UTCDateTime, nullable=True),  # NULL for immediate
    Column("period_end", UTCDateTime, nullable=False),
    Column("post_ids", Text, nullable=False),  # JSON list, newest first
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "frequency = 'immediate' OR frequency = 'daily' OR frequency = 'weekly'",
        name="ck_digests_frequency",
    ),
    UniqueConstraint("period_key", "content_key", name="uq_digests_period_content"),
)

# The per-recipient outbox: one row per digest × subscriber, created with its digest in one
# transaction. Its rendered bytes live in ``delivery_messages`` (set once, then reused by
# every retry, so a retry sends the same bytes and the same Message-ID); ``message_id`` is
# set with them, so a row with a Message-ID is rendered. Senders claim rows by moving them
# to "sending" with a lease; status is re-checked against the subscriber at claim time.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "digest_id",
        Integer,
        ForeignKey("digests.id", ondelete="CASCADE", name="fk_deliveries_digest"),
        nullable=False,
    ),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE", name="fk_deliveries_subscriber"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("message_id", String(255), nullable=True),  # set with its delivery_messages row
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Revision 0005 (delivery): the server's last reply (code and text: the 250 of a sent
    # row, the 4xx/5xx of a retried or failed one), when it was last tried, and when it was
    # (re)queued: ``delivery.max_age`` counts from there (NULL: from ``created_at``), so
    # that `feedsvc deliveries retry` gives a failed row a fresh allowance.
    Column("reply_code", Integer, nullable=True),
    Column("reply", Text, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("queued_at", UTCDateTime, nullable=True),
    CheckConstraint(
        "status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'retry' "
        "OR status = 'failed' OR status = 'cancelled'",
        name="ck_deliveries_status",
    ),
    UniqueConstraint("digest_id", "subscriber_id", name="uq_deliveries_digest_subscriber"),
    Index("ix_deliveries_status_next_attempt", "status", "next_attempt_at"),
    Index("ix_deliveries_subscriber_id", "subscriber_id"),
    Index("ix_deliveries_status_lease_until", "status", "lease_until"),
)

# The rendered bytes of each delivery (revision 0007), written once and never changed. They
# were a column of ``deliveries`` until then: every claim and every outcome rewrote the whole
# row, tens of kilobytes, where only a status and a time changed (on SQLite that was most of
# a send's store time). Deleting a delivery (a forgotten subscriber) deletes its bytes.
delivery_messages = Table(
    "delivery_messages",
    metadata,
    Column(
        "delivery_id",
        Integer,
        ForeignKey("deliveries.id", ondelete="CASCADE", name="fk_delivery_messages_delivery"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("message", LargeBinary, nullable=False),
    # Revision 0010: the envelope sender of a VERP return path (delivery.return_path);
    # NULL: the From address.
    Column("return_path", String(320), nullable=True),
)

# Revision 0010: what came back after the relay said 250 — bounces, complaints and
# unsubscribe mail from the bounce mailbox or a provider's webhook — each once: ``key``
# (the message's hash, or the provider's event id) makes a second reading of the same
# report change nothing. ``counts``: a bounce still counting towards suppression
# (`feedsvc subscribers unbounce` sets it false).
inbound_signals = Table(
    "inbound_signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("source", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="SET NULL", name="fk_inbound_signals_subscriber"),
        nullable=True,
    ),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("deliveries.id", ondelete="SET NULL", name="fk_inbound_signals_delivery"),
        nullable=True,
    ),
    Column("status", String(16), nullable=True),
    Column("diagnostic", Text, nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("counts", Boolean, nullable=False),
    Index("ix_inbound_signals_subscriber", "subscriber_id", "kind", "received_at"),
    Index("ix_inbound_signals_received", "received_at"),
)

# How far each subscriber's announcements were considered for digests: every post that
# became new up to ``covered_until`` (ties: up to ``covered_post``) was either put in a
# digest for them or was not theirs. The next digest looks only after it, so nothing
# goes out twice and nothing is skipped.
digest_cursors = Table(
    "digest_cursors",
    metadata,
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE", name="fk_digest_cursors_subscriber"),
        primary_key=True,
    ),
    Column("covered_until", UTCDateTime, nullable=False),
    # With a cap (revision 0008): the last post taken among those new at covered_until;
    # NULL means all of them are covered.
    Column("covered_post", String(2048), nullable=True),
)


# Double opt-in emails (revision 0006): one row per confirmation asked for on the web,
# the rendered bytes stored with it so that a retry sends the same message. Kept small on
# purpose: the web queues a row and hands it to the delivery backend itself. The newest
# row per subscriber is also what ``security.confirm_interval`` is measured against.
confirmations = Table(
    "confirmations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE", name="fk_confirmations_subscriber"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    CheckConstraint(
        "status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'retry' "
        "OR status = 'failed'",
        name="ck_confirmations_status",
    ),
    Index("ix_confirmations_subscriber_created", "subscriber_id", "created_at"),
    Index("ix_confirmations_status_next_attempt", "status", "next_attempt_at"),
)


# The keys that sign the links in emails, on PostgreSQL (revision 0009): every daemon on
# one database signs and verifies with the same keys, whatever its config folder. The
# highest generation signs; all of them verify (feedsvc.newsletter.tokens). A SQLite store keeps its
# keys in a file beside the database instead, so that this table is empty there.
secret_keys = Table(
    "secret_keys",
    metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(256), nullable=False),
    Column("created", UTCDateTime, nullable=False),
)
