"""A real IMAP and POP3 server for the tests: Dovecot (Debian's dovecot-imapd and
dovecot-pop3d), started on free loopback ports with its own configuration in a temporary
folder, one mailbox user, Maildir storage, no TLS.

Why Dovecot: it is the IMAP/POP3 server most mail hosts run, it serves both protocols
from one mailbox (so the same messages are read over IMAP and POP3), and Debian ships it.
It needs root to start (it drops to its own users, ``dovecot`` and ``dovenull``, which
the package creates); `.ci/run` installs it. Without it the mailbox tests skip, saying why.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bounces@news.example.kr"
PASSWORD = "반송함-암호-2026"


@dataclass
class MailServer:
    host: str
    imap_port: int
    pop3_port: int
    username: str
    password: str
    root: Path

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message into the mailbox as the mail server's delivery would (IMAP APPEND)."""
        client = imaplib.IMAP4(self.host, self.imap_port)
        try:
            client.authenticate("PLAIN", lambda _: f"\0{self.username}\0{self.password}".encode())
            status, data = client.append(f'"{folder}"', None, None, raw)
            assert status == "OK", data
        finally:
            client.logout()

    def count(self, folder: str) -> int:
        client = imaplib.IMAP4(self.host, self.imap_port)
        try:
            client.authenticate("PLAIN", lambda _: f"\0{self.username}\0{self.password}".encode())
            status, data = client.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if status == "OK" else 0
        finally:
            client.logout()


def _missing() -> str | None:
    if not os.path.exists(DOVECOT):
        return "the mailbox tests need Dovecot: apt-get install dovecot-imapd dovecot-pop3d"
    if os.geteuid() != 0:
        return "Dovecot starts as root (it drops to its own users); run the tests as root"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"Dovecot's user {user!r} is missing (reinstall dovecot-core)"
    return None


_CONFIG = """\
protocols = imap pop3
base_dir = {root}/run
state_dir = {root}/state
instance_name = feedsvc-test-{imap}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%n
log_path = {root}/dovecot.log
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


def serving() -> Iterator[MailServer]:
    """A running Dovecot for one test (skips when it cannot run here)."""
    missing = _missing()
    if missing is not None:
        pytest.skip(missing)
    root = Path(tempfile.mkdtemp(prefix="feedsvc-dovecot-"))
    root.chmod(0o755)  # Dovecot's own users reach the mail below it
    owner = pwd.getpwnam("dovecot")
    imap, pop3 = free_port(), free_port()
    for folder in ("run", "state", "mail"):
        (root / folder).mkdir()
    os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    (root / "users").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{root}/mail/bounces\n",
        encoding="utf-8",
    )
    (root / "dovecot.conf").write_text(_CONFIG.format(root=root, imap=imap, pop3=pop3))
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(imap, pop3, process, root)
        yield MailServer("127.0.0.1", imap, pop3, USER, PASSWORD, root)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for(imap: int, pop3: int, process: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    for port in (imap, pop3):
        while True:
            if process.poll() is not None:
                log = (root / "dovecot.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Dovecot exited at start:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    if probe.recv(64):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Dovecot did not answer on port {port}")
            time.sleep(0.05)
