"""templating: the one Jinja2 environment, its defaults, a site's overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.errors import ConfigError
from feedsvc.templating import DEFAULT_TEMPLATES, environment, render, template_file
from tests.conftest import REPO
from tests.digest_helpers import digest_settings

DEFAULTS = ("_base.html.j2", "digest.html.j2", "digest.txt.j2", "confirm.html.j2", "confirm.txt.j2")


def test_the_defaults_ship_inside_the_package() -> None:
    """feedsvc/templates is package data, so `pip install .` finds the defaults."""
    assert DEFAULT_TEMPLATES == REPO / "feedsvc" / "templates"
    for name in DEFAULTS:
        assert (DEFAULT_TEMPLATES / name).is_file(), name


def test_top_level_templates_folder_is_the_package_folder() -> None:
    """The top-level templates/ is the same folder (a symlink), not a second copy."""
    top = REPO / "templates"
    assert top.is_dir()
    assert top.resolve() == DEFAULT_TEMPLATES.resolve()


def test_html_is_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    (tmp_path / "page.html.j2").write_text("<p>{{ title }}</p>", encoding="utf-8")
    (tmp_path / "page.txt.j2").write_text("{{ title }}", encoding="utf-8")
    env = environment(digest_settings(tmp_path, templates={"dir": str(tmp_path)}))
    title = '<script>alert("부산")</script> & 소식'
    assert render(env, "page.html.j2", {"title": title}) == (
        "<p>&lt;script&gt;alert(&#34;부산&#34;)&lt;/script&gt; &amp; 소식</p>"
    )
    assert render(env, "page.txt.j2", {"title": title}) == title


def test_a_site_template_overrides_the_default_and_can_extend_the_base(tmp_path: Path) -> None:
    (tmp_path / "confirm.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block content %}<tr><td>우리 사이트 확인 {{ email }}'
        "</td></tr>{% endblock %}",
        encoding="utf-8",
    )
    settings = digest_settings(tmp_path, templates={"dir": "."})
    env = environment(settings)
    assert template_file(env, "confirm.html.j2") == str(tmp_path / "confirm.html.j2")
    assert template_file(env, "confirm.txt.j2") == str(DEFAULT_TEMPLATES / "confirm.txt.j2")
    page = render(
        env,
        "confirm.html.j2",
        {"site": settings.site, "email": "minji@example.kr", "subject": "확인", "preheader": ""},
    )
    assert "우리 사이트 확인 minji@example.kr" in page
    assert "<!DOCTYPE html>" in page  # from the default base


def test_a_missing_template_folder_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"templates\.dir = 'nowhere': the folder .* does not"):
        environment(digest_settings(tmp_path, templates={"dir": "nowhere"}))


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("첫 줄\n{{ site.title }\n", encoding="utf-8")
    env = environment(digest_settings(tmp_path, templates={"dir": str(tmp_path)}))
    with pytest.raises(ConfigError) as caught:
        render(env, "digest.txt.j2", {})
    assert caught.value.source == str(tmp_path / "digest.txt.j2")
    assert caught.value.problems[0].startswith("line 2: ")


def test_an_undefined_name_is_an_error_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("하나\n둘\n{{ sitee.title }}\n", encoding="utf-8")
    env = environment(digest_settings(tmp_path, templates={"dir": str(tmp_path)}))
    with pytest.raises(ConfigError) as caught:
        render(env, "digest.txt.j2", {"site": {}})
    assert caught.value.source == str(tmp_path / "digest.txt.j2")
    assert caught.value.problems[0].startswith("line 3: 'sitee' is undefined")


def test_a_missing_template_says_where_it_looked(tmp_path: Path) -> None:
    env = environment(digest_settings(tmp_path))
    with pytest.raises(ConfigError, match=r"'nope\.j2' not found in .*feedsvc/templates"):
        render(env, "nope.j2", {})
