"""subscribers, their events, and suppressions of forgotten addresses

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("confirmed", UTCDateTime, nullable=True),
        sa.Column("unsubscribed", UTCDateTime, nullable=True),
        sa.Column("consent_source", sa.String(256), nullable=True),
        sa.Column("consent_ip", sa.String(45), nullable=True),
        sa.CheckConstraint(
            "status = 'pending' OR status = 'active' OR status = 'unsubscribed' "
            "OR status = 'bounced' OR status = 'complained'",
            name="ck_subscribers_status",
        ),
        sa.CheckConstraint(
            "frequency = 'immediate' OR frequency = 'daily' OR frequency = 'weekly'",
            name="ck_subscribers_frequency",
        ),
    )
    op.create_index("ix_subscribers_email", "subscribers", ["email"], unique=True)
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "subscriber_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey(
                "subscribers.id", ondelete="CASCADE", name="fk_subscriber_events_subscriber"
            ),
            nullable=True,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_subscriber_events_subscriber_id", "subscriber_events", ["subscriber_id"])
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_subscriber_events_subscriber_id", table_name="subscriber_events")
    op.drop_table("subscriber_events")
    op.drop_index("ix_subscribers_status", table_name="subscribers")
    op.drop_index("ix_subscribers_email", table_name="subscribers")
    op.drop_table("subscribers")
