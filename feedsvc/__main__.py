"""``python -m feedsvc`` is the ``feedsvc`` command."""

from feedsvc.cli.entry import main

main()
