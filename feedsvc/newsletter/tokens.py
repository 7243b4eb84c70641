"""Signed tokens for links in email: confirm, unsubscribe, preferences (itsdangerous).

A token is ``<subscriber id>.<address check>.<signature>``, e.g.
``42.q1w2e3r4t5y6.…`` (confirm tokens also carry a timestamp). The check is a short hash
of the address, so a token for an erased subscriber never works for whoever later gets
the same id, and no address appears in a URL. Each purpose signs with its own salt: an
unsubscribe token is not a preferences token. Unsubscribe and preferences tokens never
expire (links in old emails keep working); confirm tokens expire after
``security.confirm_max_age``.

Links are signed with a list of keys, oldest first: the newest signs, every one verifies,
so that a new key (``feedsvc secret rotate``) leaves the links already mailed working.
The keys come from ``FEEDSVC_SECRET_KEY`` (several separated by commas or white space,
newest last); without it, one is generated on first use and kept with the store:

- PostgreSQL: in the table ``secret_keys``, so every daemon on one database signs and
  verifies alike, whatever its config folder (a secret file an older feedsvc left in
  ``.feedsvc/secret`` becomes the first key when the table is still empty);
- SQLite: in a file beside the database, named after it (``feedsvc.db`` →
  ``feedsvc.db.secret``), one key a line, newest last, readable by its owner only;
- in-memory SQLite: ``.feedsvc/secret`` in the config file's folder, the same way.

Dropping a key (``feedsvc secret rotate --keep N``) invalidates every link signed with it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from feedsvc.clock import Clock, SystemClock
from feedsvc.config import Settings
from feedsvc.errors import ConfigError, TokenError

if TYPE_CHECKING:
    from feedsvc.storage import Store

log = logging.getLogger("feedsvc.tokens")

SECRET_ENV = "FEEDSVC_SECRET_KEY"
MIN_SECRET_LENGTH = 16
# Between the keys in FEEDSVC_SECRET_KEY (and never inside one: `openssl rand -hex 32`).
_KEY_SEPARATORS = re.compile(r"[,\s]+")
_SALT_PREFIX = "feedsvc."


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """Whom a valid token is about; check the address with :meth:`Tokens.is_for`."""

    subscriber_id: int
    check: str


class ClockTimestampSigner(TimestampSigner):
    """itsdangerous's TimestampSigner with its time from our clock, not ``time.time``:
    a pinned (``FEEDSVC_NOW``) or test clock signs and checks ages in its own time."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


@functools.lru_cache(maxsize=64)
def address_check(email: str) -> str:
    """12 URL-safe characters derived from the (normalised) address."""
    digest = hashlib.blake2b(email.encode("utf-8"), digest_size=9, person=b"feedsvc-addr").digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


class Tokens:
    """Makes and reads tokens with a list of keys (oldest first: the last one signs, all
    of them verify); one signer per purpose. Confirm tokens carry a timestamp from
    ``clock`` (the system's when not given)."""

    def __init__(
        self, secret: bytes | str | Sequence[bytes | str], *, clock: Clock | None = None
    ) -> None:
        given = [secret] if isinstance(secret, bytes | str) else list(secret)
        if not given:
            raise ValueError("Tokens needs at least one key")
        key = [k.encode("utf-8") if isinstance(k, str) else k for k in given]
        self.keys: tuple[bytes, ...] = tuple(key)  # oldest first; VERP tokens use them too
        common = {"key_derivation": "hmac", "digest_method": hashlib.sha256}
        self._signers: dict[Purpose, Signer] = {
            purpose: Signer(key, salt=_SALT_PREFIX + purpose.value, **common)  # type: ignore[arg-type]
            for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES)
        }
        self._signers[Purpose.CONFIRM] = ClockTimestampSigner(
            key,
            salt=_SALT_PREFIX + Purpose.CONFIRM.value,
            clock=clock or SystemClock(),
            **common,
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
        """``<server.public_url><purpose>/<token>``, the routes of the README's Web section."""
        return f"{public_url}{purpose.value}/{self.make(purpose, subscriber_id, email)}"


def secret_path(settings: Settings) -> Path:
    """The file that keeps the generated keys of a SQLite store (see the module
    docstring); on PostgreSQL, where an older feedsvc kept its secret."""
    url = settings.storage_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url and url != prefix:
        database = Path(url[len(prefix) :].split("?", 1)[0])
        return database.with_name(database.name + ".secret")
    return settings.base_dir / ".feedsvc" / "secret"


def fingerprint(key: bytes) -> str:
    """12 hex characters that tell keys apart without showing them."""
    return hashlib.sha256(b"feedsvc-key:" + key).hexdigest()[:12]


def load_secrets(
    settings: Settings, environ: dict[str, str] | None = None, *, store: Store | None = None
) -> tuple[bytes, ...]:
    """Every signing key, oldest first (the last one signs): ``$FEEDSVC_SECRET_KEY``, else
    the keys kept with the store, the first generated on first use. ``store``: the opened
    store, when the caller has one (else a PostgreSQL store is opened for the look-up)."""
    env = os.environ if environ is None else environ
    given = env.get(SECRET_ENV)
    if given is not None:
        return parse_secret_keys(given)
    if not _in_database(settings, store):
        return _kept_secrets(secret_path(settings))
    if store is not None:
        return _database_secrets(settings, store)
    from feedsvc.storage import open_store

    opened = open_store(settings.storage_url)
    try:
        return _database_secrets(settings, opened)
    finally:
        opened.close()


def load_secret(
    settings: Settings, environ: dict[str, str] | None = None, *, store: Store | None = None
) -> bytes:
    """The key that signs now (the newest of :func:`load_secrets`)."""
    return load_secrets(settings, environ, store=store)[-1]


def parse_secret_keys(value: str) -> tuple[bytes, ...]:
    """The keys in a ``FEEDSVC_SECRET_KEY`` value, oldest first; ConfigError for a short one."""
    keys = [k for k in _KEY_SEPARATORS.split(value.strip()) if k]
    if not keys:
        keys = [""]
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_SECRET_LENGTH:
            which = SECRET_ENV if len(keys) == 1 else f"key {number} of {len(keys)} in {SECRET_ENV}"
            raise ConfigError(
                SECRET_ENV,
                [
                    f"{which} is {len(key)} characters long; use at least "
                    f"{MIN_SECRET_LENGTH} random characters (e.g. `openssl rand -hex 32`); "
                    "several keys are separated by commas or spaces, newest last"
                ],
            )
    return tuple(k.encode("utf-8") for k in keys)


def _in_database(settings: Settings, store: Store | None) -> bool:
    if store is not None:
        return store.dialect == "postgresql"
    return settings.storage_url.startswith("postgres")


def _kept_secrets(path: Path) -> tuple[bytes, ...]:
    try:
        return _read_secrets(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        # O_EXCL: two processes starting at once agree on the first secret written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secrets(path)
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot create the secret file: {exc.strerror}; or set {SECRET_ENV}"]
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return (value.encode("ascii"),)


def _read_secrets(path: Path) -> tuple[bytes, ...]:
    """The keys of a secret file: one a line, newest last (an older feedsvc wrote one)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError:
        lines = [""]
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot read the secret file: {exc.strerror}; or set {SECRET_ENV}"]
        ) from None
    keys = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    for number, key in keys or [(1, "")]:
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{path}:{number}",
                [
                    "the secret file is empty or a key in it is too short; delete that line "
                    "(links signed with it stop working), or the file to generate a new "
                    f"key (every link in sent emails stops working), or set {SECRET_ENV}"
                ],
            )
    return tuple(key.encode("ascii") for _, key in keys)


def _write_secrets(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the secret file with ``keys`` (one a line, newest last), atomically, 0600."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(b"".join(key + b"\n" for key in keys))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot write the secret file: {exc.strerror}; nothing was changed"]
        ) from None


def _database_secrets(settings: Settings, store: Store) -> tuple[bytes, ...]:
    """The keys in the store's ``secret_keys``; the first one written if there is none."""
    from feedsvc.storage.secret_keys import add_key, stored_keys

    with store.read() as conn:
        rows = stored_keys(conn)
    legacy = secret_path(settings)
    if not rows:
        try:  # an older feedsvc's secret: the links it mailed keep working
            first = _read_secrets(legacy)[-1].decode("ascii")
        except FileNotFoundError:
            first = secrets.token_hex(32)
        with store.write() as conn:
            # Whoever inserts first wins; everyone then reads the winner's key.
            add_key(conn, 1, first, SystemClock().now())
            rows = stored_keys(conn)
    keys = tuple(secret.encode("utf-8") for _, secret, _ in rows)
    if legacy.is_file():
        try:
            old = _read_secrets(legacy)
        except ConfigError:
            old = ()
        if any(key not in keys for key in old):
            log.warning(
                "%s holds a secret that is not among the store's keys: links this instance "
                "mailed before the keys moved to the store no longer work; the store's "
                "keys sign and verify now (delete the file to silence this)",
                legacy,
            )
    return keys


@dataclass(frozen=True, slots=True)
class Rotation:
    """What :func:`rotate_secret` did."""

    where: str  # the secret file, or the store (URL without password)
    added: str  # the new key's fingerprint
    kept: int  # keys that verify now, the new one included
    retired: int  # older keys dropped: links signed with them no longer work


def rotate_secret(
    settings: Settings,
    now: datetime,
    *,
    keep: int | None = None,
    store: Store | None = None,
    environ: dict[str, str] | None = None,
) -> Rotation:
    """Add a new newest key (it signs from now on; the older ones still verify), then keep
    only the ``keep`` newest keys when given. ``store``: the opened store (PostgreSQL)."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_ENV) is not None:
        raise ConfigError(
            SECRET_ENV,
            [
                f"{SECRET_ENV} is set, so the keys are yours to keep: add a new key at its "
                "end (`openssl rand -hex 32`), separated by a comma, keep the old ones "
                "before it while links signed with them should work, and restart feedsvc"
            ],
        )
    if keep is not None and keep < 1:
        raise ValueError("keep at least one key")
    new = secrets.token_hex(32)
    if _in_database(settings, store):
        assert store is not None, "rotating the keys in PostgreSQL needs the opened store"
        return _rotate_in_database(settings, store, new, now, keep)
    path = secret_path(settings)
    keys = (*_kept_secrets(path), new.encode("ascii"))
    kept = keys if keep is None else keys[-keep:]
    _write_secrets(path, kept)
    return Rotation(str(path), fingerprint(kept[-1]), len(kept), len(keys) - len(kept))


def _rotate_in_database(
    settings: Settings, store: Store, new: str, now: datetime, keep: int | None
) -> Rotation:
    from feedsvc.storage.secret_keys import add_key, drop_keys, newest_generation, stored_keys

    _database_secrets(settings, store)  # the first key exists before the second
    with store.write() as conn:
        # Two rotations at once: the second waits for the first's row, then takes the next.
        while not add_key(conn, newest_generation(conn) + 1, new, now):
            pass
        generations = [generation for generation, _, _ in stored_keys(conn)]
        retired = generations[:-keep] if keep is not None else []
        drop_keys(conn, retired)
    where = store.engine.url.render_as_string(hide_password=True)
    return Rotation(
        where, fingerprint(new.encode("ascii")), len(generations) - len(retired), len(retired)
    )


def tokens_for(
    settings: Settings, store: Store | None = None, *, clock: Clock | None = None
) -> Tokens:
    """The Tokens of this site (its keys loaded, or the first one generated)."""
    return Tokens(load_secrets(settings, store=store), clock=clock)
