"""SMTP mail transactions on a connection aiosmtplib opened, pipelined when offered.

aiosmtplib connects, negotiates TLS and logs in (:mod:`feedsvc.delivery.smtp`); then a
:class:`Session` takes the transport over (``transport.set_protocol``) and runs one mail
transaction after another on it:

    PIPELINING offered (RFC 2920)   MAIL FROM + RCPT TO + DATA in one write → 3 replies,
                                    then the message with its final dot → 1 reply; when
                                    the next message is at hand, its MAIL FROM + RCPT TO +
                                    DATA go in the same write as this one's final dot
                                    (RFC 2920 allows the message content first in a group),
                                    so a steady stream costs one round trip a message
    not offered                     each command, then its reply (lockstep)

Why not aiosmtplib's ``sendmail``: it cannot pipeline (its protocol holds one reply at a
time and drops data that arrives while no command waits), so a message costs four round
trips; and it runs two regular expressions over every message (line endings, leading
dots). Stored messages already have CRLF line endings, so :func:`wire_form` only doubles
leading dots (one search, and a replace when there are any).

What a transaction answers is what aiosmtplib's did: the server's reply to the message,
or the first reply that was not a success (a transaction that failed before the message
is reset with RSET; after a 421 the session is closed), with the :class:`Stage` it
answers. :class:`NoReply` (the timeout
passed) and :class:`Disconnected` say whether the whole message had been written: after
the final dot, the outcome is unknown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from feedsvc.delivery.mime import ascii_address
from feedsvc.errors import Disconnected, NoReply, Unsendable, WireError

MAX_REPLY = 32 * 1024  # a reply longer than this (all its lines) is not SMTP
_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def wire_form(message: bytes, *, crlf: bool = False) -> tuple[bytes, int]:
    """What follows DATA for ``message`` (CRLF line endings and a final CRLF, leading dots
    doubled, the closing dot), and its size for SIZE (RFC 1870: before dot-stuffing).

    ``crlf``: the caller knows every line already ends in CRLF (messages rendered into
    the store: :func:`feedsvc.delivery.mime.assemble` writes them so), which saves three passes
    over the message.
    """
    if not crlf:
        count = message.count(b"\r\n")
        if message.count(b"\n") != count or message.count(b"\r") != count:
            message = _LINE_ENDINGS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    size = len(message)
    if message.startswith(b"."):
        message = b"." + message
    if b"\r\n." in message:
        message = message.replace(b"\r\n.", b"\r\n..")
    return message + b".\r\n", size


def crlf_size(message: bytes) -> int:
    """What :func:`wire_form` (``crlf=True``) gives as the size, without the copy."""
    return len(message) + (0 if message.endswith(b"\r\n") else 2)


class Stage(StrEnum):
    """Which step of a mail transaction a reply answers: what a refusal is about (the
    sender, the recipient, or the message)."""

    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    MESSAGE = "the message"  # the reply after the final dot


_STAGES = (Stage.MAIL, Stage.RCPT, Stage.DATA)


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str
    stage: Stage | None = None  # set on what :meth:`Session.send` answers

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 300


class Session(asyncio.Protocol):
    """One SMTP session after the greeting, EHLO, STARTTLS and login: mail transactions.

    No write flow control is needed: every transaction waits for its replies before the
    next write, so at most one message is ever buffered.
    """

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        *,
        timeout: float,
        pipelining: bool,
        size: bool = False,
        smtputf8: bool = False,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = cast(asyncio.WriteTransport, transport)
        self.timeout = timeout
        self.pipelining = pipelining
        self.size = size
        self.smtputf8 = smtputf8
        self.transactions = 0
        # The next transaction's MAIL FROM + RCPT TO + DATA, written ahead with the last
        # message: their replies are the next transaction's, and the server may be
        # waiting for that message's content (so no QUIT until it has had it).
        self._ahead: bytes | None = None
        self._buffer = bytearray()
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost: str | None = None
        transport.set_protocol(self)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._parse()
        except ValueError as exc:
            self._lost = f"the server's reply is not SMTP: {exc}"
            self._transport.close()
        self._wake()

    def eof_received(self) -> bool:
        self._lost = self._lost or "the server closed the connection"
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._lost or (
            f"the connection was lost: {exc}" if exc else "the server closed the connection"
        )
        self._wake()

    def _parse(self) -> None:
        buffer = self._buffer
        position = done = 0
        lines: list[str] = []
        while (end := buffer.find(b"\n", position)) != -1:
            line = bytes(buffer[position:end]).rstrip(b"\r")
            position = end + 1
            code, separator = line[:3], line[3:4]
            if not (code.isdigit() and len(code) == 3 and separator in (b"", b" ", b"-")):
                raise ValueError(repr(line[:80]))
            lines.append(line[4:].strip(b" \t").decode("utf-8", "replace"))
            if separator != b"-":
                self._replies.append(Reply(int(code), "\n".join(lines)))
                lines = []
                done = position
        del buffer[:done]
        if len(buffer) > MAX_REPLY:
            raise ValueError(f"a reply of more than {MAX_REPLY} bytes")

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- replies and writes -------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and nothing said out of turn (a server that gives up on an idle session
        says 421 first): a new transaction may start."""
        expected = 3 if self._ahead is not None else 0
        return (
            self._lost is None
            and not self._transport.is_closing()
            and len(self._replies) <= expected
        )

    def ahead_for(self, mail: bytes, rcpt: bytes) -> bool:
        """Whether this transaction's commands were written ahead (with the last message)."""
        return self._ahead == mail + rcpt + b"DATA\r\n"

    async def _reply(self, *, after_data: bool, timeout: float | None = None) -> Reply:
        timeout = self.timeout if timeout is None else timeout
        if not self._replies and self._lost is None:
            waiter = self._waiter = self._loop.create_future()
            timer = self._loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self.close()  # the session's state is unknown now
                raise
            finally:
                timer.cancel()
                self._waiter = None
        if self._replies:
            return self._replies.popleft()
        if self._lost is not None:
            raise Disconnected(self._lost, after_data=after_data)
        raise NoReply(f"no reply within {timeout:g} s", after_data=after_data)

    def _write(self, data: bytes) -> None:
        if self._lost is not None or self._transport.is_closing():
            raise Disconnected(self._lost or "the connection is closed", after_data=False)
        self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    # --- transactions -------------------------------------------------------------------

    def envelope(self, sender: str, recipient: str, size: int) -> tuple[bytes, bytes]:
        """The MAIL FROM and RCPT TO command lines; Unsendable for an address that cannot
        go into one on this session."""
        utf8 = False
        encoded: list[bytes] = []
        for address in (sender, recipient):
            if _CONTROL.search(address):
                raise Unsendable(f"the address {address!r} contains control characters")
            address = ascii_address(address)  # a Korean domain as IDNA: any server takes it
            if not address.isascii():  # letters before the @ that only SMTPUTF8 carries
                if not self.smtputf8:
                    raise Unsendable(
                        f"the address {address} has non-ASCII letters before the @ and the "
                        "SMTP server does not offer SMTPUTF8 (RFC 6531); send through one "
                        "that does, or ask for another address"
                    )
                utf8 = True
            encoded.append(address.encode("utf-8"))
        parameters = (b" SIZE=%d" % size if self.size else b"") + (b" SMTPUTF8" if utf8 else b"")
        return (
            b"MAIL FROM:<" + encoded[0] + b">" + parameters + b"\r\n",
            b"RCPT TO:<" + encoded[1] + b">\r\n",
        )

    async def send(
        self, mail: bytes, rcpt: bytes, data: bytes, then: tuple[bytes, bytes] | None = None
    ) -> Reply:
        """One mail transaction (``data`` from :func:`wire_form`): the server's reply to
        the message, or the first reply that was not a success.

        ``then``: the next transaction's MAIL FROM and RCPT TO lines, to write ahead with
        this message (pipelining only); that transaction must be the next ``send``.
        """
        self.transactions += 1
        replies: list[Reply] = []
        if self.pipelining:
            commands = mail + rcpt + b"DATA\r\n"
            if self._ahead is None:
                self._write(commands)
            elif self._ahead != commands:  # pragma: no cover - a caller's mistake
                self.close()
                raise Disconnected("another transaction was written ahead", after_data=False)
            self._ahead = None
            for _ in range(3):
                replies.append(await self._reply(after_data=False))
        else:
            for command in (mail, rcpt, b"DATA\r\n"):
                self._write(command)
                replies.append(await self._reply(after_data=False))
                if _failure(replies) is not None:
                    break
        failed = _failure(replies)
        if failed is not None:
            await self._abandon(failed, replies)
            return failed
        if then is not None and self.pipelining:
            self._ahead = then[0] + then[1] + b"DATA\r\n"
            data += self._ahead
        self._write(data)
        return dataclasses.replace(await self._reply(after_data=True), stage=Stage.MESSAGE)

    async def _abandon(self, failed: Reply, replies: list[Reply]) -> None:
        """End a transaction that failed before the message: RSET, or close the session
        when the server is closing it (421) or wants the message after all (354 after a
        refused recipient: a lone dot could deliver an empty message)."""
        if failed.code == 421 or any(r.code == 354 for r in replies):
            self.close()
            return
        try:
            self._write(b"RSET\r\n")
            if not (await self._reply(after_data=False)).positive:
                self.close()
        except WireError:
            self.close()

    async def quit(self) -> None:
        """QUIT, waiting a little (at most 5 s) for the goodbye; closed in any case. With
        a transaction written ahead, only closed: the server may be reading a message, and
        a connection that closes before the final dot delivers nothing."""
        try:
            if self.usable and self._ahead is None:
                self._write(b"QUIT\r\n")
                await self._reply(after_data=False, timeout=min(5.0, self.timeout))
        except WireError:
            pass  # closing anyway: nothing more is wanted from this session
        finally:
            self.close()


def _failure(replies: list[Reply]) -> Reply | None:
    """The first reply that is not what its command wanted (2xx; 354 for DATA), with the
    stage it answers."""
    for index, reply in enumerate(replies):
        if not (reply.code == 354 if index == 2 else reply.positive):
            return dataclasses.replace(reply, stage=_STAGES[index])
    return None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
