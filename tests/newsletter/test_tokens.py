"""tokens: signed links per purpose, and where the secret comes from."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedsvc.clock import FixedClock, SystemClock
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


def test_confirm_tokens_expire_by_the_clock_they_are_given() -> None:
    """The timestamp and the age come from our clock, not the system's: a clock set in
    2024 signs a token that is a week old a week later by that clock, whatever the date."""
    clock = FixedClock(datetime(2024, 6, 1, 3, 0, tzinfo=UTC))
    tokens = Tokens(SECRET, clock=clock)
    token = tokens.make(Purpose.CONFIRM, 7, "minji@example.kr")
    week = timedelta(days=7)
    clock.advance(week)
    assert tokens.read(Purpose.CONFIRM, token, max_age=week).subscriber_id == 7
    clock.advance(timedelta(seconds=1))
    with pytest.raises(TokenError, match="the link has expired"):
        tokens.read(Purpose.CONFIRM, token, max_age=week)
    earlier = Tokens(SECRET, clock=FixedClock(datetime(2024, 5, 1, tzinfo=UTC)))
    with pytest.raises(TokenError, match="the link has expired"):  # made in its future
        earlier.read(Purpose.CONFIRM, token, max_age=week)
    # By the system's clock (TOKENS has no clock of its own), 2024 is long past.
    with pytest.raises(TokenError, match="the link has expired"):
        TOKENS.read(Purpose.CONFIRM, token, max_age=week)


def test_feedsvc_now_is_read_once_when_the_system_clock_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDSVC_NOW", "2024-06-01T12:00:00+09:00")
    pinned = SystemClock()
    monkeypatch.setenv("FEEDSVC_NOW", "2030-01-01T00:00:00Z")
    assert pinned.now() == datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    assert SystemClock().now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert SystemClock({}).now() > datetime(2024, 6, 2, tzinfo=UTC)  # not pinned: the system's


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
