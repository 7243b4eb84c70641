"""feedsvc.delivery.return_path: VERP addresses name their delivery, and only ours do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.config import return_path_problem
from feedsvc.delivery.return_path import ReturnPaths

KEY = b"k" * 32
OLD_KEY = b"o" * 32
PATHS = ReturnPaths("bounces+{token}@news.example.kr", (OLD_KEY, KEY))


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_every_delivery_id_comes_back_from_its_address_in_any_case(delivery_id: int) -> None:
    address = PATHS.address(delivery_id)
    assert address.startswith("bounces+") and address.endswith("@news.example.kr")
    local = address.partition("@")[0]
    assert len(local) <= 64 and set(local[len("bounces+") :]) <= set(
        "abcdefghijklmnopqrstuvwxyz234567"
    )
    assert PATHS.delivery(address) == delivery_id
    assert PATHS.delivery(address.upper()) == delivery_id  # a mail system that shouted
    assert PATHS.delivery(f"<{address}>") == delivery_id


def test_a_million_deliveries_fit_in_a_short_token() -> None:
    assert len(PATHS.token(1_000_000)) == 13


@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=40),
    st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"),
)
def test_an_altered_token_names_no_delivery(delivery_id: int, position: int, new: str) -> None:
    token = PATHS.token(delivery_id)
    position %= len(token)
    changed = token[:position] + new + token[position + 1 :]
    assert PATHS.read_token(changed) == (delivery_id if changed == token else None)


def test_a_token_signed_with_an_older_key_still_counts_and_another_sites_does_not() -> None:
    old = ReturnPaths(PATHS.template, (OLD_KEY,))
    assert PATHS.delivery(old.address(42)) == 42
    stranger = ReturnPaths(PATHS.template, (b"x" * 32,))
    assert PATHS.delivery(stranger.address(42)) is None


@pytest.mark.parametrize(
    "address",
    [
        "news@news.example.kr",  # the From address
        "bounces+@news.example.kr",
        "bounces+!!!!@news.example.kr",
        "bounces+abc@other.example.kr",
        "unsubscribe+aaaaaaaaaaaaa@news.example.kr",
        "",
    ],
)
def test_other_addresses_name_no_delivery(address: str) -> None:
    assert PATHS.delivery(address) is None


def test_find_takes_the_first_address_that_is_ours() -> None:
    ours = PATHS.address(7)
    assert PATHS.find(["minji@example.kr", ours, PATHS.address(8)]) == 7
    assert PATHS.find(["minji@example.kr"]) is None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("bounces+{token}@news.example.kr", None),
        ("{token}@bounce.news.example.kr", None),
        ("bounces@news.example.kr", "one {token}"),
        ("bounces+{token}+{token}@news.example.kr", "one {token}"),
        ("bounces@{token}.example.kr", "one {token}"),
        ("bounces+{token}", "one {token}"),
        ("bounces+{token}@localhost", "an address"),
        ("반송 {token}@news.example.kr", "an address"),
        ("b" * 60 + "{token}@news.example.kr", "too long"),
    ],
)
def test_templates_are_checked_with_a_reason(template: str, problem: str | None) -> None:
    found = return_path_problem(template)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_a_bounce_address_is_not_an_unsubscribe_address() -> None:
    from feedsvc.delivery.return_path import UNSUBSCRIBE_CONTEXT

    unsubscribe = ReturnPaths("bounces+{token}@news.example.kr", (KEY,), UNSUBSCRIBE_CONTEXT)
    assert unsubscribe.delivery(PATHS.address(5)) is None
    assert PATHS.delivery(unsubscribe.address(5)) is None
