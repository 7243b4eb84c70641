"""WCAG 2 contrast of every text colour on the backgrounds it can sit on, in the page and
email CSS (``_page.html.j2``, ``_base.html.j2``), light and dark: at least 4.5:1 (AA for
body text). Pure: the CSS is parsed (tinycss2), nothing is rendered.

A rule that sets ``color`` and a background is checked against its own background; one
that sets only ``color`` against every surface of its scheme (every rule that sets a
background): stricter than needed, and it needs no layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import tinycss2
import tinycss2.color3

from feedsvc.templating import DEFAULT_TEMPLATES

AA = 4.5
Colour = tuple[float, float, float]


@dataclass(frozen=True)
class Rule:
    selector: str
    declarations: dict[str, list[Any]]  # property → its value's tokens


def _style(template: str) -> str:
    text = (DEFAULT_TEMPLATES / template).read_text(encoding="utf-8")
    found = re.search(r"<style>\n(.*?)</style>", text, re.DOTALL)
    assert found is not None, template
    return found.group(1)


def _rules(nodes: list[Any]) -> tuple[list[Rule], list[Rule]]:
    """(rules for every scheme, rules under ``prefers-color-scheme: dark``); other @media
    rules (narrow screens) change no colour that matters here and are read as general."""
    general: list[Rule] = []
    dark: list[Rule] = []
    for node in nodes:
        if node.type == "qualified-rule":
            general.append(_rule(node))
        elif node.type == "at-rule" and node.lower_at_keyword == "media":
            inner = tinycss2.parse_rule_list(node.content, skip_whitespace=True, skip_comments=True)
            target = dark if "dark" in tinycss2.serialize(node.prelude) else general
            target.extend(_rule(n) for n in inner if n.type == "qualified-rule")
    return general, dark


def _rule(node: Any) -> Rule:
    declarations = tinycss2.parse_declaration_list(
        node.content, skip_whitespace=True, skip_comments=True
    )
    found = {
        d.lower_name: [t for t in d.value if t.type not in ("whitespace", "comment")]
        for d in declarations
        if d.type == "declaration"
    }
    return Rule(tinycss2.serialize(node.prelude).strip(), found)


def _scheme(general: list[Rule], dark: list[Rule], is_dark: bool) -> dict[str, dict[str, Any]]:
    """selector → its declarations in one scheme (dark rules override, !important or not)."""
    merged: dict[str, dict[str, Any]] = {}
    for rule in general + (dark if is_dark else []):
        for selector in rule.selector.split(","):
            merged.setdefault(selector.strip(), {}).update(rule.declarations)
    return merged


def _colour(tokens: list[Any], variables: dict[str, list[Any]]) -> Colour | None:
    """The colour ``tokens`` give (var() resolved; a shorthand's first colour), or None."""
    for token in tokens:
        if token.type == "function" and token.lower_name == "var":
            name = tinycss2.serialize(token.arguments).strip()
            return _colour(variables[name], variables)
        parsed = tinycss2.color3.parse_color(token)
        if parsed is not None and parsed != "currentColor" and parsed.alpha == 1:
            return (parsed.red, parsed.green, parsed.blue)
    return None


def _luminance(colour: Colour) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Colour, b: Colour) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def pairs(template: str, is_dark: bool) -> list[tuple[str, float]]:
    """(selector on background, ratio) for every text colour in ``template``'s CSS."""
    nodes = tinycss2.parse_stylesheet(_style(template), skip_whitespace=True, skip_comments=True)
    scheme = _scheme(*_rules(nodes), is_dark)
    variables = {
        name: tokens for name, tokens in scheme.get(":root", {}).items() if name.startswith("--")
    }
    background: dict[str, Colour] = {}
    for selector, declarations in scheme.items():
        for name in ("background-color", "background"):
            if name in declarations:
                found = _colour(declarations[name], variables)
                if found is not None:
                    background[selector] = found
    surfaces = {s: c for s, c in background.items() if "color" not in scheme[s]}
    found_pairs: list[tuple[str, float]] = []
    for selector, declarations in scheme.items():
        if "color" not in declarations:
            continue
        text = _colour(declarations["color"], variables)
        if text is None:
            continue  # transparent, inherit
        behind = {selector: background[selector]} if selector in background else surfaces
        for where, colour in behind.items():
            found_pairs.append((f"{selector} on {where}", contrast(text, colour)))
    return found_pairs


def test_the_ratio_is_wcags() -> None:
    assert contrast((0, 0, 0), (1, 1, 1)) == pytest.approx(21.0)
    white = (1.0, 1.0, 1.0)
    salmon = (0xFF / 255, 0x8A / 255, 0x80 / 255)
    assert contrast(white, salmon) == pytest.approx(2.28, abs=0.01)  # issue 17's button
    grey, footer = (0x6B / 255, 0x72 / 255, 0x80 / 255), (0xF2 / 255, 0xF4 / 255, 0xF7 / 255)
    assert contrast(grey, footer) == pytest.approx(4.39, abs=0.01)  # issue 17's footer


@pytest.mark.parametrize("template", ["_page.html.j2", "_base.html.j2"])
@pytest.mark.parametrize("is_dark", [False, True], ids=["light", "dark"])
def test_every_text_colour_reaches_aa_on_its_backgrounds(template: str, is_dark: bool) -> None:
    found = pairs(template, is_dark)
    assert len(found) >= 10  # the parse found the CSS's colours
    low = [f"{where}: {ratio:.2f}:1" for where, ratio in found if ratio < AA]
    assert low == [], f"{template} ({'dark' if is_dark else 'light'}) below {AA}:1"


def test_buttons_are_checked_against_their_own_background() -> None:
    found = dict(pairs("_page.html.j2", is_dark=True))
    assert found["button.danger on button.danger"] >= AA
    assert found["button on button"] >= AA
    assert dict(pairs("_base.html.j2", is_dark=True))[".button on .button"] >= AA
