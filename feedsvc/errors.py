"""The exceptions feedsvc raises on purpose.

    FeedsvcError                 anything feedsvc reports to a user
    ├── ConfigError              config.yaml or environment: names the dotted key
    ├── ContentError             one source file cannot become a post: path, line, reason
    ├── StoreError               the state store cannot be opened or migrated
    ├── OutputError              a feed file cannot be written (disk full, read-only)
    ├── AddressError             an email address that cannot be used: the address, why
    ├── CsvFormatError           a subscriber CSV that cannot be read at all: file, line
    ├── TokenError               a link token that is forged, for another purpose, malformed
    │                            or expired
    ├── DaemonLocked             another `feedsvc run` holds the lock of this store
    └── DeliveryError            a message could not be handed over (``temporary``: a retry
        │                        may succeed)
        └── SendingPaused        the SMTP server refused our credentials or TLS: sending
                                 stops until that is fixed

Each message says what is wrong and what to do about it; the CLI prints it as is.

The others cross from one module to another and are caught there; what the user sees
is what that module makes of them:

    BadInput (Exception)         a form field or JSON key the web forms refuse: which, why
    NotArchived (LookupError)    `digest release` named a post that is no archive post
    Unsendable (ValueError)      an address the SMTP session cannot put in an envelope
    WireError (Exception)        the SMTP session cannot go on (``after_data``: the message
    │                            may have been taken)
    ├── NoReply                  no reply within the timeout
    └── Disconnected             the connection closed, or the answer was not SMTP

Exceptions raised and caught within one module (control flow, never seen outside it)
stay private to that module, named with a leading underscore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedsvc.models import Message


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
    """A source file cannot be published; the other posts are unaffected. ``reason`` is
    English; ``message`` the same as catalogue id and values (when given as a Message),
    for the command line to show in the site's language."""

    def __init__(self, path: str, reason: str | Message, line: int | None = None) -> None:
        self.path = path
        self.message = None if isinstance(reason, str) else reason
        self.reason = str(reason)
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


class TokenError(FeedsvcError):
    """A token that is forged, for another purpose, malformed or expired."""

    def __init__(self, purpose: str, reason: str) -> None:
        self.purpose = purpose  # a feedsvc.newsletter.tokens.Purpose
        self.reason = reason
        super().__init__(f"invalid {purpose} token: {reason}")


class DaemonLocked(FeedsvcError):
    """Another ``feedsvc run`` holds the lock of this store."""


class MailboxError(FeedsvcError):
    """The bounce mailbox cannot be reached, logged in to or read; nothing was lost (what
    was not committed stays in the mailbox for the next read)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(
            f"cannot read the bounce mailbox {where}: {reason}; check bounces.mailbox "
            "(host, port, tls, username) and the password in bounces.mailbox.password_env"
        )


class WebhookError(FeedsvcError):
    """A provider's webhook request that is not signed as it must be (401), malformed
    (400), or that cannot be checked now (503); it changes nothing."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class DeliveryError(FeedsvcError):
    """A message could not be handed over; ``temporary`` when a retry may succeed."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        self.temporary = temporary
        super().__init__(message)


class SendingPaused(DeliveryError):
    """The server refused our credentials or TLS: every message would fail the same way,
    so sending stops (rows stay pending) until the cause is fixed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=True)


# --- caught by another module, not shown as they are -----------------------------------


class BadInput(Exception):
    """A request field the web forms refuse; ``field``: the form field (and JSON key) at
    fault, when it is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


class NotArchived(LookupError):
    """A post named for release that is not an archive post waiting to be mailed."""


class WireError(Exception):
    """The SMTP session cannot go on. ``after_data``: the whole message had been written,
    so the server may have taken it."""

    def __init__(self, reason: str, *, after_data: bool) -> None:
        super().__init__(reason)
        self.after_data = after_data


class NoReply(WireError):
    """No reply within the timeout."""


class Disconnected(WireError):
    """The connection closed, or the server answered something that is not SMTP."""


class Unsendable(ValueError):
    """An address this SMTP session cannot put in an envelope (control characters;
    non-ASCII without SMTPUTF8)."""
