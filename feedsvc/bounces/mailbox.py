"""The bounce mailbox (``bounces.mailbox``): IMAP or POP3, read in batches.

IMAP: the messages of ``folder`` are fetched without being marked read (``BODY.PEEK``);
once a batch's signals are committed they are moved to ``processed_folder`` (created when
missing; RFC 6851 MOVE where the server has it, else COPY, ``\\Deleted`` and EXPUNGE), so
the mailbox keeps every report for the site owner to look at.

POP3: messages are retrieved, and marked for deletion only once their batch is
committed; the server deletes them when the session ends (QUIT). A crash before QUIT
deletes nothing.

Either way a crash after a commit leaves messages whose signals are kept: read again,
their keys say ALREADY, and they are moved or deleted then. Nothing is applied twice,
nothing is lost.
"""

from __future__ import annotations

import imaplib
import logging
import poplib
import re
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedsvc.bounces.inbox import BATCH, MAX_MESSAGE_BYTES
from feedsvc.bounces.process import Matcher, signal_of
from feedsvc.bounces.report import InboxReport
from feedsvc.config import Settings
from feedsvc.errors import ConfigError, MailboxError
from feedsvc.models import Message
from feedsvc.storage import Store
from feedsvc.storage.inbound_signals import SignalPolicy, record_signal

log = logging.getLogger("feedsvc.bounces")

ACTOR = "bounce mailbox"
_FETCHED = re.compile(rb"UID (\d+)")


def mailbox_options(settings: Settings, environ: Mapping[str, str]) -> MailboxOptions | None:
    """The mailbox of ``bounces.mailbox``, or None when none is configured; ConfigError
    when its username or password is missing."""
    box = settings.bounces.mailbox
    if box.protocol is None:
        return None
    problems = []
    if not box.username:
        problems.append(
            "bounces.mailbox.username: missing; the mailbox's login name, such as "
            "'bounces@news.example.kr'"
        )
    password = environ.get(box.password_env)
    if not password:
        problems.append(
            f"bounces.mailbox.password_env = {box.password_env!r}: the environment variable "
            f"is not set; export {box.password_env}=… with the mailbox's password"
        )
    if problems:
        raise ConfigError(settings.source, problems)
    assert box.username is not None and password is not None
    return MailboxOptions(
        protocol=box.protocol,
        host=box.host,
        port=box.effective_port,
        tls=box.tls,
        username=box.username,
        password=password,
        folder=box.folder,
        processed_folder=box.processed_folder,
        timeout=box.timeout.total_seconds(),
    )


@dataclass(frozen=True)
class MailboxOptions:
    protocol: str  # imap | pop3
    host: str
    port: int
    tls: str  # implicit | starttls | none
    username: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = "feedsvc-processed"
    timeout: float = 60.0
    cafile: str | None = None  # extra CAs (tests)

    @property
    def where(self) -> str:
        return f"{self.protocol} {self.username}@{self.host}:{self.port}"


Apply = Callable[[Sequence[bytes]], None]


def read_mailbox(
    store: Store,
    options: MailboxOptions,
    matcher: Matcher,
    policy: SignalPolicy,
    now: Callable[[], datetime],
    *,
    batch: int = BATCH,
    after_commit: Callable[[int], None] | None = None,
) -> InboxReport:
    """Read every message waiting in the mailbox; what each did. MailboxError (naming
    the server and what to check) when it cannot be reached, logged in to or read.
    ``after_commit``: called with the batch's size between its commit and the move or
    deletion (tests stop there)."""
    report = InboxReport()

    def apply(messages: Sequence[bytes]) -> None:
        moment = now()
        with store.write() as conn:
            for raw in messages:
                signal, _ = signal_of(conn, raw, matcher)
                report.outcomes[record_signal(conn, signal, moment, policy, actor=ACTOR)] += 1
        report.read += len(messages)
        if after_commit is not None:
            after_commit(len(messages))

    try:
        if options.protocol == "imap":
            _read_imap(options, apply, batch, report)
        else:
            _read_pop3(options, apply, batch, report)
    except (OSError, imaplib.IMAP4.error, poplib.error_proto, ssl.SSLError) as exc:
        raise MailboxError(options.where, _reason(exc)) from None
    if report.read:
        shown = ", ".join(f"{n} {o.value}" for o, n in sorted(report.outcomes.items()))
        log.info("bounce mailbox %s: %d message(s) read (%s)", options.where, report.read, shown)
    return report


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text) or type(exc).__name__


def _context(options: MailboxOptions) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if options.cafile:
        context.load_verify_locations(options.cafile)
    return context


# --- IMAP -----------------------------------------------------------------------------------


@contextmanager
def _imap(options: MailboxOptions) -> Iterator[imaplib.IMAP4]:
    if options.tls == "implicit":
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            options.host, options.port, ssl_context=_context(options), timeout=options.timeout
        )
    else:
        client = imaplib.IMAP4(options.host, options.port, timeout=options.timeout)
        if options.tls == "starttls":
            client.starttls(_context(options))
    try:
        if "AUTH=PLAIN" in client.capabilities:  # UTF-8 passwords, which LOGIN cannot carry
            plain = f"\0{options.username}\0{options.password}".encode()
            client.authenticate("PLAIN", lambda _: plain)
        else:
            client.login(options.username, options.password)
        yield client
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _check(result: tuple[str, Sequence[Any]], what: str) -> list[Any]:
    status, data = result
    if status != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {said or status}")
    return list(data)


def _read_imap(options: MailboxOptions, apply: Apply, batch: int, report: InboxReport) -> None:
    with _imap(options) as client:
        _check(client.select(_quoted(options.folder)), f"cannot open the folder {options.folder!r}")
        found = _check(client.uid("SEARCH", "UNDELETED"), "cannot list the messages")
        listed = found[0] if found and isinstance(found[0], bytes) else b""
        uids = listed.split()
        if uids:
            _ensure_folder(client, options.processed_folder)
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            messages, skipped = _fetch(client, chunk, report)
            if messages:
                apply([raw for _, raw in messages])
            done = [uid for uid, _ in messages] + skipped
            if done:
                _move(client, done, options.processed_folder)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
    status, _ = client.create(_quoted(folder))
    if status != "OK":  # it exists (the usual answer), or cannot be made: MOVE will say
        log.debug("bounce mailbox: CREATE %s answered %s", folder, status)


def _fetch(
    client: imaplib.IMAP4, uids: Sequence[bytes], report: InboxReport
) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """(uid, bytes) of each message of ``uids``; the uids of those too large to read."""
    sizes = _check(client.uid("FETCH", b",".join(uids).decode(), "(RFC822.SIZE)"), "FETCH")
    wanted: list[bytes] = []
    skipped: list[bytes] = []
    for item in sizes:
        if not isinstance(item, bytes):
            continue
        uid = _FETCHED.search(item)
        size = re.search(rb"RFC822\.SIZE (\d+)", item)
        if uid is None or size is None:
            continue
        if int(size.group(1)) > MAX_MESSAGE_BYTES:
            report.problems.append(
                Message.of(
                    "bounces.imap_too_big",
                    "message UID %(uid)s: larger than %(mb)s MB, not a bounce; moved aside unread",
                    uid=uid.group(1).decode(),
                    mb=MAX_MESSAGE_BYTES // 2**20,
                )
            )
            skipped.append(uid.group(1))
        else:
            wanted.append(uid.group(1))
    if not wanted:
        return [], skipped
    data = _check(client.uid("FETCH", b",".join(wanted).decode(), "(BODY.PEEK[])"), "FETCH")
    messages: list[tuple[bytes, bytes]] = []
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            uid = _FETCHED.search(item[0])
            if uid is not None:
                messages.append((uid.group(1), item[1]))
    return messages, skipped


def _move(client: imaplib.IMAP4, uids: Sequence[bytes], folder: str) -> None:
    numbers = b",".join(uids).decode()
    if "MOVE" in client.capabilities:
        _check(client.uid("MOVE", numbers, _quoted(folder)), f"cannot move messages to {folder!r}")
        return
    _check(client.uid("COPY", numbers, _quoted(folder)), f"cannot copy messages to {folder!r}")
    _check(client.uid("STORE", numbers, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
    _check(client.expunge(), "EXPUNGE")


# --- POP3 -----------------------------------------------------------------------------------


def _read_pop3(options: MailboxOptions, apply: Apply, batch: int, report: InboxReport) -> None:
    if options.tls == "implicit":
        client: poplib.POP3 = poplib.POP3_SSL(
            options.host, options.port, context=_context(options), timeout=options.timeout
        )
    else:
        client = poplib.POP3(options.host, options.port, timeout=options.timeout)
        if options.tls == "starttls":
            client.stls(_context(options))
    try:
        client.user(options.username)
        client.pass_(options.password)
        _, listing, _ = client.list()
        numbers = [(int(n), int(size)) for n, size in (line.split()[:2] for line in listing)]
        for start in range(0, len(numbers), batch):
            messages: list[bytes] = []
            done: list[int] = []
            for number, size in numbers[start : start + batch]:
                done.append(number)
                if size > MAX_MESSAGE_BYTES:
                    done.pop()  # POP3 has nowhere to put it aside: it stays
                    report.problems.append(
                        Message.of(
                            "bounces.pop3_too_big",
                            "message %(number)s: larger than %(mb)s MB, not a bounce; left in "
                            "the mailbox unread (delete it there)",
                            number=number,
                            mb=MAX_MESSAGE_BYTES // 2**20,
                        )
                    )
                    continue
                _, lines, _ = client.retr(number)
                messages.append(b"\r\n".join(lines) + b"\r\n")
            if messages:
                apply(messages)
            for number in done:
                client.dele(number)  # takes effect at QUIT, after the commit above
        client.quit()
    except BaseException:
        client.close()  # no QUIT: the server keeps every message
        raise
