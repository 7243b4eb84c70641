"""posts.problem_message: a broken file's problem as message id and values

``posts.problem`` keeps the problem in English (logs, JSON); ``problem_message`` keeps it as
the message catalogue's id and values (JSON), so that the command line can show the problem
of a file that has not changed since in the site's language. Files broken before this
revision have none: they are read again by the next build (their fingerprint is cleared).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("problem_message", sa.Text, nullable=True))
    op.execute("UPDATE posts SET fingerprint = '' WHERE problem IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("problem_message")
