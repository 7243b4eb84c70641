"""secret_keys: the keys that sign links in emails, shared by every daemon on a database

On PostgreSQL the secret lived in a file in each config folder, so two daemons on one
database signed with different keys and a confirm link from one failed on the other.
The keys now live here (SQLite keeps its file beside the database); the highest
generation signs, all of them verify, and `feedsvc secret rotate` adds one.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secret_keys",
        sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("secret_keys")
