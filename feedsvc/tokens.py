"""Signed tokens for links in email: confirm, unsubscribe, preferences (itsdangerous).

A token is ``<subscriber id>.<address check>.<signature>``, e.g.
``42.q1w2e3r4t5y6.…`` (confirm tokens also carry a timestamp). The check is a short hash
of the address, so a token for an erased subscriber never works for whoever later gets
the same id, and no address appears in a URL. Each purpose signs with its own salt: an
unsubscribe token is not a preferences token. Unsubscribe and preferences tokens never
expire (links in old emails keep working); confirm tokens expire after
``security.confirm_max_age``.

The secret comes from ``FEEDSVC_SECRET_KEY``; without it, one is generated on first use
and kept in a file next to the store, readable by its owner only:

- SQLite: beside the database file, named after it (``feedsvc.db`` → ``feedsvc.db.secret``);
- PostgreSQL (or in-memory SQLite): ``.feedsvc/secret`` in the config file's folder.

Changing the secret invalidates every link in every email already sent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from feedsvc.config import Settings
from feedsvc.errors import ConfigError, FeedsvcError

SECRET_ENV = "FEEDSVC_SECRET_KEY"
MIN_SECRET_LENGTH = 16
_SALT_PREFIX = "feedsvc."


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class TokenError(FeedsvcError):
    """A token that is forged, for another purpose, malformed or expired."""

    def __init__(self, purpose: Purpose, reason: str) -> None:
        self.purpose = purpose
        self.reason = reason
        super().__init__(f"invalid {purpose.value} token: {reason}")


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """Whom a valid token is about; check the address with :meth:`Tokens.is_for`."""

    subscriber_id: int
    check: str


@functools.lru_cache(maxsize=64)
def address_check(email: str) -> str:
    """12 URL-safe characters derived from the (normalised) address."""
    digest = hashlib.blake2b(email.encode("utf-8"), digest_size=9, person=b"feedsvc-addr").digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


class Tokens:
    """Makes and reads tokens with one secret; one signer per purpose."""

    def __init__(self, secret: bytes | str) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        common = {"key_derivation": "hmac", "digest_method": hashlib.sha256}
        self._signers: dict[Purpose, Signer] = {
            purpose: Signer(key, salt=_SALT_PREFIX + purpose.value, **common)  # type: ignore[arg-type]
            for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES)
        }
        self._signers[Purpose.CONFIRM] = TimestampSigner(
            key,
            salt=_SALT_PREFIX + Purpose.CONFIRM.value,
            **common,  # type: ignore[arg-type]
        )
        # Signer.sign derives its key on every call (an HMAC) before the HMAC of the value;
        # keyed HMAC objects made once and copied give the same signature at a tenth of the
        # cost (two tokens per message, a hundred thousand messages a run).
        self._keyed = {
            purpose: hmac.new(self._signers[purpose].derive_key(), digestmod=hashlib.sha256)
            for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES)
        }

    def make(self, purpose: Purpose, subscriber_id: int, email: str) -> str:
        """A token for ``purpose`` naming the subscriber ``subscriber_id`` at ``email``."""
        payload = f"{subscriber_id}.{address_check(email)}"
        keyed = self._keyed.get(purpose)
        if keyed is None:  # confirm tokens carry a timestamp: itsdangerous's own path
            return self._signers[purpose].sign(payload).decode("ascii")
        mac = keyed.copy()
        mac.update(payload.encode("ascii"))
        signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")
        return f"{payload}.{signature}"

    def read(
        self, purpose: Purpose, token: str, *, max_age: timedelta | None = None
    ) -> TokenSubject:
        """Whom a token names; TokenError when it is not a valid ``purpose`` token.

        ``max_age`` applies to confirm tokens (the others never expire).
        """
        signer = self._signers[purpose]
        try:
            if isinstance(signer, TimestampSigner):
                seconds = None if max_age is None else int(max_age.total_seconds())
                payload = signer.unsign(token, max_age=seconds)
            else:
                payload = signer.unsign(token)
        except SignatureExpired:
            raise TokenError(purpose, "the link has expired; ask for a new one") from None
        except BadSignature:
            raise TokenError(purpose, "the signature does not match") from None
        ident, _, check = payload.decode("ascii", "replace").partition(".")
        if not ident.isdigit() or not check:
            raise TokenError(purpose, "the token is malformed")
        return TokenSubject(int(ident), check)

    @staticmethod
    def is_for(subject: TokenSubject, email: str) -> bool:
        """True when the token was made for ``email`` (not a later owner of the same id)."""
        return secrets.compare_digest(subject.check, address_check(email))

    def url(self, public_url: str, purpose: Purpose, subscriber_id: int, email: str) -> str:
        """``<server.public_url><purpose>/<token>``, the route of SPEC §7."""
        return f"{public_url}{purpose.value}/{self.make(purpose, subscriber_id, email)}"


def secret_path(settings: Settings) -> Path:
    """Where the generated secret is kept (see the module docstring)."""
    url = settings.storage_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url and url != prefix:
        database = Path(url[len(prefix) :].split("?", 1)[0])
        return database.with_name(database.name + ".secret")
    return settings.base_dir / ".feedsvc" / "secret"


def load_secret(settings: Settings, environ: dict[str, str] | None = None) -> bytes:
    """``$FEEDSVC_SECRET_KEY``, else the kept secret, generated on first use."""
    env = os.environ if environ is None else environ
    given = env.get(SECRET_ENV)
    if given is not None:
        if len(given.strip()) < MIN_SECRET_LENGTH:
            raise ConfigError(
                SECRET_ENV,
                [
                    f"{SECRET_ENV} is {len(given.strip())} characters long; use at least "
                    f"{MIN_SECRET_LENGTH} random characters (e.g. `openssl rand -hex 32`)"
                ],
            )
        return given.strip().encode("utf-8")
    return _kept_secret(secret_path(settings))


def _kept_secret(path: Path) -> bytes:
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        # O_EXCL: two processes starting at once agree on the first secret written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot create the secret file: {exc.strerror}; or set {SECRET_ENV}"]
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value.encode("ascii")


def _read_secret(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        text = ""
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot read the secret file: {exc.strerror}; or set {SECRET_ENV}"]
        ) from None
    if len(text) < MIN_SECRET_LENGTH:
        raise ConfigError(
            str(path),
            [
                "the secret file is empty or too short; delete it to generate a new one "
                f"(every link in sent emails stops working), or set {SECRET_ENV}"
            ],
        )
    return text.encode("ascii")


def tokens_for(settings: Settings) -> Tokens:
    """The Tokens of this site (its secret loaded or generated)."""
    return Tokens(load_secret(settings))
