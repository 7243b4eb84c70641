"""A real SMTP server on loopback (aiosmtpd) that records what it receives and answers
as a script says: per recipient, one behaviour per attempt (then "ok").

Behaviours: "ok"; "421", "451", "452", "550" at RCPT; "552" and "554" after DATA; "drop
before data" (the connection closes at RCPT); "drop after data" (the message arrives, the
connection closes before the reply); "stall" (the message arrives, the reply comes only
after ``stall_seconds``, past the client's timeout); "RCPT <reply>" and "DATA <reply>":
that exact reply at RCPT TO / after the message (e.g. "DATA 554 5.6.0 Content rejected").
``Recorder.mail_reply``: the reply to every MAIL FROM (a relay that refuses the sender).

aiosmtpd does not offer PIPELINING (RFC 2920), though it reads commands in order from
one stream, as a pipelining server must; ``Recorder(pipelining=True)`` offers it, so that
clients send MAIL, RCPT and DATA in one write.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller

REPLIES = {
    "421": "421 4.3.2 Service shutting down, closing transmission channel",
    "451": "451 4.3.0 Try again later",
    "452": "452 4.2.2 Mailbox full",
    "550": "550 5.1.1 No such user here",
    "552": "552 5.3.4 Message too big",
    "554": "554 5.7.1 Rejected as spam",
}


@dataclass
class Received:
    recipient: str
    message_id: str
    data: bytes
    mail_from: str = ""  # the envelope sender (MAIL FROM)


@dataclass
class Recorder:
    """The aiosmtpd handler: records messages, follows the script."""

    script: dict[str, list[str]] = field(default_factory=dict)
    stall_seconds: float = 2.0
    pipelining: bool = False
    greetings: int = 0  # EHLOs seen: one per session (two with STARTTLS)
    received: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    mail_reply: str | None = None
    mail_refused: int = 0  # MAIL FROMs answered with mail_reply

    def _next(self, address: str, stage: set[str]) -> str:
        steps = self.script.get(address)
        if steps and (steps[0] in stage or steps[0].split(" ", 1)[0] in stage):
            return steps.pop(0)
        return "ok"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_reply is not None:
            with self.lock:
                self.mail_refused += 1
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.greetings += 1
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.attempts[address] += 1
            step = self._next(address, {"421", "451", "452", "550", "drop before data", "RCPT"})
        if step == "drop before data":
            server.transport.close()
            return "250 OK"  # never reaches the client
        if step.startswith("RCPT "):
            return step.removeprefix("RCPT ")
        if step != "ok":
            return REPLIES[step]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        headers = BytesHeaderParser().parsebytes(data)
        address = envelope.rcpt_tos[0]
        with self.lock:
            step = self._next(address, {"552", "554", "drop after data", "stall", "DATA"})
        if step in ("552", "554"):
            return REPLIES[step]
        if step.startswith("DATA "):
            return step.removeprefix("DATA ")
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                message_id = str(headers["Message-ID"])
                self.received.append(Received(rcpt, message_id, data, envelope.mail_from))
        if step == "drop after data":
            server.transport.close()
            return "250 OK"
        if step == "stall":
            await asyncio.sleep(self.stall_seconds)
        return "250 2.0.0 Ok: queued as 4BusanQ1"

    def by_recipient(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        with self.lock:
            for r in self.received:
                found[r.recipient].append(r.message_id)
        return dict(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder


def serving(recorder: Recorder | None = None, **options: Any) -> Generator[SmtpServer, None, None]:
    """Run an aiosmtpd server in a thread for the duration of a ``with``/fixture."""
    recorder = recorder if recorder is not None else Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, recorder)
    finally:
        controller.stop()
