"""digest cursors point at a post; archive posts; refused duplicates

A digest capped at ``digest.max_posts`` leaves the rest of its window for the next one: the
cursor then stops at the last post taken, named by ``covered_post`` (NULL: everything new
at ``covered_until`` is covered, as before). ``announcements.archived`` marks a post that
went live dated more than ``digest.backdate_limit`` before: published, mailed to nobody
unless released. ``posts.refused`` says why a post that parses was left out (another file
keeps its slug or id), so the digests never mail what the feeds refused.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("refused", sa.Text, nullable=True))
    with op.batch_alter_table("digest_cursors") as batch:
        batch.add_column(sa.Column("covered_post", sa.String(2048), nullable=True))
    with op.batch_alter_table("announcements") as batch:
        batch.add_column(
            sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("announcements") as batch:
        batch.drop_column("archived")
    with op.batch_alter_table("digest_cursors") as batch:
        batch.drop_column("covered_post")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("refused")
