"""Plain, XML-safe text from what authors write: illegal characters out, one-line values.

Every string that leaves the content pipeline passes through here: XML 1.0 refuses C0
controls (but tab, LF, CR), U+FFFE, U+FFFF and lone surrogates, and titles, names and
terms reach mail headers, where a CR or LF must never appear.
"""

from __future__ import annotations

import html
import re
import reprlib

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_LINE_BREAK = re.compile(r"\r\n?|\n")
# What one_line changes besides the ends: XML-illegal characters and line breaks.
NOT_ONE_LINE = re.compile("[\x00-\x08\x0a-\x1f\ufffe\uffff\ud800-\udfff]")
_TAG_DROP = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_BLOCK = re.compile(
    r"</?(?:p|div|h[1-6]|li|ul|ol|dl|dt|dd|table|thead|tbody|tr|td|th|blockquote|pre|"
    r"section|article|aside|header|footer|nav|figure|figcaption|br|hr)\b[^>]*>",
    re.IGNORECASE,
)
_TAG_ANY = re.compile(r"</?[A-Za-z][^>]*>|<![^>]*>|<\?[^>]*>")


_SHOWN = reprlib.Repr()  # Python 3.11's takes no keyword arguments
_SHOWN.maxlevel = 2
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = 3
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message may quote it: at most about ``limit`` characters, made
    without formatting more of the value than that (a YAML alias bomb expands to
    gigabytes when printed whole). Scalars as quoted text, containers abbreviated."""
    if isinstance(value, str | int | float) or type(value).__name__ in ("date", "datetime"):
        text = value if isinstance(value, str) else str(value)
        quoted = repr(text[: limit + 1])
        return quoted if len(text) <= limit and len(quoted) <= limit else quoted[: limit - 3] + "…"
    return _SHOWN.repr(value)


def strip_xml_illegal(text: str) -> str:
    """``text`` without C0 controls (except tab, LF, CR), U+FFFE, U+FFFF and surrogates."""
    return _XML_ILLEGAL.sub("", text)


def one_line(text: str) -> str:
    """XML-clean, with CR/LF as spaces, stripped: these values reach mail headers."""
    if NOT_ONE_LINE.search(text) is None:  # the usual case, one scan
        return text.strip()
    return _XML_ILLEGAL.sub("", _LINE_BREAK.sub(" ", text)).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:  # already plain (most excerpts)
        return strip_xml_illegal(" ".join(fragment.split()))
    text = _TAG_ANY.sub("", _TAG_BLOCK.sub(" ", _TAG_DROP.sub(" ", fragment)))
    return strip_xml_illegal(" ".join(html.unescape(text).split()))
