"""A Markdown source made ready for cmark-gfm, and cmark's HTML finished (pure).

Three passes, each outside code (fenced and indented blocks, code spans) and each run
only when the source can need it:

- text tags: ``Promise<T>`` — a raw HTML tag whose name is no element (html_tags) gets
  its ``<`` escaped, so that it reads as text; inside raw HTML blocks, the HTML rule;
- math: the inside of ``$…$``, ``$$…$$``, ``\\(…\\)`` and ``\\[…\\]`` (at line
  start and end) is swapped for a private-use placeholder, so that cmark leaves it alone
  (no backslash lost, no emphasis inside), and put back, escaped, in the HTML;
- CJK-friendly emphasis (cjk_emphasis): an empty comment beside the ``*`` runs that the
  amended flanking rules read differently, taken out of the HTML again.

Inline math follows pandoc's rule: the opening ``$`` is followed by a non-space, the
closing one preceded by a non-space and not followed by a digit (``$5 and $10`` is
money). No math span holds a blank line or code.

:func:`render` is the whole round; when cmark moved a placeholder or a marker where it
cannot be put back (inside a link's URL), the source is rendered again with only the
text-tag pass, so nothing is ever lost.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from feedsvc.content.cjk_emphasis import MARKER, RUN_NEAR_WIDE, marker_positions
from feedsvc.content.html_tags import RAW_TEXT, escape_text_tags, has_text_tags, is_html_name

if TYPE_CHECKING:
    from feedsvc.content.markdown_code import Region

_MATH = re.compile(
    r"(?<![\\$])\$\$(?P<display>(?:\\.|[^\\$])+?)\$\$"
    r"|(?<![\\$])\$(?![\s$])(?P<inline>(?:\\.|[^\\$])+?)(?<![\s\\])\$(?![$0-9])"
    r"|(?<!\\)\\\((?P<paren>.+?)(?<!\\)\\\)"
    r"|(?m:^[ \t>]*)(?<!\\)\\\[(?P<bracket>.+?)(?<!\\)\\\](?=[ \t]*$)",
    re.DOTALL,
)
_BLANK_LINE = re.compile(r"\n[ \t>]*\n")
_FENCE_LIKE = re.compile(r"[ \t>]*(?:`{3}|~{3})")
_LINE_PREFIX = re.compile(r"[ \t>]*")
_BLOCK_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_TOKEN_BASE = 0xF0000  # Supplementary Private Use Area-A: one character a math span
_TOKENS = re.compile("[\U000f0000-\U000ffffd]")
_OPENERS = {"display": "$$", "inline": "$", "paren": "\\\\\\(", "bracket": "\\\\\\["}
_CLOSERS = {"display": "$$", "inline": "$", "paren": "\\\\\\)", "bracket": "\\\\\\]"}
_MARKER_FORMS = (MARKER, "&lt;!--cjk--&gt;", "%3C!--cjk--%3E")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


@dataclass
class Prepared:
    """What cmark reads, and what to undo in its HTML."""

    text: str
    markers: int = 0
    maths: list[str] = field(default_factory=list)  # the placeholder's index → the math

    def finish(self, html: str) -> str | None:
        """cmark's HTML of :attr:`text` with the markers out and the math back; None if
        cmark put one where it cannot be undone."""
        if self.markers:
            if sum(html.count(form) for form in _MARKER_FORMS) != self.markers:
                return None
            for form in _MARKER_FORMS:
                html = html.replace(form, "")
        if self.maths:
            if len(_TOKENS.findall(html)) != len(self.maths):
                return None
            html = _TOKENS.sub(self._math_at, html)
        return html

    def _math_at(self, token: re.Match[str]) -> str:
        return self.maths[ord(token.group()) - _TOKEN_BASE].translate(_ESCAPES)


def render(text: str, to_html: Callable[[str], str]) -> str:
    """``text`` rendered by ``to_html`` (cmark) with the three passes."""
    prepared = prepare(text)
    if prepared is None:
        return to_html(text)
    finished = prepared.finish(to_html(prepared.text))
    if finished is not None:
        return finished
    safe = prepare(text, math=False, cjk=False)
    return to_html(text if safe is None else safe.text)


def prepare(text: str, *, math: bool = True, cjk: bool = True) -> Prepared | None:
    """The source cmark should read; None when no pass changes anything (the usual case:
    the cheap checks below keep the code scanner from running at all)."""
    tags = has_text_tags(text)
    # One-character checks first (memchr): a regex without a literal prefix walks every
    # character, and even a two-character needle is slow in Korean (UCS-2) text.
    math = math and ("$" in text or ("\\" in text and ("\\(" in text or "\\[" in text)))
    math = math and _MATH.search(text) is not None
    math = math and _TOKENS.search(text) is None
    cjk = cjk and "*" in text and not text.isascii() and _cjk_candidate(text)
    if not (tags or math or cjk):
        return None
    # The code scanner (its patterns take ~5 ms to compile) is imported by the first
    # source that needs it: most sites have none.
    from feedsvc.content.markdown_code import regions

    found = regions(text)
    if tags and (openings := _text_block_openings(text, found)):
        # An HTML block opened by a tag that is text is no block: cmark then reads its
        # lines as Markdown, so read them again too (each round takes one '<' away).
        text = _apply(text, openings)
        return prepare(text, math=math, cjk=cjk) or Prepared(text)
    edits: list[tuple[int, int, str]] = []
    if tags:
        edits += _tag_edits(text, found)
    maths: list[str] = []
    spans: list[tuple[int, int]] = []
    if math:
        edits, spans = _math_edits(text, found, edits, maths)
    markers = 0
    if cjk:
        positions = _marker_edits(text, found, spans)
        markers = len(positions)
        edits += [(p, p, MARKER) for p in positions]
    if not edits:
        return None
    return Prepared(_apply(text, edits), markers, maths)


def _cjk_candidate(text: str) -> bool:
    for candidate in RUN_NEAR_WIDE.finditer(text):
        if next(marker_positions(text, candidate.start(), candidate.end()), None) is not None:
            return True
    return False


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out = []
    position = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


# --- <T> as text ------------------------------------------------------------------------


def _tag_edits(text: str, found: list[Region]) -> list[tuple[int, int, str]]:
    """Escape the '<' of inline raw tags that are text; raw HTML blocks by the HTML rule.
    Tags inside an inline <script>…</script> (or another raw-text element) are kept."""
    from feedsvc.content.markdown_code import HTML_TAG

    edits: list[tuple[int, int, str]] = []
    raw_text_until = ""
    for region in found:
        if region.kind == "html":
            block = text[region.start : region.end]
            escaped = escape_text_tags(block)
            if escaped != block:
                edits.append((region.start, region.end, escaped))
            continue
        if region.kind != "tag":
            continue
        tag = HTML_TAG.match(text, region.start)
        assert tag is not None  # the scanner found it with this pattern
        name = tag.group("open") or tag.group("close")
        if name is None:
            continue  # a comment, declaration, processing instruction or CDATA
        if raw_text_until:
            if tag.group("close") and name.lower() == raw_text_until:
                raw_text_until = ""
            continue
        if not is_html_name(name) and not _at_destination(text, region.start):
            edits.append((region.start, region.start + 1, "&lt;"))
        elif tag.group("open") and name.lower() in RAW_TEXT:
            raw_text_until = name.lower()
    return edits


def _text_block_openings(text: str, found: list[Region]) -> list[tuple[int, int, str]]:
    """The '<' of raw HTML blocks opened by a tag that is text (``<T>`` alone on a line)."""
    edits = []
    for region in found:
        if region.kind == "html":
            opening = _BLOCK_TAG.match(text, region.start)
            if opening is not None and not is_html_name(opening.group(1)):
                edits.append((region.start, region.start + 1, "&lt;"))
    return edits


def _at_destination(text: str, position: int) -> bool:
    """Whether a '<' stands where a link destination may open (after '](' or ']:'):
    escaping it would change how the link or definition around it is read."""
    before = text[max(0, position - 40) : position].rstrip(" \t\r\n")
    return before.endswith(("](", "]:"))


# --- math -------------------------------------------------------------------------------


def _math_edits(
    text: str, found: list[Region], edits: list[tuple[int, int, str]], maths: list[str]
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    """Placeholders for the math spans; the edits inside them are dropped (the math is put
    back escaped as a whole). Returns the edits and the spans."""
    blocking = [r for r in found if r.kind in ("code", "html")]
    inline = [r for r in found if r.kind in ("tag", "link")]
    starts = [r.start for r in inline]
    spans: list[tuple[int, int]] = []
    math_edits: list[tuple[int, int, str]] = []
    position = 0
    for gap_start, gap_end in _gaps(blocking, len(text)):
        position = max(position, gap_start)
        while (match := _MATH.search(text, position, gap_end)) is not None:
            kind = match.lastgroup or "inline"
            if _inside(starts, inline, match.start()) or _inside(starts, inline, match.end() - 1):
                position = match.start() + 1
                continue
            if _BLANK_LINE.search(match.group(kind)) or _on_fence_line(text, match.start()):
                position = match.start() + 1
                continue
            opener = text[match.start() : match.start(kind)]
            prefix = opener[: len(opener) - len(opener.lstrip(" \t>"))]
            pieces = _math_pieces(match.group(kind), maths)
            math_edits.append(
                (match.start(), match.end(), prefix + _OPENERS[kind] + pieces + _CLOSERS[kind])
            )
            spans.append((match.start(), match.end()))
            position = match.end()
    kept = [e for e in edits if not any(s <= e[0] < t for s, t in spans)]
    return kept + math_edits, spans


def _on_fence_line(text: str, position: int) -> bool:
    """Whether ``position`` is on a line that starts like a fence (```` ``` ```` or
    ``~~~``) but is not one (code regions are skipped already): a placeholder there could
    make it one (```` ```$`$ ````: a backtick in the info string is what keeps it text)."""
    start = text.rfind("\n", 0, position) + 1
    return _FENCE_LIKE.match(text, start) is not None


def _math_pieces(content: str, maths: list[str]) -> str:
    """The math's lines as placeholders; a continuation line's '>' and indentation stay
    outside, where cmark reads them as the block's own prefix."""
    out = []
    for number, line in enumerate(content.split("\n")):
        if number:
            prefix = _LINE_PREFIX.match(line)
            assert prefix is not None
            out.append("\n" + prefix.group())
            line = line[prefix.end() :]
        if line:
            out.append(chr(_TOKEN_BASE + len(maths)))
            maths.append(line)
    return "".join(out)


def _gaps(blocking: list[Region], length: int) -> list[tuple[int, int]]:
    gaps = []
    position = 0
    for region in blocking:
        if region.start > position:
            gaps.append((position, region.start))
        position = max(position, region.end)
    if position < length:
        gaps.append((position, length))
    return gaps


def _inside(starts: list[int], found: list[Region], position: int) -> bool:
    index = bisect_right(starts, position) - 1
    return index >= 0 and found[index].start <= position < found[index].end


# --- CJK-friendly emphasis --------------------------------------------------------------


def _marker_edits(text: str, found: list[Region], spans: list[tuple[int, int]]) -> list[int]:
    """Marker positions for the '*' runs outside code, raw HTML, URLs and math."""
    blocked = sorted([(r.start, r.end) for r in found] + spans)
    starts = [s for s, _ in blocked]
    positions = []
    for candidate in RUN_NEAR_WIDE.finditer(text):
        for run, position in marker_positions(text, candidate.start(), candidate.end()):
            index = bisect_right(starts, run) - 1
            if index < 0 or not blocked[index][0] <= run < blocked[index][1]:
                positions.append(position)
    return positions
