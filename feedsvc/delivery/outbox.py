"""The ``outbox`` delivery backend: each message becomes one ``.eml`` file in a folder.

It is the embedded default (``delivery.backend: outbox``, ``delivery.outbox_dir``): no mail
server needed, and every file opens in a mail client as is. A file is named after the
Message-ID (``<7.42.0cf2…@example.kr>`` → ``7.42.0cf2…@example.kr.eml``), written to a
temporary file and renamed, so a reader never sees half a message, and sending the same
message again (a crash between writing and marking it sent) rewrites the same file.

A backend has one method, ``send(message)``; it raises :class:`DeliveryError` saying
whether trying again later may help. The SMTP backend (:mod:`feedsvc.delivery.smtp`) sends in bulk
through :mod:`feedsvc.delivery.dispatch` instead.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from feedsvc.errors import DeliveryError
from feedsvc.storage.delivery_claims import Claimed

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


class Backend(Protocol):
    """Where messages go. ``send`` returns once the message is accepted."""

    name: str

    def send(self, message: Claimed) -> None: ...


def eml_name(message: Claimed) -> str:
    """A file name from the Message-ID (else the delivery id), safe on any file system."""
    ident = message.message_id.strip().strip("<>") if message.message_id else ""
    safe = _UNSAFE.sub("_", ident)[:200]
    return f"{safe or f'delivery-{message.delivery_id}'}.eml"


class OutboxBackend:
    """Writes each message to ``folder`` as ``<Message-ID>.eml`` (atomically)."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: Claimed) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / eml_name(message)
            # Not *.eml until whole: a reader watching for *.eml never opens half a message.
            fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    if message.return_path:  # as the receiving server would record it
                        handle.write(b"Return-Path: <%s>\r\n" % message.return_path.encode())
                    handle.write(message.message)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to the outbox folder {self.folder} (delivery.outbox_dir): "
                f"{exc.strerror or exc}",
                temporary=True,
            ) from None
