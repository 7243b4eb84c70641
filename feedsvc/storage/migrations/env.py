"""Alembic environment: runs on the connection feedsvc hands it (never from alembic.ini)."""

from alembic import context

from feedsvc.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
