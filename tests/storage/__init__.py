"""Tests of feedsvc.storage on SQLite and PostgreSQL: schema, migrations, queries."""
