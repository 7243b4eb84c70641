"""The ``smtp`` backend: one connection, reused, and what each reply means.

``delivery.smtp``: ``host``, ``port``, ``tls`` (``starttls``: upgrade or stop — never a
silent fall back to plain text; ``implicit``: TLS from the first byte; ``none``), server
certificates always checked against the system's CAs, ``username`` with the password from
the environment variable ``password_env`` names, and ``timeout`` for connecting and for
every command (including the wait for the reply after the final dot).

aiosmtplib opens each connection (TLS, login); mail transactions then run on a
:class:`feedsvc.delivery._smtp_wire.Session`, pipelined when the server offers PIPELINING.

Replies: 250 after the final dot → sent (the reply is kept). 4xx, timeouts and dropped
connections → temporary (a timeout after the dot is "unknown": retried with the same
bytes and Message-ID). An authentication or TLS failure is not the message's fault:
:class:`SendingPaused` stops all sending and says what to fix. So are the 5xx replies
that refuse *this sender* rather than one message (:func:`refuses_sender`): every
message would get them. Other 5xx replies → permanent; only those that refuse the
recipient's address (:func:`refuses_address`) count towards the subscriber's bounces:

    stage / reply                               outcome
    MAIL FROM 5xx; any 5.7.x; 530; 503          sending paused, rows stay pending
    RCPT TO 5xx (not 5.7.x)                     failed, counts as a bounce
    DATA or after the dot, 5.1.x / 5.2.x        failed, counts as a bounce (the mailbox)
    DATA or after the dot, other 5xx            failed, not a bounce (the message, e.g.
                                                554 5.6.0 or 552 5.3.4: fix and retry)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
from dataclasses import dataclass
from enum import Enum

import aiosmtplib

from feedsvc.config import Settings
from feedsvc.delivery._smtp_wire import Reply, Session, Stage, crlf_size, wire_form
from feedsvc.delivery.sender import Sender
from feedsvc.errors import (
    ConfigError,
    DeliveryError,
    Disconnected,
    NoReply,
    SendingPaused,
    Unsendable,
)
from feedsvc.storage.delivery_claims import Claimed

# Postfix reuses a connection without limit by default; many providers cut it off after a
# few hundred messages, so start afresh before they do (delivery.messages_per_connection).
MESSAGES_PER_CONNECTION = 500


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    host: str
    port: int
    tls: str  # starttls | implicit | none
    username: str | None
    password: str | None
    timeout: float
    envelope_from: str
    local_hostname: str
    max_per_connection: int = MESSAGES_PER_CONNECTION
    password_env: str = "FEEDSVC_SMTP_PASSWORD"
    cert_bundle: str | None = None  # extra CAs (tests); the system's are used besides

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpOptions:
        """Options from ``delivery.smtp``; ConfigError when the password is missing."""
        smtp = settings.delivery.smtp
        password = None
        if smtp.username:
            password = os.environ.get(smtp.password_env)
            if not password:
                raise ConfigError(
                    settings.source,
                    [
                        f"delivery.smtp.password_env = {smtp.password_env!r}: the environment "
                        f"variable is not set; export {smtp.password_env}=… with the password of "
                        f"{smtp.username!r} on {smtp.host}:{smtp.port}"
                    ],
                )
        sender = Sender.from_settings(settings)
        return cls(
            host=smtp.host,
            port=smtp.port,
            tls=smtp.tls,
            username=smtp.username,
            password=password,
            timeout=smtp.timeout.total_seconds(),
            envelope_from=sender.from_address,
            local_hostname=sender.from_address.rpartition("@")[2] or "localhost",
            max_per_connection=settings.delivery.messages_per_connection,
            password_env=smtp.password_env,
        )


class Verdict(Enum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the server made of one message. ``bounce``: a permanent failure that refused
    the recipient's address (it counts towards ``delivery.bounce_limit``)."""

    verdict: Verdict
    code: int | None
    reply: str
    bounce: bool = False

    @property
    def summary(self) -> str:
        return f"{self.code} {self.reply}" if self.code is not None else self.reply


_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def enhanced_status(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 enhanced status code a reply's text starts with (``5.1.1``), if any."""
    found = _ENHANCED.match(text)
    if found is None:
        return None
    return int(found[1]), int(found[2]), int(found[3])


def refuses_sender(reply: Reply) -> bool:
    """A 5xx that refuses this sender, not one message or recipient: at MAIL FROM, any
    5.7.x (security or policy), 530 (authentication required) and 503 (bad sequence of
    commands). Every message would get it: failing them would bounce the whole list."""
    if not 500 <= reply.code < 600:
        return False
    if reply.code in (503, 530) or reply.stage is Stage.MAIL:
        return True
    status = enhanced_status(reply.text)
    return status is not None and status[1] == 7


def refuses_address(reply: Reply) -> bool:
    """A 5xx (not :func:`refuses_sender`) that refuses the recipient's address: at RCPT
    TO, or at DATA / after the message with a 5.1.x (address) or 5.2.x (mailbox) status."""
    if not 500 <= reply.code < 600 or refuses_sender(reply):
        return False
    if reply.stage is Stage.RCPT:
        return True
    status = enhanced_status(reply.text)
    return status is not None and status[1] in (1, 2)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def _say_hello(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO if the server knows no better) unless this session has had one."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()


class SmtpConnection:
    """One SMTP session, opened on first use, reused for many messages, opened again
    after a 421, a dropped connection, a timeout, or ``max_per_connection`` messages.

    aiosmtplib opens it (TLS, login); the mail transactions run on a
    :class:`~feedsvc.delivery._smtp_wire.Session`, pipelined when the server offers PIPELINING.
    """

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._session: Session | None = None

    async def _open(self) -> Session:
        o = self.options
        client = aiosmtplib.SMTP(
            hostname=o.host,
            port=o.port,
            use_tls=o.tls == "implicit",
            start_tls=False,
            validate_certs=True,
            cert_bundle=o.cert_bundle,
            timeout=o.timeout,
            local_hostname=o.local_hostname,
        )
        try:
            await client.connect()
            # connect() says EHLO only when it negotiates TLS or logs in itself; STARTTLS
            # must be looked for in the server's answer to it.
            await _say_hello(client)
            if o.tls == "starttls":
                if not client.supports_extension("starttls"):
                    client.close()
                    raise SendingPaused(
                        f"the SMTP server {o.where} does not offer STARTTLS, and "
                        "delivery.smtp.tls is starttls: sending is paused rather than sending "
                        "in plain text. Fix the server, or set delivery.smtp.tls to implicit "
                        "(port 465) or, on a trusted network only, none"
                    )
                await client.starttls()
            if o.username:
                await client.login(o.username, o.password or "")
            await _say_hello(client)  # again after STARTTLS (RFC 3207: start afresh)
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise SendingPaused(
                f"the SMTP server {o.where} refused the login of {o.username!r}: "
                f"{exc.code} {exc.message}. Sending is paused; check delivery.smtp.username "
                f"and the password in ${o.password_env}, then run "
                "`feedsvc digest send` again"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            cause = _tls_cause(exc)
            if cause is not None:
                raise SendingPaused(
                    f"TLS with the SMTP server {o.where} failed ({cause}). Sending is paused; "
                    "check delivery.smtp.host (it must match the certificate), port and tls"
                ) from None
            raise
        transport = client.transport
        if transport is None:  # pragma: no cover - connect() returned, so it is there
            raise aiosmtplib.SMTPServerDisconnected("the connection closed while opening")
        return Session(
            transport,
            timeout=o.timeout,
            pipelining=client.supports_extension("pipelining"),
            size=client.supports_extension("size"),
            smtputf8=client.supports_extension("smtputf8"),
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def quit(self) -> None:
        """Say goodbye politely (bounded); close in any case."""
        session, self._session = self._session, None
        if session is not None:
            await session.quit()

    async def send(self, message: Claimed, then: Claimed | None = None) -> Attempt:
        """Hand one message over; raises SendingPaused on an authentication or TLS
        failure or a reply that refuses the sender (:func:`refuses_sender`), otherwise
        reports the verdict (nothing else escapes).

        ``then``: the message the next ``send`` on this connection will carry, if known;
        with PIPELINING its envelope goes out with this message (one round trip saved).
        """
        where = self.options.where
        # Claimed bytes were rendered into the store by feedsvc.delivery.mime: CRLF throughout.
        data, size = wire_form(message.message, crlf=True)
        try:
            session = self._session
            if (
                session is None
                or not session.usable
                or session.transactions >= self.options.max_per_connection
            ):
                await self.quit()
                session = self._session = await self._open()
            sender = message.return_path or self.options.envelope_from
            mail, rcpt = session.envelope(sender, message.email, size)
            ahead = None
            if (
                then is not None
                and session.pipelining
                and session.transactions + 1 < self.options.max_per_connection
            ):
                with contextlib.suppress(Unsendable):  # then it is refused in its own turn
                    ahead = session.envelope(
                        then.return_path or self.options.envelope_from,
                        then.email,
                        crlf_size(then.message),
                    )
            reply = await session.send(mail, rcpt, data, ahead)
        except SendingPaused:
            raise
        except Unsendable as exc:
            return Attempt(Verdict.PERMANENT, None, str(exc))
        except (NoReply, aiosmtplib.SMTPTimeoutError) as exc:
            self.close()
            when = "after the message " if isinstance(exc, NoReply) and exc.after_data else ""
            return Attempt(
                Verdict.TEMPORARY,
                None,
                f"no reply from {where} within {self.options.timeout:g} s {when}(the outcome "
                "is unknown if the message had been sent; it is retried with the same "
                "Message-ID)",
            )
        except (Disconnected, aiosmtplib.SMTPException, OSError) as exc:
            self.close()
            when = " after the message" if isinstance(exc, Disconnected) and exc.after_data else ""
            return Attempt(Verdict.TEMPORARY, None, f"connection to {where} failed{when}: {exc}")
        if reply.code == 250:
            return Attempt(Verdict.SENT, 250, reply.text)
        return self._reply_attempt(reply, message.email)

    def _reply_attempt(self, reply: Reply, recipient: str) -> Attempt:
        code, text = reply.code, reply.text
        if code == 421 or code < 400:
            # 421: the server is closing the session; anything else odd: start afresh.
            self.close()
        if refuses_sender(reply):
            o = self.options
            about = f" for {recipient}" if reply.stage is Stage.RCPT else ""
            raise SendingPaused(
                f"the SMTP server {o.where} refused {reply.stage or 'the transaction'}{about}: "
                f"{code} {_one_line(text)}. This refuses the sender (digest.from = "
                f"{o.envelope_from}), not one subscriber: sending is paused, nothing failed or "
                "bounced. Fix the relay's setup (sender allowed, login, TLS) or "
                "delivery.smtp, then run `feedsvc digest send` again (the daemon tries "
                "again on its next run)"
            )
        if 500 <= code < 600:
            return Attempt(Verdict.PERMANENT, code, text, bounce=refuses_address(reply))
        return Attempt(Verdict.TEMPORARY, code, text)


class SmtpBackend:
    """The ``smtp`` backend for one message at a time (confirmations): ``send`` blocks,
    ``send_async`` is for callers already in an event loop. Bulk sending goes through
    :func:`feedsvc.delivery.dispatch.deliver_pending` with a pool instead."""

    name = "smtp"

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options

    async def send_async(self, message: Claimed) -> Attempt:
        connection = SmtpConnection(self.options)
        try:
            attempt = await connection.send(message)
        finally:
            await connection.quit()
        if attempt.verdict is not Verdict.SENT:
            raise DeliveryError(
                f"the SMTP server {self.options.where} did not take the message to "
                f"{message.email}: {attempt.summary}",
                temporary=attempt.verdict is Verdict.TEMPORARY,
            )
        return attempt

    def send(self, message: Claimed) -> None:
        asyncio.run(self.send_async(message))
