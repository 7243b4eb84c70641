"""The `feedsvc` command line: the entry point, argument parsing and one module per command
group."""
