"""How deep and how big a post's HTML is, found in one linear pass before anything
heavier reads it (pure: a string in, a verdict out).

nh3 (html5ever) takes time quadratic in nesting depth, and css-inline overflows its
stack on some ten thousand nested elements, which kills the whole process (SIGSEGV: no
exception to catch). So the HTML of a post is measured first, with libxml2's HTML parser
driving a counting target (C speed, HTML's implied end tags applied, no tree built), and
refused when it nests deeper than :data:`MAX_DEPTH` or holds more than
:data:`MAX_ELEMENTS` elements. Real posts nest fewer than 50 deep; libxml2 itself keeps
no more than 256 levels of a tree, so deeper markup could never be published intact.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from lxml import etree

from feedsvc.models import Message

MAX_DEPTH = 256
MAX_ELEMENTS = 100_000


@dataclass(frozen=True, slots=True)
class Excess:
    """What is over the bounds: a sentence for the author, and the element it starts at
    (1-based, counting start tags as libxml2 sees them)."""

    reason: Message
    element: int


# Control flow within this module (stops the parse once a bound is passed), not an error.
class _TooMuch(Exception):
    pass


class _Counter:
    """An lxml parser target that counts open elements and stops at the first excess."""

    def __init__(self, max_depth: int, max_elements: int) -> None:
        self.depth = 0
        self.elements = 0
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.excess: Excess | None = None

    def start(self, tag: str | bytes, attrib: dict[Any, Any]) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > self.max_depth:
            too_deep = Message.of(
                "content.html_too_deep",
                "the HTML nests deeper than %(depth)s elements (unclosed tags?); close your tags",
                depth=self.max_depth,
            )
            self.excess = Excess(too_deep, self.elements)
        elif self.elements > self.max_elements:
            too_big = Message.of(
                "content.html_too_big",
                "the HTML has more than %(count)s elements; split the post",
                count=f"{self.max_elements:,}",
            )
            self.excess = Excess(too_big, self.elements)
        if self.excess is not None:
            raise _TooMuch

    def end(self, tag: str | bytes) -> None:
        self.depth -= 1

    def data(self, data: str | bytes) -> None:
        pass

    def comment(self, text: str | bytes) -> None:
        pass

    def close(self) -> None:
        pass


def measure(
    html: str, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS
) -> Excess | None:
    """None when ``html`` stays within the bounds, else what is over them."""
    if html.count("<") <= max_depth:  # too few tags to break either bound: no parse
        return None
    counter = _Counter(max_depth, max_elements)
    parser = etree.HTMLParser(target=counter, no_network=True, remove_comments=True)
    try:
        parser.feed(html)
        parser.close()
    except _TooMuch:
        pass
    except etree.Error:
        # lxml re-raises a target's exception wrapped when it surfaces late; the counter
        # has recorded the excess either way. Any other parse failure leaves it None.
        pass
    return counter.excess


def line_of_element(html: str, element: int) -> int | None:
    """The 1-based line of ``html`` where its ``element``-th start tag is (None if not
    found; libxml2 keeps at most 256 levels, so the first deeper one stands for them)."""
    seen = 0
    line: int | None = None
    try:
        for _, found in etree.iterparse(
            io.BytesIO(html.encode("utf-8", "replace")),
            events=("start",),
            html=True,
            no_network=True,
            remove_comments=True,
        ):
            seen += 1
            line = found.sourceline
            if seen >= element:
                break
    except etree.Error:
        pass
    return line
