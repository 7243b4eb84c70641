"""What a command needs from its invocation: exit status, store, time, actor, and the
words it speaks (:func:`texts`).

Exit statuses as for the rest of the CLI: 0 done; 1 something was refused or some rows
were bad (the rest was done); 2 bad usage or an unreadable file; 3 the store cannot be
opened.
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

import click

from feedsvc.cli.words import error_line, warning_line

if TYPE_CHECKING:
    from feedsvc.cli.main import Context
    from feedsvc.config import Settings
    from feedsvc.messages import Texts
    from feedsvc.storage import Store

# As in feedsvc.cli.main (imported from there lazily: cli.py imports the commands).
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_STORE = 3

TEST_DOMAINS_HELP = "Accept addresses at the reserved .test domain (for trials and benchmarks)."


def texts() -> Texts:
    """The command line's words, in the language of the command that runs: the site's
    (``site.language`` of its config), ``$FEEDSVC_LANGUAGE`` over it, and the terminal's
    for a command without a config of its own (see :func:`feedsvc.messages.command_language`)."""
    from feedsvc.cli.main import current_texts

    return current_texts()


def fail(message: str, code: int) -> NoReturn:
    """``feedsvc: MESSAGE`` on stderr (``message`` from the catalogue), and exit."""
    click.echo(error_line(texts(), message), err=True)
    sys.exit(code)


def warn(message: str) -> None:
    """Something the command did but the user should look at (stderr; the exit status
    does not change)."""
    click.echo(warning_line(texts(), message), err=True)


def command_store(obj: Context) -> Store:
    """The store, opened (and migrated); closed when the command ends, however it ends."""
    return store_for(obj.settings())


def store_for(settings: Settings) -> Store:
    """The store of ``settings``, opened (and migrated); closed when the command ends."""
    from feedsvc.cli.main import _open_store

    store: Store = _open_store(settings)
    click.get_current_context().call_on_close(store.close)
    return store


def now() -> datetime:
    from feedsvc.clock import SystemClock

    return SystemClock().now()


def actor() -> str:
    """Who is acting, for the events table: the command line and the OS user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or passwd database
        user = f"uid {os.getuid()}"
    return f"cli:{user}"
