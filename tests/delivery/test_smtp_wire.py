"""The SMTP wire: what DATA carries, and mail transactions against scripted servers on
loopback (asyncio streams: each test says byte by byte what the server answers), where
aiosmtpd cannot show it — commands that arrive together, replies out of turn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from feedsvc.delivery._smtp_wire import wire_form
from feedsvc.delivery.smtp import SmtpConnection, SmtpOptions, Verdict
from feedsvc.storage.delivery_claims import Claimed

MESSAGE = b"Subject: test\r\n\r\n.hidden dot\r\nbody\r\n..two\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def test_leading_dots_are_doubled_and_the_message_ends_with_the_final_dot() -> None:
    data, size = wire_form(MESSAGE, crlf=True)
    assert data == b"Subject: test\r\n\r\n..hidden dot\r\nbody\r\n...two\r\n.\r\n"
    assert size == len(MESSAGE)  # RFC 1870: before dot-stuffing
    first, _ = wire_form(b".starts with a dot\r\n", crlf=True)
    assert first == b"..starts with a dot\r\n.\r\n"


def test_bare_line_ends_become_crlf_unless_the_caller_vouches_for_them() -> None:
    data, size = wire_form(b"a\nb\rc\r\nd")
    assert data == b"a\r\nb\r\nc\r\nd\r\n.\r\n"
    assert size == len(b"a\r\nb\r\nc\r\nd\r\n")
    assert wire_form(b"x\r\n", crlf=True) == (b"x\r\n.\r\n", 3)


def claimed(email: str = "minji@example.kr") -> Claimed:
    return Claimed(1, 1, email, "<1.1.x@example.kr>", MESSAGE, 1)


def options(port: int) -> SmtpOptions:
    return SmtpOptions(
        host="127.0.0.1",
        port=port,
        tls="none",
        username=None,
        password=None,
        timeout=1.0,
        envelope_from="news@example.kr",
        local_hostname="example.kr",
    )


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 test ESMTP\r\n")
    assert (await reader.readline()).startswith(b"EHLO ")
    writer.write(b"250-test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")


def run(handler: Handler, client: Callable[[int], Awaitable[Any]]) -> Any:
    """``client(port)`` against a server that runs ``handler`` for each connection; every
    handler has finished (and its connection is closed) when this returns."""

    async def main() -> Any:
        handlers: list[asyncio.Task[None]] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.create_task(serve(reader, writer)))

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await client(port)
        finally:
            server.close()
            await asyncio.wait_for(asyncio.gather(*handlers), 5)
            await server.wait_closed()

    return asyncio.run(main())


def test_mail_rcpt_and_data_go_in_one_write_when_the_server_offers_pipelining() -> None:
    """The server reads all three commands before it answers any: a client that waited
    for each reply would time out instead."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        seen.extend([await reader.readline() for _ in range(3)])
        writer.write(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        seen.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250-2.0.0 Ok:\r\n250 queued as 7\r\n")
        assert await reader.readline() == b"QUIT\r\n"
        writer.write(b"221 Bye\r\n")
        writer.close()

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        attempt = await connection.send(claimed())
        await connection.quit()
        return attempt

    attempt = run(handler, client)
    assert (attempt.verdict, attempt.code, attempt.reply) == (
        Verdict.SENT,
        250,
        "2.0.0 Ok:\nqueued as 7",
    )
    assert seen[:3] == [
        f"MAIL FROM:<news@example.kr> SIZE={len(MESSAGE)}\r\n".encode(),
        b"RCPT TO:<minji@example.kr>\r\n",
        b"DATA\r\n",
    ]
    assert seen[3] == wire_form(MESSAGE, crlf=True)[0]


def test_a_354_after_a_refused_recipient_closes_the_session_without_a_message() -> None:
    """A lone dot after a 354 could deliver an empty message: the session is dropped."""
    after: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 Ok\r\n550 5.1.1 No such user\r\n354 Go ahead\r\n")
        after.append(await reader.read())  # until the client closes

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        attempt = await connection.send(claimed())
        await asyncio.sleep(0.05)
        return attempt

    attempt = run(handler, client)
    assert (attempt.verdict, attempt.code) == (Verdict.PERMANENT, 550)
    assert after == [b""]


def test_a_refused_recipient_is_reset_and_the_session_goes_on() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 Ok\r\n452 4.2.2 Mailbox full\r\n503 5.5.1 No valid recipients\r\n")
        assert await reader.readline() == b"RSET\r\n"
        writer.write(b"250 Ok\r\n")
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
        await reader.readuntil(b"\r\n.\r\n")
        writer.write(b"250 Ok: queued\r\n")

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        first = await connection.send(claimed("jisu@example.kr"))
        second = await connection.send(claimed())
        connection.close()
        return first, second

    first, second = run(handler, client)
    assert (first.verdict, first.code, first.reply) == (
        Verdict.TEMPORARY,
        452,
        "4.2.2 Mailbox full",
    )
    assert second.verdict is Verdict.SENT


def test_a_reply_out_of_turn_means_a_new_session_for_the_next_message() -> None:
    """A 421 between transactions (an idle server giving up) is never taken for the next
    message's reply: the next message goes over a new connection."""
    sessions: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sessions.append("opened")
        await greet(reader, writer)
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
        await reader.readuntil(b"\r\n.\r\n")
        writer.write(b"250 Ok: queued\r\n421 4.4.2 Idle too long\r\n")
        await reader.read()

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        first = await connection.send(claimed())
        await asyncio.sleep(0.05)
        second = await connection.send(claimed("jisu@example.kr"))
        connection.close()
        return first, second

    first, second = run(handler, client)
    assert first.verdict is Verdict.SENT and second.verdict is Verdict.SENT
    assert sessions == ["opened", "opened"]


def test_an_address_with_a_line_break_is_refused_before_anything_is_written() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        assert await reader.read() == b""  # nothing after EHLO

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        attempt = await connection.send(claimed("minji@example.kr\r\nRCPT TO:<x@y>"))
        connection.close()
        return attempt

    attempt = run(handler, client)
    assert attempt.verdict is Verdict.PERMANENT and "control characters" in attempt.reply


@pytest.mark.parametrize("reply", [b"hello\r\n", b"25\r\n"])
def test_a_reply_that_is_not_smtp_is_a_temporary_failure(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        for _ in range(3):
            await reader.readline()
        writer.write(reply)
        await reader.read()

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        attempt = await connection.send(claimed())
        connection.close()
        return attempt

    attempt = run(handler, client)
    assert attempt.verdict is Verdict.TEMPORARY and "not SMTP" in attempt.reply


def test_the_next_envelope_goes_with_the_final_dot_one_round_trip_a_message() -> None:
    """The server reads the next MAIL, RCPT and DATA before it answers the message: a
    client that waited for that answer first would time out instead."""
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(reader, writer)
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
        bodies.append(await reader.readuntil(b"\r\n.\r\n"))
        ahead = [await reader.readline() for _ in range(3)]
        assert ahead[1] == b"RCPT TO:<jisu@example.kr>\r\n" and ahead[2] == b"DATA\r\n"
        writer.write(b"250 Ok: queued as 1\r\n250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
        bodies.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250 Ok: queued as 2\r\n")
        assert await reader.readline() == b"QUIT\r\n"
        writer.write(b"221 Bye\r\n")

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        second = claimed("jisu@example.kr")
        first = await connection.send(claimed(), then=second)
        after = await connection.send(second)
        await connection.quit()
        return first, after

    first, after = run(handler, client)
    assert (first.reply, after.reply) == ("Ok: queued as 1", "Ok: queued as 2")
    assert len(bodies) == 2


def test_when_the_message_before_fails_the_one_written_ahead_goes_on_a_new_session() -> None:
    """A 421 after the final dot: that message is retried, and the next one, whose
    envelope was already written, gets a new connection; its content never went out."""
    seen: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[bytes] = []
        seen.append(lines)
        await greet(reader, writer)
        for _ in range(3):
            lines.append(await reader.readline())
        writer.write(b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
        lines.append(await reader.readuntil(b"\r\n.\r\n"))
        if len(seen) == 1:
            writer.write(b"421 4.3.2 Shutting down\r\n")
            lines.append(await reader.read())
            return
        writer.write(b"250 Ok: queued\r\n")
        await reader.read()

    async def client(port: int) -> Any:
        connection = SmtpConnection(options(port))
        second = claimed("jisu@example.kr")
        first = await connection.send(claimed(), then=second)
        after = await connection.send(second)
        connection.close()
        return first, after

    first, after = run(handler, client)
    assert (first.verdict, first.code) == (Verdict.TEMPORARY, 421)
    assert after.verdict is Verdict.SENT
    assert seen[0][-1].startswith(b"MAIL FROM:") and b"." not in seen[0][-1].split(b"\r\n")
    assert seen[1][1] == b"RCPT TO:<jisu@example.kr>\r\n"
