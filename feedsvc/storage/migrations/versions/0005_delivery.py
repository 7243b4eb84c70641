"""delivery: the server's reply per delivery, when it was last tried, when it was queued

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("reply_code", sa.Integer, nullable=True))
        batch.add_column(sa.Column("reply", sa.Text, nullable=True))
        batch.add_column(sa.Column("last_attempt_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("queued_at", UTCDateTime, nullable=True))
    op.create_index(
        "ix_deliveries_status_lease_until", "deliveries", ["status", "lease_until"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_lease_until", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("queued_at")
        batch.drop_column("last_attempt_at")
        batch.drop_column("reply")
        batch.drop_column("reply_code")
