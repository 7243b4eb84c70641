"""feedsvc.content.urls: the quick path of a URL below the site is urlsplit's path, or
urlsplit's error."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.content.urls import url_path

_PIECES = st.sampled_from(
    [
        *("http://", "HTTPS://", "//", " http://", "\thttp://", "x.kr", "x.kr:8080", "[::1]"),
        *("[", "]", "/", "blog", "/blog/", "?", "#", "q=1", "\t", "\n", "\r", "%20", "한"),
        *("a b", ":", "@", ".."),
    ]
)
_URLS = st.lists(_PIECES, max_size=8).map("".join)


def _path_or_error(function: Callable[[], str]) -> object:
    try:
        return function()
    except ValueError as exc:
        return ("ValueError", str(exc))


@pytest.mark.parametrize(
    ("url", "site", "path"),
    [
        ("https://x.kr/blog/assets/a.png?v=1#top", "https://x.kr/blog/", "/blog/assets/a.png"),
        ("https://x.kr/a%20b.png", "https://x.kr/", "/a%20b.png"),
        ("https://cdn.x.kr/a.png", "https://x.kr/", "/a.png"),
        ("https://x.kr/a\tb.png", "https://x.kr/", "/ab.png"),
    ],
)
def test_url_path_is_the_path_part(url: str, site: str, path: str) -> None:
    assert url_path(url, site) == path == urlsplit(url).path


@settings(max_examples=500, deadline=None)
@given(_URLS, _URLS)
def test_url_path_is_exactly_urlsplits(site: str, tail: str) -> None:
    for url in (site + tail, tail):
        quick = _path_or_error(lambda: url_path(url, site))  # noqa: B023 (called at once)
        assert quick == _path_or_error(lambda: urlsplit(url).path)  # noqa: B023


_URL_CHARS = st.sampled_from(list("aZ09-._~:/?#[]@!$&'()*+,;=% 부산\u00e9\x7f\"<>{}|\\^`"))


@given(st.text(_URL_CHARS, max_size=40))
def test_quote_url_takes_its_shortcut_only_where_quote_agrees(url: str) -> None:
    """URLs made of characters quote() keeps skip it; the result is quote()'s either way."""
    from urllib.parse import quote

    from feedsvc.content.urls import _LONE_PERCENT, quote_url

    slow = quote(_LONE_PERCENT.sub("%25", url), safe=":/?#[]@!$&'()*+,;=%~")
    assert quote_url(url) == slow
