"""``python -m feedsvc`` is the ``feedsvc`` command."""

from feedsvc.entry import main

main()
