"""delivery_messages: each delivery's rendered bytes in a table of their own

Claims and outcomes change a delivery's status and times; with the message bytes in the
same row, SQLite rewrote tens of kilobytes for every such change. The bytes move to
``delivery_messages`` (one row per rendered delivery, written once); ``deliveries``
keeps ``message_id``, which is set exactly when the bytes are.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_messages",
        sa.Column(
            "delivery_id",
            sa.Integer,
            sa.ForeignKey(
                "deliveries.id", ondelete="CASCADE", name="fk_delivery_messages_delivery"
            ),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("message", sa.LargeBinary, nullable=False),
    )
    op.execute(
        "INSERT INTO delivery_messages (delivery_id, message) "
        "SELECT id, message FROM deliveries WHERE message IS NOT NULL"
    )
    # SQLite's own DROP COLUMN (3.35+) rewrites the rows in place; Alembic's batch mode
    # would recreate ``deliveries``, and dropping the old table would cascade into
    # ``delivery_messages`` (foreign keys are on).
    op.execute("ALTER TABLE deliveries DROP COLUMN message")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("message", sa.LargeBinary, nullable=True))
    op.execute(
        "UPDATE deliveries SET message = (SELECT message FROM delivery_messages "
        "WHERE delivery_messages.delivery_id = deliveries.id)"
    )
    op.drop_table("delivery_messages")
