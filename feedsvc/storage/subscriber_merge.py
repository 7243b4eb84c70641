"""How a subscriber written again meets the row already stored: the upsert's rules, in SQL.

Adding or updating a subscriber is one ``INSERT … ON CONFLICT (email) DO UPDATE`` (SQLite
and PostgreSQL spell it the same; SQLAlchemy's dialect inserts build it), so two processes
adding the same address at once end with one row, never an error. The update clause
(:func:`conflict_set`) holds the rules that must not depend on what a process read
earlier:

- an unsubscribed, bounced or complained address keeps its status: nothing re-activates it;
- a confirmed (active) address never goes back to pending;
- ``created`` and the consent fields are never overwritten; ``confirmed`` only filled in.

:mod:`feedsvc.storage.subscriber_upserts` runs these statements, in batches.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal_column, or_

from feedsvc.models import SubscriberInput, SubscriberStatus
from feedsvc.storage.schema import subscribers
from feedsvc.storage.subscribers import categories_json

_STOPPED = tuple(s.value for s in SubscriberStatus if s.stopped)
# Fields an existing subscriber may take from an input (see subscriber_csv.SubscriberCsv.updates).
UPDATABLE = frozenset(
    {"name", "frequency", "categories", "timezone", "status", "confirmed", "unsubscribed"}
)
# The subscribers columns an upsert writes, in the order of upsert_values.
COLUMNS = (
    "email",
    "name",
    "status",
    "frequency",
    "categories",
    "timezone",
    "created",
    "confirmed",
    "unsubscribed",
    "consent_source",
    "consent_ip",
)


def upsert_values(row: SubscriberInput, now: datetime, now_db: Any, to_db: Any) -> tuple[Any, ...]:
    """``row`` as the upsert's parameters, in :data:`COLUMNS` order, ready for the driver."""
    unsubscribed = row.unsubscribed
    if unsubscribed is None and row.status == SubscriberStatus.UNSUBSCRIBED:
        unsubscribed = now
    return (
        row.email,
        row.name,
        row.status.value,
        row.frequency.value,
        categories_json(row.categories),
        row.timezone,
        now_db if row.created is None else to_db(row.created),
        None if row.confirmed is None else to_db(row.confirmed),
        None if unsubscribed is None else to_db(unsubscribed),
        row.consent_source,
        row.consent_ip,
    )


def conflict_set(new: Any, updates: frozenset[str]) -> dict[str, Any]:
    """The ON CONFLICT update: the rules of the module docstring, in SQL.

    ``new`` is the statement's ``excluded`` (the row offered); ``updates`` names the
    fields an existing row takes from it (a subset of :data:`UPDATABLE`).
    """
    old = subscribers.c
    # Constants as SQL literals, not parameters: the compiled SQL then takes the row's
    # values only (see subscriber_upserts._sqlite_upsert_sql).
    stopped = [old.status == literal_column(f"'{status}'") for status in _STOPPED]
    pending: Any = literal_column(f"'{SubscriberStatus.PENDING.value}'")
    keeps_status = or_(*stopped, new.status == pending)
    set_: dict[str, Any] = {}
    for field in ("name", "frequency", "categories", "timezone"):
        if field in updates:
            set_[field] = new[field]
    if "status" in updates:
        # The unsubscribe date goes with the status: a file with dates but no status
        # column leaves both as they are (an active row must not get a date).
        set_["status"] = case((keeps_status, old.status), else_=new.status)
        set_["unsubscribed"] = case((keeps_status, old.unsubscribed), else_=new.unsubscribed)
    if "confirmed" in updates:
        set_["confirmed"] = func.coalesce(old.confirmed, new.confirmed)
    if not set_:
        set_["email"] = new.email  # changes nothing, but RETURNING still gives the row
    return set_


@functools.lru_cache(maxsize=64)
def upsert_statement(dialect: str, updates: frozenset[str]) -> Any:
    """The executemany upsert for ``dialect`` (a memo: the same statement object each time
    lets SQLAlchemy reuse its compiled form)."""
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(subscribers)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(subscribers)
    return stmt.on_conflict_do_update(
        index_elements=[subscribers.c.email], set_=conflict_set(stmt.excluded, updates)
    )
