"""``feedsvc secret rotate|list``: the keys that sign the links in emails
(feedsvc.newsletter.tokens).

Exit status as for the rest of the CLI: 0 done; 2 bad usage or configuration (e.g. the
keys come from FEEDSVC_SECRET_KEY, which feedsvc does not change); 3 the store cannot be
opened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from feedsvc.cli.invocation import EXIT_USAGE, fail, now, store_for, texts
from feedsvc.cli.words import config_problem
from feedsvc.errors import ConfigError

if TYPE_CHECKING:
    from feedsvc.cli.main import Context
    from feedsvc.config import Settings
    from feedsvc.storage import Store


@click.group()
def secret() -> None:
    """The keys that sign confirm, unsubscribe and preferences links."""


def _store_if_database(settings: Settings) -> Store | None:
    """The opened store when it keeps the keys (PostgreSQL); a SQLite store's are in a file."""
    return store_for(settings) if settings.storage_url.startswith("postgres") else None


@secret.command()
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    help="Keep only the N newest keys, the new one included (default: keep all). "
    "--keep 1 retires every old key: links in emails already sent stop working.",
)
@click.pass_obj
def rotate(obj: Context, keep: int | None) -> None:
    """Add a new key: it signs new links from now on, older keys still verify the links
    already mailed. Restart every `feedsvc run` on this store afterwards."""
    from feedsvc.newsletter.tokens import rotate_secret

    settings = obj.settings()
    store = _store_if_database(settings)
    said = texts()
    try:
        done = rotate_secret(settings, now(), keep=keep, store=store)
    except ConfigError as exc:
        fail(config_problem(said, exc), EXIT_USAGE)
    click.echo(said("cli.secret.added", key=done.added, where=done.where))
    click.echo(said.plural("cli.secret.older", done.kept - 1))
    if done.retired:
        click.echo(said.plural("cli.secret.retired", done.retired))
    click.echo(said("cli.secret.restart"))


@secret.command("list")
@click.pass_obj
def list_(obj: Context) -> None:
    """The keys, oldest first, by fingerprint (never the key); the last one signs."""
    from feedsvc.newsletter.tokens import SECRET_ENV, fingerprint, load_secrets, secret_path

    settings = obj.settings()
    store = _store_if_database(settings)
    said = texts()
    try:
        keys = load_secrets(settings, store=store)
    except ConfigError as exc:
        fail(config_problem(said, exc), EXIT_USAGE)
    if os.environ.get(SECRET_ENV) is not None:
        where = SECRET_ENV
    elif store is not None:
        where = store.engine.url.render_as_string(hide_password=True)
    else:
        where = str(secret_path(settings))
    click.echo(said.plural("cli.secret.listed", len(keys), where=where))
    for number, key in enumerate(keys, 1):
        role = said("cli.secret.signs") if number == len(keys) else said("cli.secret.verifies")
        click.echo(f"{number}\t{fingerprint(key)}\t{role}")
