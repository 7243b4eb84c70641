"""The ``feedsvc`` command line: argument parsing only; the work is in the modules it calls.

What it prints for people comes from the message catalogue, in the language of the site
it runs for (:meth:`Context.texts`). Exit status: 0 all good; 1 content problems
(``build`` still publishes every good post); 2 bad usage or configuration; 3 the store
cannot be opened.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from feedsvc import __version__
from feedsvc.cli.words import config_problem, error_line, number, problem_text
from feedsvc.config import Settings, load_settings
from feedsvc.errors import ConfigError, OutputError, StoreError
from feedsvc.messages import Texts, command_language
from feedsvc.models import Problem

# Commands that run without the cyclic garbage collector, which the console script turns
# off before anything is imported (feedsvc.cli.entry).
ONE_SHOT_BUILDS = frozenset({"build", "check"})

EXIT_PROBLEMS = 1
EXIT_CONFIG = 2
EXIT_STORE = 3

F = TypeVar("F", bound=Callable[..., Any])


# Command groups in their own modules, imported only when used: `feedsvc build` must not
# pay for the mail, delivery and web stacks at start-up.
LAZY_COMMANDS = {
    "subscribers": "feedsvc.cli.subscribers:subscribers",
    "digest": "feedsvc.cli.digest:digest",
    "deliveries": "feedsvc.cli.deliveries:deliveries",
    "bounces": "feedsvc.cli.bounces:bounces",
    "run": "feedsvc.cli.run:run",
    "secret": "feedsvc.cli.secret:secret",
    "config": "feedsvc.cli.config_show:config",
}


class LazyGroup(click.Group):
    """A click group whose listed subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # only the store's own failures are handled; see below
            if isinstance(exc, OutputError):  # the feeds' folder, not the store
                click.echo(error_line(_context_texts(ctx), str(exc)), err=True)
                sys.exit(EXIT_PROBLEMS)
            failure = _store_failure(exc, ctx)
            if failure is None:
                raise
            click.echo(error_line(_context_texts(ctx), failure), err=True)
            sys.exit(EXIT_STORE)


def _context_texts(ctx: click.Context | None) -> Texts:
    if ctx is not None and isinstance(ctx.obj, Context):
        return ctx.obj.texts()
    return Texts(command_language(None))


def _store_failure(exc: BaseException, ctx: click.Context) -> str | None:
    """One line for a store that fails after it was opened (disk full, read-only file
    system, permissions, a database gone away), or None for anything else. SQLAlchemy is
    looked up only if a command already loaded it: the CLI starts without it."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.OperationalError):
        return None
    from feedsvc.storage.engine import _safe as safe_url

    texts = _context_texts(ctx)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if not isinstance(ctx.obj, Context):
        return texts("cli.store_failed", reason=reason)
    url = ctx.obj.settings().storage_url
    sqlite_path = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
    return texts("cli.store_failed.named", store=sqlite_path or safe_url(url), reason=reason)


# ConfigFile.source when no config file was found (feedsvc.config.read_config).
NO_CONFIG_FILE = "embedded defaults"


class Context:
    """One invocation: the config it names, read once, and the language it speaks."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._texts: Texts | None = None

    def settings(self) -> Settings:
        """The settings (read once); an invalid config ends the command (exit 2)."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                texts = self.texts()
                click.echo(error_line(texts, config_problem(texts, exc)), err=True)
                sys.exit(EXIT_CONFIG)
        return self._settings

    def texts(self) -> Texts:
        """What the command says, in ``$FEEDSVC_LANGUAGE``, else the site's language
        (``site.language``), else, without a config file or with one that cannot be
        read, the terminal's (LC_ALL, LC_MESSAGES, LANG)."""
        if self._texts is None:
            self._texts = Texts(command_language(self._site_language()))
        return self._texts

    def _site_language(self) -> str | None:
        settings = self._settings
        if settings is None:
            try:
                settings = self._settings = load_settings(self.config_path)
            except ConfigError:
                return None  # the command says so itself, in the terminal's language
        return None if settings.source == NO_CONFIG_FILE else settings.site.language


def _open_store(settings: Settings, *, to_read: bool = False) -> Any:
    """The store, created or migrated as needed; ``to_read``: without writing to it
    (``check``: a missing or older store is not touched, one in memory stands in)."""
    from feedsvc.storage import open_store, open_store_to_read

    try:
        store = (
            open_store_to_read(settings.storage_url)
            if to_read
            else open_store(settings.storage_url)
        )
    except StoreError as exc:
        click.echo(error_line(current_texts(), str(exc)), err=True)
        sys.exit(EXIT_STORE)
    if store.migration:
        texts = current_texts()
        note = texts.message(store.migration)
        click.echo(error_line(texts, f"{note} ({_safe_url(store)})"), err=True)
    return store


def current_texts() -> Texts:
    """The words of the command that runs (:meth:`Context.texts`); the terminal's language
    outside a command."""
    context = click.get_current_context(silent=True)
    return _context_texts(context.find_root()) if context is not None else _context_texts(None)


def _safe_url(store: Any) -> str:
    return str(store.engine.url.render_as_string(hide_password=True))


def _print_problems(texts: Texts, problems: list[Problem], content_dir: Path) -> None:
    """Each problem on a line, its file named from the current folder (``path:line:``,
    which terminals and editors open), not from the content folder."""
    for problem in problems:
        click.echo(problem_text(texts, _from_here(problem, content_dir)), err=True)


def _from_here(problem: Problem, content_dir: Path) -> Problem:
    path = problem.path
    if "://" in path or Path(path).is_absolute():
        return problem  # a URL (the WebSub hub) or a path already whole
    try:
        shown = os.path.relpath(content_dir / path)
    except ValueError:  # another drive (Windows)
        shown = str(content_dir / path)
    return replace(problem, path=shown)


def _held(texts: Texts, report: Any) -> str:
    """ ", 1 draft, 2 scheduled": the good posts a build did not publish (yet)."""
    parts = [texts.plural("cli.count.drafts", report.drafts)] if report.drafts else []
    if report.scheduled:
        parts.append(texts("cli.build.scheduled", count=number(report.scheduled)))
    return "".join(texts("cli.list_item", item=part) for part in parts)


def _counts(texts: Texts, report: Any) -> dict[str, str]:
    """The counts the summaries of ``build`` and ``check`` share."""
    return {
        "files": texts.plural("cli.count.files", report.files),
        "published": number(report.published),
        "held": _held(texts, report),
        "errors": texts.plural("cli.count.errors", report.errors),
        "warnings": texts.plural("cli.count.warnings", report.warnings),
    }


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="FEEDSVC_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default ./config.yaml, else built-in defaults). Env: FEEDSVC_CONFIG.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
@click.version_option(__version__, prog_name="feedsvc")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """feedsvc: a folder of blog posts in, RSS/Atom/JSON feeds and newsletters out."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="feedsvc: %(levelname)s: %(message)s",
    )
    ctx.obj = Context(config_path)
    if not gc.isenabled() and ctx.invoked_subcommand not in ONE_SHOT_BUILDS:
        gc.freeze()  # what start-up made stays; the rest is collected as usual
        gc.enable()


def _builder(settings: Settings, *, head_start: bool = False, to_read: bool = False) -> Any:
    """A Builder on the opened store (imports the build pipeline and SQLAlchemy).
    ``head_start``: a new SQLite store's first parse begins first (build.parse.head_start);
    ``to_read``: a store it must not write to (``check``)."""
    head = None
    path = settings.sqlite_path
    if head_start and path is not None and not path.exists():  # a new store: parse now
        from feedsvc.build.parse import head_start as start

        head = start(settings)
    from feedsvc.build.builder import Builder
    from feedsvc.clock import SystemClock

    store = _open_store(settings, to_read=to_read)
    return Builder(settings, store, SystemClock(), head=head)


@main.command()
@click.pass_obj
def build(obj: Context) -> None:
    """Publish every good post to the feeds; report the files that have problems."""
    started = time.perf_counter()
    settings = obj.settings()
    builder = _builder(settings, head_start=True)
    report = builder.build()
    builder.store.close()  # checkpoint SQLite's log now, not in the interpreter's exit
    texts = obj.texts()
    _print_problems(texts, report.problems, settings.content_dir)
    for phase, seconds in report.timings.items():
        logging.getLogger("feedsvc.build").debug("%s: %.3f s", phase, seconds)
    elapsed = time.perf_counter() - started
    click.echo(
        texts(
            "cli.build.summary",
            **_counts(texts, report),
            parsed=number(report.parsed),
            rendered=number(report.rendered),
            feeds=texts.plural("cli.count.feed_files", len(report.feeds_written)),
            output=str(settings.output_dir),
            seconds=f"{elapsed:.2f}",
        )
    )
    if report.next_publish is not None:
        from feedsvc.cli.words import when_label
        from feedsvc.clock import SystemClock

        now = SystemClock().now()
        when = when_label(texts, report.next_publish, settings.site.timezone, now)
        click.echo(texts("cli.build.next_scheduled", when=when))
    if report.errors:
        unpublished = texts.plural("cli.build.unpublished", report.errors)
        click.echo(error_line(texts, unpublished), err=True)
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.pass_obj
def check(obj: Context) -> None:
    """Check config and every content file; exit non-zero when anything is wrong. Writes
    nothing: no feed file, no store (a missing one is not created)."""
    settings = obj.settings()
    builder = _builder(settings, to_read=True)
    report = builder.build(dry_run=True, render_all=True)
    builder.store.close()
    texts = obj.texts()
    _print_problems(texts, report.problems, settings.content_dir)
    click.echo(texts("cli.check.summary", **_counts(texts, report)))
    if report.errors:
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.pass_obj
def status(obj: Context) -> None:
    """Show the last build and its content problems."""
    from feedsvc.cli.status import collect_status, format_status

    settings = obj.settings()
    store = _open_store(settings)
    try:
        click.echo(format_status(obj.texts(), collect_status(settings, store)))
    finally:
        store.close()


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(directory: Path) -> None:
    """Write a working site skeleton (config.yaml, content/ with sample posts) to DIRECTORY."""
    from feedsvc.cli.skeleton import write_skeleton

    # No config of its own: the terminal's language (or $FEEDSVC_LANGUAGE).
    texts = Texts(command_language(None))
    written, skipped = write_skeleton(directory)
    for path in written:
        click.echo(texts("cli.init.wrote", path=str(path)))
    for path in skipped:
        click.echo(texts("cli.init.kept", path=str(path)))
    click.echo(texts("cli.init.next", directory=str(directory)))


if __name__ == "__main__":  # pragma: no cover
    main()
