"""Where a Markdown source's code is, as cmark-gfm parses it (pure: a string in, offsets
out), so that passes over the source (CJK emphasis, math, ``<T>`` text, Liquid) can
leave code alone.

:func:`code_regions` gives the ``[start, end)`` offsets of fenced code blocks (``````` and
``~~~``, fence lines included; an unclosed fence runs to the end of its container),
indented code blocks and code spans (backticks included). :func:`regions` adds the raw
HTML blocks (cmark copies them verbatim: not Markdown), and :func:`split_code` cuts the
text into code and other parts.

It follows cmark-gfm 0.29's block algorithm line by line (block quotes, list items,
lazy continuation lines, tab stops, fences, indented code, HTML blocks of the seven
kinds, setext and ATX headings, GFM tables, link reference definitions) and its inline
precedence for code spans (backslash escapes, autolinks, raw HTML tags, inline link
destinations and bare URLs are read before the backticks inside them). Where it is
unsure it says "code": a pass that skips too much does nothing worse than leave text as
cmark renders it. tests/content/test_markdown_code.py checks it against cmark itself.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["code", "html", "tag", "link"]

_TAB_STOP = 4
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SPACE = " \t\n\v\f\r"

# cmark-gfm's scanners (src/scanners.re), as Python patterns.
_SP = r"[ \t\n\v\f\r]"
_TAG_NAME = r"[A-Za-z][A-Za-z0-9-]*+"
_ATTRIBUTE = (
    rf"(?>{_SP}++[A-Za-z_:][A-Za-z0-9:._-]*+"
    rf"(?>{_SP}*+={_SP}*+(?>[^ \t\r\n\v\f\"'=<>`\x00]++|'[^'\x00]*+'|\"[^\"\x00]*+\"))?+)"
)
# Possessive and atomic: no backtracking, so a '<' without its end costs linear time.
OPEN_TAG = rf"(?P<open>{_TAG_NAME}){_ATTRIBUTE}*+{_SP}*+/?>"
CLOSE_TAG = rf"/(?P<close>{_TAG_NAME}){_SP}*+>"
_COMMENT = r"!---->|!--(?>-?[^\x00>-])(?>-?[^\x00-])*+-->"
_PROCESSING = r"\?(?>[^?>\x00]|\?[^>\x00]|>)*+\?>"
_DECLARATION = rf"![A-Z]++{_SP}++[^>\x00]*+>"
_CDATA = r"!\[CDATA\[(?>[^\]\x00]|\][^\]\x00]|\]\][^>\x00])*+\]\]>"
# What follows a '<' that cmark reads as inline raw HTML (match at the '<').
HTML_TAG = re.compile(
    rf"<(?:{OPEN_TAG}|{CLOSE_TAG}|{_COMMENT}|{_PROCESSING}|{_DECLARATION}|{_CDATA})"
)
AUTOLINK = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\x00-\x20<>]*"
    r"|[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*)>"
)
_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    "details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    "h1|h2|h3|h4|h5|h6|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|"
    "noframes|ol|optgroup|option|p|param|section|source|title|summary|table|tbody|td|"
    "tfoot|th|thead|title|tr|track|ul"
)
_HTML_START = (
    (1, re.compile(r"<(?:script|pre|style)(?:[ \t\n\v\f\r>]|$)", re.IGNORECASE)),
    (2, re.compile(r"<!--")),
    (3, re.compile(r"<\?")),
    (4, re.compile(r"<![A-Z]")),
    (5, re.compile(r"<!\[CDATA\[")),
    (6, re.compile(rf"</?(?:{_BLOCK_TAGS})(?:[ \t\n\v\f\r]|/?>|$)", re.IGNORECASE)),
)
_HTML_START_7 = re.compile(rf"<(?:{OPEN_TAG}|{CLOSE_TAG})[ \t\n\f]*$")
_HTML_END = {
    1: re.compile(r"</(?:script|pre|style)>", re.IGNORECASE),
    2: re.compile(r"-->"),
    3: re.compile(r"\?>"),
    4: re.compile(r">"),
    5: re.compile(r"\]\]>"),
}
_LINE_END = re.compile(r"\r\n?|\n")
# The characters a block other than a paragraph (or a table row) can start with.
_BLOCK_START = frozenset(">#`~<*-_+0123456789")
_ATX = re.compile(r"#{1,6}(?:[ \t]+|$)")
_OPEN_FENCE = re.compile(r"(`{3,})(?=[^`]*$)|(~{3,})")
_CLOSE_FENCE = re.compile(r"(`{3,}|~{3,})[ \t]*$")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_BULLET = re.compile(r"[*+-](?=[ \t]|$)")
_ORDERED = re.compile(r"([0-9]{1,9})[.)](?=[ \t]|$)")
_TABLE_DELIMITER = re.compile(
    r"\|?[ \t\v\f]*:?-+:?[ \t\v\f]*(?:\|[ \t\v\f]*:?-+:?[ \t\v\f]*)*\|?[ \t\v\f]*$"
)
# re2c takes the longest match, so "\\|" inside a cell is a backslash and an escaped pipe.
_TABLE_CELL = re.compile(r"(?:\\\||[^|\r\n])+")
_TABLE_PIPE = re.compile(r"\|[ \t\v\f]*")
_LINK_TITLE = re.compile(
    r"\"(?:\\[!-/:-@\[-`{-~]|[^\"\x00])*\"|'(?:\\[!-/:-@\[-`{-~]|[^'\x00])*'"
    r"|\((?:\\[!-/:-@\[-`{-~]|[^()\x00])*\)"
)
_URL_SCHEME = re.compile(r"(?:https?|ftp)://", re.IGNORECASE)
_WHITESPACE_RUN = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Region:
    """``text[start:end]`` is code (a code block or span), a raw HTML block, an inline raw
    HTML tag or comment ("tag"), or the URL part of a link ("link": an autolink, an
    inline link's destination and title, a reference label, a bare URL)."""

    start: int
    end: int
    kind: Kind


def code_regions(text: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` offsets of every code block and code span, in order."""
    if "`" not in text and "~~~" not in text and "\t" not in text and "    " not in text:
        return []  # no fence, no code span, no indentation: no code
    return [(r.start, r.end) for r in regions(text) if r.kind == "code"]


def split_code(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into consecutive ``(part, is_code)`` pieces (joined, they are the text)."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for start, end in code_regions(text):
        if start > position:
            parts.append((text[position:start], False))
        parts.append((text[start:end], True))
        position = end
    if position < len(text):
        parts.append((text[position:], False))
    return parts


def regions(text: str) -> list[Region]:
    """Code blocks and spans, raw HTML blocks and tags, and link URLs of ``text``; sorted,
    not overlapping."""
    parser = _BlockParser(text)
    parser.run()
    found = sorted(parser.found, key=lambda r: r.start)
    merged: list[Region] = []
    for region in found:
        if merged and region.start < merged[-1].end:
            last = merged[-1]
            if region.end > last.end:
                merged[-1] = Region(last.start, region.end, "code")
            continue
        merged.append(region)
    return merged


# --- blocks ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Block:
    kind: str  # document, quote, item, paragraph, heading, table, fence, indented, html
    indent: int = 0  # item: marker offset + padding; fence: the fence's indentation
    fence: str = ""  # fence: the fence characters (``` or ~~~, at least three)
    html_type: int = 0
    setext: bool = False  # heading: made from a paragraph (which may start with definitions)
    has_content: bool = False  # item: something was added to it
    start: int = -1  # fence, indented, html: where the block starts in the source
    end: int = -1  # ... and where its last (non-blank, for indented) line ends
    lines: list[tuple[int, str]] = field(default_factory=list)  # inline text: (offset, line)
    before: list[tuple[int, str]] = field(default_factory=list)  # table: paragraph above it


class _Line:
    """One line being read, with cmark's offset/column bookkeeping (tabs to 4 columns)."""

    __slots__ = ("column", "nonspace", "nonspace_column", "offset", "partial", "start", "text")

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start  # the line's offset in the source
        self.offset = 0
        self.column = 0
        self.nonspace = 0
        self.nonspace_column = 0
        self.partial = False

    def find_nonspace(self) -> None:
        position, column = self.offset, self.column
        text = self.text
        if position < len(text) and text[position] not in " \t":
            self.nonspace, self.nonspace_column = position, column
            return
        while position < len(text):
            char = text[position]
            if char == " ":
                column += 1
            elif char == "\t":
                column += _TAB_STOP - column % _TAB_STOP
            else:
                break
            position += 1
        self.nonspace, self.nonspace_column = position, column

    @property
    def indent(self) -> int:
        return self.nonspace_column - self.column

    @property
    def blank(self) -> bool:
        return self.nonspace >= len(self.text)

    def peek(self, position: int) -> str:
        return self.text[position] if position < len(self.text) else "\n"

    def advance(self, count: int, columns: bool) -> None:
        text = self.text
        while count > 0 and self.offset < len(text):
            if text[self.offset] == "\t":
                to_tab = _TAB_STOP - self.column % _TAB_STOP
                if columns:
                    self.partial = to_tab > count
                    step = min(count, to_tab)
                    self.column += step
                    self.offset += 0 if self.partial else 1
                    count -= step
                else:
                    self.partial = False
                    self.column += to_tab
                    self.offset += 1
                    count -= 1
            else:
                self.partial = False
                self.offset += 1
                self.column += 1
                count -= 1

    def advance_to_nonspace(self) -> None:
        self.advance(self.nonspace - self.offset, columns=False)


class _BlockParser:
    def __init__(self, text: str) -> None:
        self.source = text
        self.chain: list[_Block] = [_Block("document")]
        self.found: list[Region] = []
        self.inlines: list[list[tuple[int, str]]] = []  # each block's inline text lines
        self.references: set[str] = set()  # labels of link reference definitions

    def run(self) -> None:
        text = self.source
        position = 0
        for line_end in _LINE_END.finditer(text):
            self._line(_Line(text[position : line_end.start()], position))
            position = line_end.end()
        if position < len(text):
            self._line(_Line(text[position:], position))
        while len(self.chain) > 1:
            self._close(self.chain.pop())
        # As cmark: every block first (definitions anywhere count), then the inlines.
        references = frozenset(self.references)
        for lines in self.inlines:
            self.found.extend(_inline_code(lines, references))

    # One line: cmark's S_process_line.
    def _line(self, line: _Line) -> None:
        matched = self._match_open(line)
        if matched is None:
            return
        tip = self.chain[-1]
        container = self.chain[matched]
        all_matched = matched == len(self.chain) - 1
        opened = self._open_new(line, container, matched, all_matched, tip)
        container = self.chain[-1] if opened else container
        line.find_nonspace()
        if not opened and not all_matched and not line.blank and tip.kind == "paragraph":
            self._add_inline_line(tip, line)  # a lazy continuation line
            return
        if not opened:
            while len(self.chain) - 1 > matched:
                self._close(self.chain.pop())
            container = self.chain[-1]
        self._add_text(container, line)

    def _match_open(self, line: _Line) -> int | None:
        """How deep the open blocks match this line (cmark's check_open_blocks); None when
        the line closed a fence and is used up."""
        for depth in range(1, len(self.chain)):
            block = self.chain[depth]
            line.find_nonspace()
            if block.kind == "fence" and self._closes_fence(line, block):
                self._close(block, line.start + len(line.text))
                del self.chain[depth:]
                return None
            if not _continues(block, line):
                return depth - 1
        return len(self.chain) - 1

    @staticmethod
    def _closes_fence(line: _Line, block: _Block) -> bool:
        if line.indent > 3 or line.peek(line.nonspace) != block.fence[0]:
            return False
        found = _CLOSE_FENCE.match(line.text, line.nonspace)
        return (
            found is not None
            and found.group(1)[0] == block.fence[0]
            and len(found.group(1)) >= len(block.fence)
        )

    def _open_new(
        self, line: _Line, container: _Block, matched: int, all_matched: bool, tip: _Block
    ) -> bool:
        """Open the blocks this line starts (cmark's open_new_blocks); True if any."""
        opened = False
        maybe_lazy = tip.kind == "paragraph"
        kind = container.kind
        while kind not in ("fence", "indented", "html"):
            line.find_nonspace()
            new = self._start(line, container, kind, maybe_lazy, all_matched)
            if new is None:
                break
            if new is container:  # a paragraph became a setext heading or a table
                opened = True
                break
            if not opened:
                while len(self.chain) > matched + 1:
                    self._close(self.chain.pop())
            opened = True
            while self.chain[-1].kind in ("paragraph", "heading", "table", "hr"):
                self._close(self.chain.pop())
            self._push(new)
            container, kind = new, new.kind
            if kind in ("paragraph", "heading", "fence", "indented", "html", "table"):
                break
            maybe_lazy = False
        return opened

    def _start(
        self, line: _Line, container: _Block, kind: str, maybe_lazy: bool, all_matched: bool
    ) -> _Block | None:
        indented = line.indent >= 4
        at = line.nonspace
        char = line.peek(at)
        text = line.text
        if (
            not indented
            and char not in _BLOCK_START
            and kind != "table"
            and (kind != "paragraph" or char not in "=|:")
        ):
            return None  # plain text: no block starts here
        if not indented and char == ">":
            line.advance(at + 1 - line.offset, columns=False)
            if line.peek(line.offset) in " \t":
                line.advance(1, columns=True)
            return _Block("quote")
        if not indented and char == "#" and (atx := _ATX.match(text, at)) is not None:
            line.advance(atx.end() - line.offset, columns=False)
            return _Block("heading")
        if not indented and char in "`~" and (fence := _OPEN_FENCE.match(text, at)):
            block = _Block(
                "fence", indent=at - line.offset, fence=fence.group(), start=line.start + at
            )
            block.end = line.start + len(text)
            line.advance(len(text) - line.offset, columns=False)
            return block
        if not indented and char == "<":
            html_type = _html_start(text, at, kind != "paragraph")
            if html_type:
                return _Block("html", html_type=html_type, start=line.start + at)
        if not indented and kind == "paragraph" and char in "=-" and _SETEXT.match(text, at):
            container.kind = "heading"
            container.setext = True
            line.advance(len(text) - line.offset, columns=False)
            return container
        if (
            not indented
            and not (kind == "paragraph" and not all_matched)
            and char in "*-_"
            and _THEMATIC.match(text, at)
        ):
            line.advance(len(text) - line.offset, columns=False)
            return _Block("hr")
        if line.indent < 4 and (item := self._list_item(line, kind == "paragraph")) is not None:
            return item
        if indented and not maybe_lazy and not line.blank:
            line.advance(4, columns=True)
            start = line.start + line.offset
            return _Block("indented", start=start, end=start)
        if not indented and kind == "paragraph" and _table_header(container, text, at):
            container.kind = "table"
            line.advance(len(text) - line.offset, columns=False)
            return container
        if not indented and kind == "table" and not line.blank:
            container.lines.append((line.start + at, text[at:]))
            line.advance(len(text) - line.offset, columns=False)
            return container
        return None

    @staticmethod
    def _list_item(line: _Line, interrupts_paragraph: bool) -> _Block | None:
        at = line.nonspace
        text = line.text
        bullet = _BULLET.match(text, at)
        ordered = None if bullet else _ORDERED.match(text, at)
        marker = bullet or ordered
        if marker is None:
            return None
        if interrupts_paragraph:
            if ordered is not None and int(ordered.group(1)) != 1:
                return None
            if not text[marker.end() :].strip(" \t"):
                return None
        indent = line.indent
        line.advance(marker.end() - line.offset, columns=False)
        saved = (line.offset, line.column, line.partial)
        start_column = line.column
        while line.column - start_column <= 5 and line.peek(line.offset) in " \t":
            line.advance(1, columns=True)
        spaces = line.column - start_column
        width = marker.end() - at
        if spaces >= 5 or spaces < 1 or line.offset >= len(text):
            padding = width + 1
            line.offset, line.column, line.partial = saved
            if spaces > 0:
                line.advance(1, columns=True)
        else:
            padding = width + spaces
        return _Block("item", indent=indent + padding)

    def _add_text(self, container: _Block, line: _Line) -> None:
        """cmark's add_text_to_container, after any unmatched blocks were closed."""
        kind = container.kind
        end = line.start + len(line.text)
        if kind == "fence":
            container.end = end
        elif kind == "indented":
            if not line.blank:
                container.end = end
        elif kind == "html":
            container.end = end
            ender = _HTML_END.get(container.html_type)
            if ender is not None and ender.search(line.text, line.nonspace):
                self._close(self.chain.pop())
        elif line.blank or kind in ("hr", "table"):
            if kind == "hr":
                self._close(self.chain.pop())
        elif kind == "paragraph":
            self._add_inline_line(container, line)
        elif kind == "heading":
            if not container.lines:  # an ATX heading: this is its one line
                line.advance_to_nonspace()
                container.lines.append(
                    (line.start + line.offset, _chop_hashes(line.text[line.offset :]))
                )
        else:
            paragraph = _Block("paragraph")
            self._push(paragraph)
            self._add_inline_line(paragraph, line)

    def _push(self, block: _Block) -> None:
        parent = self.chain[-1]
        if parent.kind == "item":
            parent.has_content = True
        self.chain.append(block)

    @staticmethod
    def _add_inline_line(block: _Block, line: _Line) -> None:
        line.advance_to_nonspace()
        block.lines.append((line.start + line.offset, line.text[line.offset :]))

    def _close(self, block: _Block, end: int | None = None) -> None:
        kind = block.kind
        if kind == "fence":
            self.found.append(Region(block.start, end if end is not None else block.end, "code"))
        elif kind == "indented":
            if block.end > block.start:
                self.found.append(Region(block.start, block.end, "code"))
        elif kind == "html":
            self.found.append(Region(block.start, max(block.end, block.start + 1), "html"))
        elif kind in ("paragraph", "heading") and block.lines:
            lines = block.lines
            if kind == "paragraph" or block.setext:
                lines = _skip_reference_definitions(lines, self.references)
                if len(lines) < len(block.lines):  # definitions: a URL and a title
                    start, _ = block.lines[0]
                    last_start, last = block.lines[len(block.lines) - len(lines) - 1]
                    self.found.append(Region(start, last_start + len(last), "link"))
            self.inlines.append(lines)
        elif kind == "table":
            self.inlines.append(block.before)
            for start, line in block.lines:
                for cell_start, cell in _table_cells(line, 0)[: block.indent]:
                    self.inlines.append([(start + cell_start, cell)])


def _continues(block: _Block, line: _Line) -> bool:
    """Whether an open block goes on into this line, past the prefix it consumes."""
    kind = block.kind
    if kind == "quote":
        if line.indent > 3 or line.peek(line.nonspace) != ">":
            return False
        line.advance(line.indent + 1, columns=True)
        if line.peek(line.offset) in " \t":
            line.advance(1, columns=True)
    elif kind == "item":
        if line.indent >= block.indent:
            line.advance(block.indent, columns=True)
        elif line.blank and block.has_content:
            line.advance_to_nonspace()
        else:
            return False
    elif kind == "fence":  # not closed: skip up to the fence's own indentation
        skip = block.indent
        while skip > 0 and line.peek(line.offset) in " \t":
            line.advance(1, columns=True)
            skip -= 1
    elif kind == "indented":
        if line.indent >= 4:
            line.advance(4, columns=True)
        elif line.blank:
            line.advance_to_nonspace()
        else:
            return False
    elif kind == "heading":
        return False
    elif kind in ("paragraph", "html", "table"):
        if line.blank:
            return kind == "html" and block.html_type < 6
        return kind != "table" or bool(_table_cells(line.text, line.nonspace))
    return True


def _html_start(text: str, at: int, may_be_7: bool) -> int:
    for html_type, pattern in _HTML_START:
        if pattern.match(text, at):
            return html_type
    if may_be_7 and _HTML_START_7.match(text, at):
        return 7
    return 0


def _chop_hashes(text: str) -> str:
    stripped = text.rstrip(" \t")
    without = stripped.rstrip("#")
    if without != stripped and (not without or without[-1] in " \t"):
        return without.rstrip(" \t")
    return stripped


# --- tables ----------------------------------------------------------------------------


def _table_cells(text: str, at: int) -> list[tuple[int, str]]:
    """A GFM table row's cells ``(offset in text, raw text)`` (cmark-gfm's row_from_string);
    [] when the line is no row."""
    cells: list[tuple[int, str]] = []
    pipe = _TABLE_PIPE.match(text, at)
    position = pipe.end() if pipe else at
    while position < len(text):
        cell = _TABLE_CELL.match(text, position)
        cell_end = cell.end() if cell else position
        pipe = _TABLE_PIPE.match(text, cell_end)
        if cell or pipe:
            cells.append((position, text[position:cell_end]))
        if pipe:
            position = pipe.end()
            continue
        rest = text[cell_end:]
        if rest.strip(" \t\v\f"):
            return []
        break
    return cells


def _table_header(paragraph: _Block, text: str, at: int) -> bool:
    """Whether this delimiter row turns the paragraph into a table: the paragraph's last
    line must be a row with as many cells. The header and rows go in paragraph.lines."""
    if not _TABLE_DELIMITER.match(text, at):
        return False
    delimiter = _table_cells(text, at)
    if not paragraph.lines:
        return False
    start, header = paragraph.lines[-1]
    cells = _table_cells(header, 0)
    if not cells or len(cells) != len(delimiter):
        return False
    paragraph.before = paragraph.lines[:-1]
    paragraph.lines = [(start, header)]
    paragraph.indent = len(cells)  # how many cells each row keeps
    return True


# --- inlines ---------------------------------------------------------------------------


def _normal_label(label: str) -> str:
    return _WHITESPACE_RUN.sub(" ", label.strip()).casefold()


def _skip_reference_definitions(
    lines: list[tuple[int, str]], references: set[str]
) -> list[tuple[int, str]]:
    """The paragraph's lines without the link reference definitions it starts with (cmark's
    resolve_reference_link_definitions); their labels go into ``references``."""
    if not lines[0][1].startswith("["):
        return lines
    content = "\n".join(text for _, text in lines) + "\n"
    position = 0
    while content.startswith("[", position):
        found = _reference_definition(content, position)
        if found is None:
            break
        position, label = found
        references.add(label)
    return lines[content.count("\n", 0, position) :] if position else lines


def _reference_definition(content: str, position: int) -> tuple[int, str] | None:
    """(end, normalised label) of the definition at ``position`` (cmark's
    cmark_parse_reference_inline), or None."""
    label_end = _label_end(content, position)
    if label_end is None or not content.startswith(":", label_end):
        return None
    label = content[position + 1 : label_end - 1]
    if not label.strip(_SPACE):
        return None
    at = _spnl(content, label_end + 1)
    destination = _link_destination(content, at)
    if destination is None:
        return None
    after = _spnl(content, destination)
    title = _LINK_TITLE.match(content, after) if after > destination else None
    if title is not None and (end := _line_end(content, title.end())) is not None:
        return end, _normal_label(label)
    end = _line_end(content, destination)
    return None if end is None else (end, _normal_label(label))


def _label_end(content: str, position: int) -> int | None:
    """Just past the ']' of the link label at ``position`` (cmark's link_label)."""
    index = position + 1
    length = len(content)
    while index < length and content[index] not in "[]":
        if content[index] == "\\" and content[index + 1 : index + 2] in _ASCII_PUNCT:
            index += 1
        index += 1
        if index - position > 1000:
            return None
    return index + 1 if index < length and content[index] == "]" else None


def _spnl(content: str, position: int) -> int:
    """Past spaces and tabs, at most one line end, and spaces and tabs again."""
    length = len(content)
    while position < length and content[position] in " \t":
        position += 1
    if content.startswith("\n", position):
        position += 1
        while position < length and content[position] in " \t":
            position += 1
    return position


def _line_end(subject: str, position: int) -> int | None:
    while position < len(subject) and subject[position] in " \t":
        position += 1
    if position == len(subject):
        return position
    if subject[position] == "\n":
        return position + 1
    return None


def _subject(lines: list[tuple[int, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The lines joined by newlines (as cmark's inline parser sees them), and for each
    line (offset in the subject, offset in the source)."""
    starts: list[tuple[int, int]] = []
    parts: list[str] = []
    length = 0
    for source_start, text in lines:
        starts.append((length, source_start))
        parts.append(text)
        length += len(text) + 1
    return "\n".join(parts).rstrip(_SPACE), starts


def _inline_code(lines: list[tuple[int, str]], references: frozenset[str]) -> list[Region]:
    if not lines:
        return []
    subject, starts = _subject(lines)
    keys = [s for s, _ in starts]
    found = []

    def source(position: int) -> int:
        index = bisect_right(keys, position) - 1
        return starts[index][1] + position - starts[index][0]

    for start, end, kind in _inline_regions(subject, references):
        found.append(Region(source(start), source(end - 1) + 1, kind))
    return found


def _inline_regions(subject: str, references: frozenset[str]) -> list[tuple[int, int, Kind]]:
    """Code spans, raw HTML tags and link URLs of one block's inline text, read with
    cmark's precedence."""
    spans: list[tuple[int, int, Kind]] = []
    brackets: list[list[int]] = []  # [image, active, where its text starts, bracket after]
    seen: dict[int, int] = {}  # backtick runs: length -> last start; -1 -> scanned to the end
    position = 0
    length = len(subject)
    while position < length:
        char = subject[position]
        if char == "\\":
            position += 2 if subject[position + 1 : position + 2] in _ASCII_PUNCT else 1
        elif char == "`":
            run = position
            while run < length and subject[run] == "`":
                run += 1
            close = _closing_backticks(subject, run, run - position, seen)
            if close is None:
                position = run
            else:
                spans.append((position, close, "code"))
                position = close
        elif char == "<":
            if (found := AUTOLINK.match(subject, position)) is not None:
                spans.append((position, found.end(), "link"))
                position = found.end()
            elif (found := HTML_TAG.match(subject, position)) is not None:
                spans.append((position, found.end(), "tag"))
                position = found.end()
            else:
                position += 1
        elif char == "[":
            _push_bracket(brackets, 0, position + 1)
            position += 1
        elif char == "!" and subject.startswith("[", position + 1):
            if subject.startswith("^", position + 2):
                position += 1
            else:
                _push_bracket(brackets, 1, position + 2)
                position += 2
        elif char == "]":
            end = _close_bracket(subject, position + 1, brackets, references)
            if end > position + 1:
                spans.append((position + 1, end, "link"))
            position = end
        elif char == ":" and not brackets:
            position = _bare_url(subject, position, spans)
        elif char == "w" and not brackets and subject.startswith("www.", position):
            position = _bare_www(subject, position, spans)
        else:
            position += 1
    return spans


def _push_bracket(brackets: list[list[int]], image: int, text_start: int) -> None:
    if brackets:
        brackets[-1][3] = 1
    brackets.append([image, 1, text_start, 0])


def _closing_backticks(subject: str, position: int, count: int, seen: dict[int, int]) -> int | None:
    """The end of the backtick run closing a code span opened by ``count`` backticks
    (cmark's scan_to_closing_backticks). ``seen`` is cmark's memo: once a scan has run to
    the end, a length whose last remembered run lies behind is taken as unclosed (in
    cmark-gfm 0.29 the memo goes stale after a later successful scan; kept, to agree)."""
    if count > 1000:
        return None
    if seen.get(-1) and seen.get(count, 0) <= position:
        return None
    length = len(subject)
    while True:
        position = subject.find("`", position)
        if position < 0:
            seen[-1] = 1  # scanned to the end
            return None
        run = position
        while run < length and subject[run] == "`":
            run += 1
        if run - position <= 1000:
            seen[run - position] = position
        if run - position == count:
            return run
        position = run


def _close_bracket(
    subject: str, position: int, brackets: list[list[int]], references: frozenset[str]
) -> int:
    """After a ']' (cmark's handle_close_bracket): past the inline link's destination and
    title or the reference link's label; earlier link brackets deactivated by a link."""
    if not brackets:
        return position
    image, active, text_start, bracket_after = brackets.pop()
    if not active:
        return position
    end = _inline_link_end(subject, position)
    if end is None and references:
        end = _reference_link_end(subject, position, text_start, bool(bracket_after), references)
    if end is None:
        return position
    if not image:
        for opener in reversed(brackets):
            if not opener[0]:
                if not opener[1]:
                    break
                opener[1] = 0
    return end


def _reference_link_end(
    subject: str, position: int, text_start: int, bracket_after: bool, references: frozenset[str]
) -> int | None:
    label_end = _label_end(subject, position) if subject.startswith("[", position) else None
    label = subject[position + 1 : label_end - 1] if label_end is not None else None
    if label_end is None:
        label_end = position
    if (label is None or not label.strip(_SPACE)) and not bracket_after:
        label = subject[text_start : position - 1]
    if label is not None and _normal_label(label) in references:
        return label_end
    return None


def _inline_link_end(subject: str, position: int) -> int | None:
    if not subject.startswith("(", position):
        return None
    at = _skip_space(subject, position + 1)
    destination = _link_destination(subject, at)
    if destination is None:
        return None
    title_start = _skip_space(subject, destination)
    title_end = title_start
    if title_start > destination:
        title = _LINK_TITLE.match(subject, title_start)
        if title is not None:
            title_end = title.end()
    end = _skip_space(subject, title_end)
    return end + 1 if subject.startswith(")", end) else None


def _skip_space(subject: str, position: int) -> int:
    """Past any whitespace, line ends included (cmark's scan_spacechars)."""
    length = len(subject)
    while position < length and subject[position] in _SPACE:
        position += 1
    return position


def _link_destination(subject: str, position: int) -> int | None:
    """The end of a link destination starting at ``position`` (cmark's
    manual_scan_link_url), or None."""
    length = len(subject)
    if position < length and subject[position] == "<":
        position += 1
        while position < length:
            char = subject[position]
            if char == ">":
                return position + 1
            if char == "\\":
                position += 2
            elif char in "\n<":
                return None
            else:
                position += 1
        return None
    start = position
    depth = 0
    while position < length:
        char = subject[position]
        if char == "\\" and subject[position + 1 : position + 2] in _ASCII_PUNCT:
            position += 2
        elif char == "(":
            depth += 1
            position += 1
            if depth > 32:
                return None
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
            position += 1
        elif char in _SPACE:
            if position == start:
                return None
            break
        else:
            position += 1
    return None if position >= length else position


def _bare_url(subject: str, position: int, spans: list[tuple[int, int, Kind]]) -> int:
    """Past a GFM bare URL whose '://' is at ``position`` (the scheme before it)."""
    start = position
    while start > 0 and subject[start - 1].isascii() and subject[start - 1].isalpha():
        start -= 1
    scheme = _URL_SCHEME.match(subject, start)
    if scheme is None or scheme.end() != position + 3:
        return position + 1
    host = subject[position + 3 : position + 4]
    if not host or host in _SPACE or _is_punctuation(host):
        return position + 1
    if not _domain_ok(subject, position + 3, allow_short=True):
        return position + 1
    end = _url_end(subject, position + 3)
    spans.append((start, end, "link"))
    return end


def _bare_www(subject: str, position: int, spans: list[tuple[int, int, Kind]]) -> int:
    before = subject[position - 1] if position > 0 else " "
    if before not in "*_~(" and before not in _SPACE:
        return position + 1
    if not _domain_ok(subject, position, allow_short=False):
        return position + 1
    end = _url_end(subject, position)
    spans.append((position, end, "link"))
    return end


def _domain_ok(subject: str, start: int, allow_short: bool) -> bool:
    """cmark-gfm's check_domain: no '_' in the last two labels; a dot unless short."""
    underscores_before = underscores = dots = 0
    position = start + 1
    length = len(subject)
    while position < length - 1:
        char = subject[position]
        if char == "_":
            underscores += 1
        elif char == ".":
            underscores_before, underscores = underscores, 0
            dots += 1
        elif char != "-" and (char in _SPACE or _is_punctuation(char)):
            break
        position += 1
    if underscores_before or underscores:
        return False
    return allow_short or dots > 0


def _is_punctuation(char: str) -> bool:
    if char.isascii():
        return char in _ASCII_PUNCT
    return unicodedata.category(char).startswith("P")


def _url_end(subject: str, position: int) -> int:
    """A bare URL runs to whitespace and stops before '<'; code spans cannot start in it."""
    end = position
    length = len(subject)
    while end < length and subject[end] not in _SPACE and subject[end] != "<":
        end += 1
    return max(end, position + 1)
