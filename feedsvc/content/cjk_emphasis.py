"""CJK-friendly emphasis for cmark-gfm (pure: a string in, positions out).

CommonMark decides whether ``*`` can open or close emphasis by what is on either side
(the flanking rules): ``**제네릭(Generics)**을`` stays literal because the closing
``**`` follows a ``)`` and precedes a letter. The "CJK-friendly emphasis" amendment
(github.com/tats-u/markdown-cjk-friendly, specification.md) widens the two rules next to
CJK characters and CJK punctuation; text without them reads exactly as in CommonMark,
and ``_`` is never affected.

cmark-gfm cannot be told the amended rules, but it reads flanking from the raw
characters beside a run. So where the amended rules and cmark's disagree about a ``*``
run, an empty HTML comment (:data:`MARKER`) is put against the run, before or after it:
the ``>`` or ``<`` next to the run is punctuation, which turns cmark's verdict into the
amended one (both then say "can open and close", the only verdict they can disagree
into). cmark then pairs delimiters with its own algorithm (nesting, links and code
inside, the rule of three), and the markers are taken out of its HTML.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

MARKER = "<!--cjk-->"

_SPACE = frozenset("\t\n\x0c\r \xa0\u1680\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)  # cmark's cmark_utf8proc_is_space
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# A '*' run with a non-ASCII character beside it (past any '~', which cmark-gfm skips
# when it looks beside a run): only there can the amended rules differ.
RUN_NEAR_WIDE = re.compile(r"(?<=[^\x00-\x7f])~*\*+|\*+(?=~*[^\x00-\x7f])")
_RUN = re.compile(r"\*+")

# Always CJK, whatever Python's Unicode data says: Hangul script ranges whose East Asian
# Width is not W, F or H (jamo medials and finals, the extended-B block), and symbols
# that Unicode 16 made wide (trigrams, digrams, hexagrams, Tai Xuan Jing, counting rods).
_ALWAYS = (
    (0x1160, 0x11FF), (0xD7B0, 0xD7FF), (0x2630, 0x2637), (0x268A, 0x268F),
    (0x4DC0, 0x4DFF), (0x1D300, 0x1D356), (0x1D360, 0x1D376),
)  # fmt: skip
# Wide characters that are emoji by default (Emoji_Presentation), which the amendment
# excludes: the wide symbols of the BMP (apart from the two angle brackets and the CJK
# symbols the amendment's notes list) and everything wide from U+1F000 but the
# enclosed ideographs.
_EMOJI_BMP = (0x231A, 0x2BFF)
_EMOJI_ASTRAL = (0x1F000, 0x1FAFF)
_ENCLOSED_IDEOGRAPHS = frozenset(
    [0x1F200, 0x1F202, 0x1F237, 0x1F23B, *range(0x1F210, 0x1F21A), *range(0x1F21B, 0x1F22F),
     0x1F230, 0x1F231, *range(0x1F240, 0x1F249), *range(0x1F260, 0x1F266)]
)  # fmt: skip


@lru_cache(maxsize=4096)
def is_cjk(char: str) -> bool:
    """A CJK character as the amendment defines it (East Asian Width W, F or H and not an
    emoji by default, or Hangul), from Python's Unicode data."""
    code = ord(char)
    if code < 0x1100:
        return False
    if any(low <= code <= high for low, high in _ALWAYS):
        return True
    if unicodedata.east_asian_width(char) not in ("W", "F", "H"):
        return False
    if _EMOJI_BMP[0] <= code <= _EMOJI_BMP[1]:
        return code in (0x2329, 0x232A)
    if _EMOJI_ASTRAL[0] <= code <= _EMOJI_ASTRAL[1]:
        return code in _ENCLOSED_IDEOGRAPHS
    return True


def is_space(char: str) -> bool:
    return char in _SPACE


def is_punctuation(char: str) -> bool:
    """cmark-gfm 0.29's punctuation: ASCII punctuation and Unicode's P categories."""
    if char.isascii():
        return char in _ASCII_PUNCT
    return unicodedata.category(char).startswith("P")


def _is_vs(char: str) -> bool:  # a non-emoji variation selector (U+FE00–U+FE0E)
    return "\ufe00" <= char <= "\ufe0e"


def _is_ivs(char: str) -> bool:  # an ideographic variation selector
    return "\U000e0100" <= char <= "\U000e01ef"


def cmark_flanking(before: str, after: str) -> tuple[bool, bool]:
    """(left, right) flanking as cmark-gfm computes it from the characters beside a run."""
    space_a, space_b = is_space(after), is_space(before)
    punct_a, punct_b = is_punctuation(after), is_punctuation(before)
    left = not space_a and (not punct_a or space_b or punct_b)
    right = not space_b and (not punct_b or space_a or punct_a)
    return left, right


def cjk_flanking(before2: str, before: str, after: str) -> tuple[bool, bool]:
    """(left, right) flanking under the amendment; ``before2`` is the character before
    ``before`` (a variation selector belongs to the character it follows)."""
    base = before2 if _is_vs(before) else before
    space_a, space_b = is_space(after), is_space(before)
    punct_a = is_punctuation(after)
    cjk_a, cjk_base = is_cjk(after), is_cjk(base)
    non_cjk_punct_a = punct_a and not cjk_a
    non_cjk_punct_b = is_punctuation(base) and not cjk_base
    left = not space_a and (
        not non_cjk_punct_a or space_b or non_cjk_punct_b or cjk_base or _is_ivs(before)
    )
    right = not space_b and (not non_cjk_punct_b or space_a or non_cjk_punct_a or cjk_a)
    return left, right


def marker_positions(
    text: str, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int]]:
    """``(run start, position)`` for each ``*`` run of ``text[start:end]`` that cmark-gfm
    reads otherwise than the amendment, with where :data:`MARKER` goes to agree."""
    end = len(text) if end is None else end
    for run in _RUN.finditer(text, start, end):
        position = _marker_for(text, run.start(), run.end())
        if position is not None:
            yield run.start(), position


def _marker_for(text: str, start: int, end: int) -> int | None:
    before_at = start - 1
    while before_at >= 0 and text[before_at] == "~":
        before_at -= 1
    after_at = end
    while after_at < len(text) and text[after_at] == "~":
        after_at += 1
    before = text[before_at] if before_at >= 0 else "\n"
    after = text[after_at] if after_at < len(text) else "\n"
    if before.isascii() and after.isascii():
        return None  # the amendment only differs beside wide characters
    before2 = text[before_at - 1] if before_at >= 1 else "\n"
    wanted = cjk_flanking(before2, before, after)
    if cmark_flanking(before, after) == wanted:
        return None
    if cmark_flanking(">", after) == wanted:
        return start  # <!--cjk-->**: punctuation before the run
    if cmark_flanking(before, "<") == wanted:
        return end  # **<!--cjk-->: punctuation after it
    return None
