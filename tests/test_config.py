"""config.yaml → settings: defaults, validation messages naming the dotted key, env overrides."""

from __future__ import annotations

import ipaddress
import pickle
from datetime import time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.config import (
    DigestSchedule,
    MarkupOptions,
    PostRenderOptions,
    load_settings,
    settings_from_mapping,
)
from feedsvc.errors import ConfigError
from tests.conftest import REPO


def test_embedded_defaults_work_without_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEEDSVC_CONFIG", raising=False)
    settings = load_settings()
    assert settings.source == "embedded defaults"
    assert settings.content_dir == tmp_path / "content"
    assert settings.storage_url == f"sqlite:///{tmp_path / 'feedsvc.db'}"
    assert settings.delivery.backend == "outbox"
    assert settings.server.host == "127.0.0.1"
    assert settings.feeds.limit == 20


def test_repository_sample_config_is_valid() -> None:
    settings = load_settings(REPO / "config.yaml")
    assert settings.site.language == "ko"
    assert settings.site.timezone == "Asia/Seoul"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "site" / "config.yaml"
    config.parent.mkdir()
    config.write_text("content: {dir: 글}\nfeeds: {output_dir: out}\n", encoding="utf-8")
    settings = load_settings(config)
    assert settings.content_dir == config.parent / "글"
    assert settings.output_dir == config.parent / "out"
    assert settings.storage_url == f"sqlite:///{config.parent / 'feedsvc.db'}"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "other.yaml"
    config.write_text("site: {title: 환경 변수}\n", encoding="utf-8")
    monkeypatch.setenv("FEEDSVC_CONFIG", str(config))
    assert load_settings().site.title == "환경 변수"


def test_named_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_unknown_key_is_an_error_naming_the_dotted_key() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"feeds": {"limt": 5}})
    assert "feeds.limt: unknown key" in str(caught.value)


def test_invalid_value_names_key_value_and_expectation() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"site": {"timezone": "Seoul/Busan"}, "feeds": {"limit": -1}})
    message = str(caught.value)
    assert "site.timezone = 'Seoul/Busan': expected an IANA time zone name" in message
    assert "feeds.limit = -1: Input should be greater than 0" in message


def test_durations_accept_units() -> None:
    settings = settings_from_mapping(
        {"digest": {"max_lateness": "90m"}, "delivery": {"max_age": "2d", "shutdown_grace": 5}}
    )
    assert settings.digest.max_lateness == timedelta(minutes=90)
    assert settings.delivery.max_age == timedelta(days=2)
    assert settings.delivery.shutdown_grace == timedelta(seconds=5)


def test_bad_duration_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"delivery.max_age = 'soon': expected a duration"):
        settings_from_mapping({"delivery": {"max_age": "soon"}})


def test_digest_from_key_is_spelled_from() -> None:
    settings = settings_from_mapping({"digest": {"from": "부산 소식 <news@example.kr>"}})
    assert settings.digest.from_ == "부산 소식 <news@example.kr>"


def test_site_url_gets_a_trailing_slash() -> None:
    assert settings_from_mapping({"site": {"url": "https://x.kr/blog"}}).site.url == (
        "https://x.kr/blog/"
    )


def test_relative_site_url_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"site\.url = '/blog': expected an absolute"):
        settings_from_mapping({"site": {"url": "/blog"}})


def test_permalink_must_contain_slug() -> None:
    with pytest.raises(ConfigError, match=r"content\.permalink"):
        settings_from_mapping({"content": {"permalink": "/{year}/{nope}/"}})


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("site:\n  title: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 3: not valid YAML"):
        load_settings(config)


def test_config_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(config)


def test_storage_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_STORAGE_URL", "postgresql://postgres@127.0.0.1/test")
    assert settings_from_mapping({}).storage_url == "postgresql://postgres@127.0.0.1/test"


def test_settings_are_frozen() -> None:
    settings = settings_from_mapping({})
    with pytest.raises(ValueError):
        settings.site.title = "x"


def test_websub_hub_must_be_an_absolute_url() -> None:
    with pytest.raises(ConfigError, match=r"feeds\.websub_hub = 'hub': expected the hub's"):
        settings_from_mapping({"feeds": {"websub_hub": "hub"}})


def test_slices_are_made_once_and_hold_the_keys_they_come_from() -> None:
    settings = settings_from_mapping(
        {
            "site": {"url": "https://x.kr/blog", "title": "블로그", "author": {"name": "편집부"}},
            "content": {"excerpt_separator": "<!-- 더보기 -->"},
            "feeds": {"limit": 5, "formats": ["json"], "per_tag": True},
            "digest": {"send_time": "07:30", "weekday": "fri", "max_lateness": "3h"},
        }
    )
    for name in ("parse_options", "markup_options", "render_options", "feed_options"):
        assert getattr(settings, name) is getattr(settings, name), name
    assert settings.markup_options == MarkupOptions("https://x.kr/blog/", "<!-- 더보기 -->")
    assert settings.render_options == PostRenderOptions(
        settings.parse_options, settings.markup_options
    )
    feeds = settings.feed_options
    assert (feeds.site_url, feeds.title, feeds.author_name, feeds.author_email) == (
        "https://x.kr/blog/",
        "블로그",
        "편집부",
        None,
    )
    assert (feeds.limit, feeds.formats, feeds.per_tag) == (5, ("json",), True)
    assert settings.digest_schedule == DigestSchedule(time(7, 30), 4, "UTC", timedelta(hours=3))


def test_slices_travel_to_worker_processes_small() -> None:
    settings = settings_from_mapping({})
    options = pickle.loads(pickle.dumps(settings.render_options))
    assert options == settings.render_options
    assert len(pickle.dumps(options)) < len(pickle.dumps(settings)) // 4


def test_a_copy_with_other_values_makes_its_own_slices() -> None:
    settings = settings_from_mapping({"site": {"url": "https://a.example/"}})
    assert settings.feed_options.site_url == "https://a.example/"
    site = settings.site.model_copy(update={"url": "https://b.example/"})
    copied = settings.model_copy(update={"site": site})
    assert copied.feed_options.site_url == copied.markup_options.site_url == "https://b.example/"
    assert copied.parse_options.site_url == "https://b.example/"
    assert settings.feed_options.site_url == "https://a.example/"


# --- the served address (issue 17, items 1 and 6) -----------------------------------------


def test_unset_urls_follow_the_served_address() -> None:
    settings = settings_from_mapping({"server": {"port": 9000}})
    assert settings.server.public_url == settings.site.url == "http://127.0.0.1:9000/"
    assert settings.derived == {"server.public_url", "site.url"}
    moved = settings.served_at("127.0.0.1", 8765)
    assert moved.server.public_url == moved.site.url == "http://127.0.0.1:8765/"
    assert moved.server.port == 8765 and moved.feed_options.site_url == "http://127.0.0.1:8765/"
    assert moved.public_url_is_local and moved.serves_site


def test_set_urls_stay_where_they_are_whatever_is_served() -> None:
    settings = settings_from_mapping(
        {"site": {"url": "https://blog.example.kr/"}, "server": {"public_url": "https://news.kr"}}
    )
    moved = settings.served_at("0.0.0.0", 8765)
    assert moved.site.url == "https://blog.example.kr/"
    assert moved.server.public_url == "https://news.kr/"
    assert not moved.public_url_is_local and not moved.serves_site


def test_a_public_url_alone_is_the_site_too() -> None:
    settings = settings_from_mapping({"server": {"public_url": "https://news.example.kr/"}})
    assert settings.site.url == "https://news.example.kr/" and settings.serves_site
    assert settings.served_at("127.0.0.1", 8765).site.url == "https://news.example.kr/"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8765/"),
        ("::", "http://[::1]:8765/"),
        ("::1", "http://[::1]:8765/"),
        ("뉴스.example.kr", "http://뉴스.example.kr:8765/"),
    ],
)
def test_the_served_address_of_a_host(host: str, url: str) -> None:
    assert settings_from_mapping({}).served_at(host, 8765).server.public_url == url


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080/", True),
        ("http://192.168.0.10:8080/", False),
        ("https://news.example.kr/", False),
    ],
)
def test_loopback_public_urls_are_noticed(url: str, local: bool) -> None:
    assert settings_from_mapping({"server": {"public_url": url}}).public_url_is_local is local


def test_the_daemon_is_the_site_when_the_origins_match() -> None:
    same = {"site": {"url": "https://x.kr:443/blog/"}, "server": {"public_url": "https://x.kr/"}}
    assert settings_from_mapping(same).serves_site
    other = {"site": {"url": "https://x.kr/"}, "server": {"public_url": "https://x.kr:8443/"}}
    assert not settings_from_mapping(other).serves_site


@given(
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    st.integers(min_value=1, max_value=65535),
)
def test_the_served_address_is_a_url_naming_that_host_and_port(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    url = settings_from_mapping({}).served_at(str(address), port).server.public_url
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.port == port and parts.path == "/"
    shown = ipaddress.ip_address(parts.hostname or "")
    assert shown == address or (address.is_unspecified and shown.is_loopback)
