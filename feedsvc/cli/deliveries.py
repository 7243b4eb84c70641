"""``feedsvc deliveries list|retry``: look at the outbox in the store, re-queue failures.

Exit status as for the rest of the CLI: 0 done; 2 bad usage; 3 the store cannot be opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from feedsvc.cli.invocation import EXIT_STORE, command_store, fail, now, texts
from feedsvc.errors import StoreError
from feedsvc.models import DeliveryStatus

if TYPE_CHECKING:
    from feedsvc.cli.main import Context


@click.group()
def deliveries() -> None:
    """The per-recipient outbox: list rows, re-queue failed ones."""


@deliveries.command("list")
@click.option(
    "--status",
    "status",
    type=click.Choice([s.value for s in DeliveryStatus]),
    default=None,
    help="Only rows with this status (e.g. failed).",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_obj
def list_(obj: Context, status: str | None, limit: int) -> None:
    """Deliveries, newest first: id, status, attempts, address, last reply or error."""
    from feedsvc.storage.deliveries import list_deliveries

    store = command_store(obj)
    try:
        with store.read() as conn:
            found = list_deliveries(
                conn, status=None if status is None else DeliveryStatus(status), limit=limit
            )
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    said = texts()
    for row in found:
        when = row.last_attempt_at.isoformat() if row.last_attempt_at else said("cli.never_tried")
        detail = row.error or ""
        attempts = said.plural("cli.count.attempts", row.attempts)
        click.echo(f"{row.id}\t{row.status.value}\t{attempts}\t{row.email}\t{when}\t{detail}")
    if not found:
        click.echo(
            said("cli.deliveries.none_with", status=status)
            if status
            else said("cli.deliveries.none")
        )


@deliveries.command()
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
def retry(obj: Context, ids: tuple[int, ...]) -> None:
    """Re-queue failed deliveries (all, or those IDS) after fixing the cause: they go
    out with the next `feedsvc digest send`, same bytes, same Message-ID."""
    from feedsvc.storage.deliveries import requeue_failed

    store = command_store(obj)
    try:
        with store.write() as conn:
            count = requeue_failed(conn, now(), list(ids) if ids else None)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    click.echo(texts().plural("cli.deliveries.requeued", count))
