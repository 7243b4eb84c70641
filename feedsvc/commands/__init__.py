"""Command groups of the ``feedsvc`` command line, one module each (registered in cli.py)."""
