"""digests: announcements (a post becomes new once), digests, deliveries, digest cursors

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("post_id", sa.String(2048), primary_key=True),
        sa.Column("source_path", sa.String(1024), nullable=False),
        sa.Column("became_new_at", UTCDateTime, nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("released_at", UTCDateTime, nullable=True),
        sa.Column("eligible_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_announcements_eligible_at", "announcements", ["eligible_at"])
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("period_key", sa.String(160), nullable=False),
        sa.Column("content_key", sa.String(64), nullable=False),
        sa.Column("period_start", UTCDateTime, nullable=True),
        sa.Column("period_end", UTCDateTime, nullable=False),
        sa.Column("post_ids", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "frequency = 'immediate' OR frequency = 'daily' OR frequency = 'weekly'",
            name="ck_digests_frequency",
        ),
        sa.UniqueConstraint("period_key", "content_key", name="uq_digests_period_content"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "digest_id",
            sa.Integer,
            sa.ForeignKey("digests.id", ondelete="CASCADE", name="fk_deliveries_digest"),
            nullable=False,
        ),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE", name="fk_deliveries_subscriber"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("message", sa.LargeBinary, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'retry' "
            "OR status = 'failed' OR status = 'cancelled'",
            name="ck_deliveries_status",
        ),
        sa.UniqueConstraint("digest_id", "subscriber_id", name="uq_deliveries_digest_subscriber"),
    )
    op.create_index(
        "ix_deliveries_status_next_attempt", "deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])
    op.create_table(
        "digest_cursors",
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey(
                "subscribers.id", ondelete="CASCADE", name="fk_digest_cursors_subscriber"
            ),
            primary_key=True,
        ),
        sa.Column("covered_until", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("digest_cursors")
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")
    op.drop_index("ix_deliveries_status_next_attempt", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("digests")
    op.drop_index("ix_announcements_eligible_at", table_name="announcements")
    op.drop_table("announcements")
