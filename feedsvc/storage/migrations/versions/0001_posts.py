"""posts cache, first-seen dates, build history

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.storage.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("source_path", sa.String(1024), primary_key=True),
        sa.Column("post_id", sa.String(2048), nullable=True),
        sa.Column("slug", sa.String(512), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("published", UTCDateTime, nullable=True),
        sa.Column("meta", sa.Text, nullable=True),
        sa.Column("html", sa.Text, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("render_key", sa.String(64), nullable=True),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("problem_line", sa.Integer, nullable=True),
    )
    op.create_index("ix_posts_post_id", "posts", ["post_id"])
    op.create_table(
        "first_seen",
        sa.Column("slug", sa.String(512), primary_key=True),
        sa.Column("seen_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("parsed", sa.Integer, nullable=False),
        sa.Column("published", sa.Integer, nullable=False),
        sa.Column("rendered", sa.Integer, nullable=False),
        sa.Column("feeds_written", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("next_publish", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("builds")
    op.drop_table("first_seen")
    op.drop_index("ix_posts_post_id", table_name="posts")
    op.drop_table("posts")
