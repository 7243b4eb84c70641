"""inbound_signals and delivery_messages.return_path: the deliverability loop

Bounces and complaints that arrive after the relay accepted a message (a bounce mailbox,
a provider's webhook) are kept once each in ``inbound_signals``, with what they did; a
message sent with a VERP return path keeps it in ``delivery_messages.return_path``.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_messages") as batch:
        batch.add_column(sa.Column("return_path", sa.String(320), nullable=True))
    op.create_table(
        "inbound_signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey(
                "subscribers.id", ondelete="SET NULL", name="fk_inbound_signals_subscriber"
            ),
            nullable=True,
        ),
        sa.Column(
            "delivery_id",
            sa.Integer,
            sa.ForeignKey("deliveries.id", ondelete="SET NULL", name="fk_inbound_signals_delivery"),
            nullable=True,
        ),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("diagnostic", sa.Text, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("counts", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_inbound_signals_subscriber",
        "inbound_signals",
        ["subscriber_id", "kind", "received_at"],
    )
    op.create_index("ix_inbound_signals_received", "inbound_signals", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_signals_received", "inbound_signals")
    op.drop_index("ix_inbound_signals_subscriber", "inbound_signals")
    op.drop_table("inbound_signals")
    with op.batch_alter_table("delivery_messages") as batch:
        batch.drop_column("return_path")
