"""confirmations: the double opt-in emails asked for on the web

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey(
                "subscribers.id", ondelete="CASCADE", name="fk_confirmations_subscriber"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(
            "status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'retry' "
            "OR status = 'failed'",
            name="ck_confirmations_status",
        ),
    )
    op.create_index(
        "ix_confirmations_subscriber_created", "confirmations", ["subscriber_id", "created_at"]
    )
    op.create_index(
        "ix_confirmations_status_next_attempt", "confirmations", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_confirmations_status_next_attempt", table_name="confirmations")
    op.drop_index("ix_confirmations_subscriber_created", table_name="confirmations")
    op.drop_table("confirmations")
