"""tokens: signed links per purpose, and where the secret comes from."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from feedsvc.errors import ConfigError, TokenError
from feedsvc.newsletter.tokens import SECRET_ENV, Purpose, Tokens, load_secret, secret_path
from tests.digest_helpers import SECRET, digest_settings

TOKENS = Tokens(SECRET)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_names_its_subscriber(purpose: Purpose) -> None:
    token = TOKENS.make(purpose, 42, "minji@example.kr")
    subject = TOKENS.read(purpose, token)
    assert subject.subscriber_id == 42
    assert Tokens.is_for(subject, "minji@example.kr")
    assert not Tokens.is_for(subject, "jisu@example.kr")


def test_tokens_are_url_safe_and_carry_no_address() -> None:
    token = TOKENS.make(Purpose.UNSUBSCRIBE, 42, "minji@example.kr")
    assert token.startswith("42.")
    assert "minji" not in token and "@" not in token
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize(
    ("made_for", "read_as"),
    [
        (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE),
        (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES),
        (Purpose.UNSUBSCRIBE, Purpose.CONFIRM),
        (Purpose.CONFIRM, Purpose.UNSUBSCRIBE),
    ],
)
def test_a_token_for_another_purpose_is_refused(made_for: Purpose, read_as: Purpose) -> None:
    token = TOKENS.make(made_for, 42, "minji@example.kr")
    with pytest.raises(TokenError, match=f"invalid {read_as.value} token"):
        TOKENS.read(read_as, token)


def test_a_forged_or_edited_token_is_refused() -> None:
    token = TOKENS.make(Purpose.UNSUBSCRIBE, 42, "minji@example.kr")
    other_secret = Tokens("다른-비밀-키-fedcba9876543210").make(Purpose.UNSUBSCRIBE, 42, "x@y.kr")
    edited = "43" + token[2:]
    for bad in (other_secret, edited, "garbage", "", token + "x"):
        with pytest.raises(TokenError, match="the signature does not match"):
            TOKENS.read(Purpose.UNSUBSCRIBE, bad)


def test_unsubscribe_tokens_never_expire() -> None:
    token = TOKENS.make(Purpose.UNSUBSCRIBE, 7, "minji@example.kr")
    assert TOKENS.read(Purpose.UNSUBSCRIBE, token, max_age=timedelta(seconds=0)).subscriber_id == 7


def test_confirm_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 8 * 86400)
    old = TOKENS.make(Purpose.CONFIRM, 7, "minji@example.kr")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    fresh = TOKENS.make(Purpose.CONFIRM, 7, "minji@example.kr")
    week = timedelta(days=7)
    assert TOKENS.read(Purpose.CONFIRM, fresh, max_age=week).subscriber_id == 7
    with pytest.raises(TokenError, match="the link has expired"):
        TOKENS.read(Purpose.CONFIRM, old, max_age=week)


def test_links_use_the_public_url_and_the_route_per_purpose() -> None:
    url = TOKENS.url("https://news.example.kr/", Purpose.PREFERENCES, 5, "minji@example.kr")
    assert url.startswith("https://news.example.kr/preferences/5.")


# --- the secret ------------------------------------------------------------------------------


def test_the_environment_secret_wins(tmp_path: Path) -> None:
    settings = digest_settings(tmp_path)
    assert load_secret(settings, {SECRET_ENV: "  " + SECRET + " "}) == SECRET.encode()
    assert not secret_path(settings).exists()


def test_a_short_environment_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"FEEDSVC_SECRET_KEY is 5 characters long"):
        load_secret(digest_settings(tmp_path), {SECRET_ENV: "short"})


def test_a_generated_secret_is_kept_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = digest_settings(tmp_path, storage={"url": "sqlite:///state/feedsvc.db"})
    first = load_secret(settings, {})
    path = tmp_path / "state" / "feedsvc.db.secret"
    assert secret_path(settings) == path
    assert path.read_text(encoding="ascii").strip() == first.decode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(settings, {}) == first
    assert len(first) == 64


def test_a_damaged_secret_file_names_the_file(tmp_path: Path) -> None:
    settings = digest_settings(tmp_path, storage={"url": "sqlite:///feedsvc.db"})
    (tmp_path / "feedsvc.db.secret").write_text("short\n", encoding="ascii")
    with pytest.raises(ConfigError, match=r"(?s)feedsvc\.db\.secret:1.*too short"):
        load_secret(settings, {})
