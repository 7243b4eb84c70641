"""The ``feedsvc`` console script and ``python -m feedsvc``: the CLI, with the cyclic
garbage collector off from the first import.

Start-up and a build allocate hundreds of thousands of objects that live until the process
ends (modules, classes, 10,000 posts' metadata), and the collector would walk them again
and again: about 15% of a cold build. ``build`` and ``check`` make few reference cycles and
exit, so they run without it; every other command turns it back on as soon as it is known
(:func:`feedsvc.cli.main`), the daemon included.

At exit the interpreter's own collections walk every object still alive, several times
over: ~0.15 s after a big build. Frozen objects are skipped, and the process's memory
goes back to the system with it all the same.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from feedsvc.cli import main as cli

    try:
        cli()
    finally:
        gc.freeze()
