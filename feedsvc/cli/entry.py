"""The ``feedsvc`` console script and ``python -m feedsvc``: the CLI, with the cyclic
garbage collector off from the first import.

Start-up and a build allocate hundreds of thousands of objects that live until the process
ends (modules, classes, 10,000 posts' metadata), and the collector would walk them again
and again: about 15% of a cold build. ``build`` and ``check`` make few reference cycles and
exit, so they run without it; every other command turns it back on as soon as it is known
(:func:`feedsvc.cli.main.main`), the daemon included.

At exit the interpreter's own collections walk every object still alive, several times
over: ~0.15 s after a big build. Frozen objects are skipped, and the process's memory
goes back to the system with it all the same. ``build`` and ``check`` skip the teardown
altogether (:func:`_exit_now`).
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    gc.disable()
    from feedsvc.cli.main import main as cli

    try:
        cli()
    except SystemExit as done:  # how click ends every command
        if not gc.isenabled():  # `build` or `check`: nothing is left to tidy
            _exit_now(done.code)
        raise
    finally:
        gc.freeze()


def _exit_now(code: object) -> None:
    """Exit with ``code`` as ``sys.exit`` would, but without the interpreter's teardown,
    which frees a big build's million objects one by one (~25 ms). Only for commands
    that have closed what they opened: the output is flushed here."""
    import logging
    import os
    from contextlib import suppress

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(code or 0)
