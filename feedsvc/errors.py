"""The exceptions feedsvc raises on purpose.

    FeedsvcError                 anything feedsvc reports to a user
    ├── ConfigError              config.yaml or environment: names the dotted key
    ├── ContentError             one source file cannot become a post: path, line, reason
    ├── StoreError               the state store cannot be opened or migrated
    ├── OutputError              a feed file cannot be written (disk full, read-only)
    ├── AddressError             an email address that cannot be used: the address, why
    └── CsvFormatError           a subscriber CSV that cannot be read at all: file, line

Each message says what is wrong and what to do about it; the CLI prints it as is.
"""

from __future__ import annotations


class FeedsvcError(Exception):
    """Base of every error feedsvc reports to a user."""


class ConfigError(FeedsvcError):
    """The configuration is invalid; ``problems`` holds one line per bad key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class ContentError(FeedsvcError):
    """A source file cannot be published; the other posts are unaffected."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class StoreError(FeedsvcError):
    """The state store is unreachable, or its schema cannot be brought up to date."""


class OutputError(FeedsvcError):
    """A feed file could not be written; nothing of that build's feeds was published."""


class AddressError(FeedsvcError):
    """An email address that cannot be used; the message names it and says why."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address!r} is not a usable email address: {reason}")


class CsvFormatError(FeedsvcError):
    """A subscriber CSV that cannot be read at all (header, encoding): nothing is imported."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")
