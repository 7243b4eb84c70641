"""The state store: schema, migrations and queries (SQLite by default, PostgreSQL by URL)."""

from feedsvc.storage.engine import Store, open_store, open_store_to_read

__all__ = ["Store", "open_store", "open_store_to_read"]
