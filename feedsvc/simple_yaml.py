"""A fast path for the simple YAML that most front matter is; PyYAML for everything else.

Loading YAML with PyYAML costs ~50 µs a file even with libyaml, because the object
construction is pure Python; on a 10,000-post site that is half a second of a cold
build. Most front matter is flat ``key: value`` lines with quoted or plain scalars, flow
lists of plain words, block lists and one-paragraph folded scalars. ``load`` handles
exactly that and returns ``None`` for anything else, so the caller falls back to
PyYAML. Scalars are typed by PyYAML's own resolver and constructors, so the results are
the same as ``yaml.safe_load`` — the tests check this on a generated corpus and with
hypothesis.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*))?$")
_ITEM = re.compile(r"( +)- (.*)$")
# A plain scalar we can take as is: no indicator first, no ': ' / ' #', no flow characters.
_PLAIN = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@`\s](?:[^:#,\[\]{}]|:(?! |$)|(?<! )#)*")
_FLOW_ITEM = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@`\s][^:#,\[\]{}'\"]*")
_DOUBLE = re.compile(r'"([^"\\]*)"')
_SINGLE = re.compile(r"'((?:[^']|'')*)'")

_resolver = yaml.resolver.Resolver()
# PyYAML picks implicit resolvers by a scalar's first character (there are no wildcard
# ones in the safe resolver); any other first character means a plain string.
assert None not in _resolver.yaml_implicit_resolvers
_TYPED_STARTS = frozenset(_resolver.yaml_implicit_resolvers)
_constructor = yaml.constructor.SafeConstructor()
_CONSTRUCT = {
    "tag:yaml.org,2002:str": lambda node: node.value,
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": _constructor.construct_yaml_null,
    "tag:yaml.org,2002:timestamp": _constructor.construct_yaml_timestamp,
}


class _NotSimple(Exception):
    """The text uses YAML beyond the fast path."""


def _plain(text: str) -> Any:
    """A plain scalar, typed as PyYAML types it (str, int, float, bool, null, timestamp)."""
    if text[0] not in _TYPED_STARTS:
        return text  # no implicit type starts with this character: a string, as PyYAML says
    tag = _resolver.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    construct = _CONSTRUCT.get(tag)
    if construct is None:
        raise _NotSimple
    return construct(ScalarNode(tag, text))


def _scalar(text: str) -> Any:
    text = text.rstrip(" ")
    if not text:
        return None
    match = _DOUBLE.fullmatch(text)
    if match:
        return match.group(1)
    match = _SINGLE.fullmatch(text)
    if match:
        return match.group(1).replace("''", "'")
    if text.startswith("[") and text.endswith("]"):
        return _flow_list(text[1:-1])
    if _PLAIN.fullmatch(text):
        return _plain(text)
    raise _NotSimple


def _flow_list(inner: str) -> list[Any]:
    if not inner.strip():
        return []
    items = []
    for part in inner.split(","):
        part = part.strip(" ")
        if _DOUBLE.fullmatch(part):
            items.append(part[1:-1])
        elif _FLOW_ITEM.fullmatch(part):
            items.append(_plain(part))
        else:
            raise _NotSimple
    return items


def _block_scalar(style: str, lines: list[str], final_break: bool) -> str:
    """``>`` or ``|`` with clip chomping, for one paragraph at one indentation."""
    indent = len(lines[0]) - len(lines[0].lstrip(" "))
    if indent == 0:
        raise _NotSimple
    texts = []
    for line in lines:
        if len(line) - len(line.lstrip(" ")) != indent or not line.strip():
            raise _NotSimple
        texts.append(line[indent:])
    if any(t.startswith((" ", "\t")) or t.endswith((" ", "\t")) for t in texts):
        raise _NotSimple  # more-indented lines and trailing blanks have their own rules
    return (" " if style == ">" else "\n").join(texts) + ("\n" if final_break else "")


# Characters PyYAML refuses, or treats as line breaks: leave the verdict to PyYAML.
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _load(text: str) -> dict[str, Any]:
    if _UNUSUAL.search(text):
        raise _NotSimple
    lines = text.split("\n")
    result: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        match = _KEY.match(line)
        if match is None:
            raise _NotSimple
        key, value = match.group(1), (match.group(2) or "")
        if key in result or key in ("<<",):
            raise _NotSimple  # duplicate keys and merges: leave them to PyYAML
        # Lines indented below this key belong to it.
        nested = []
        while i < len(lines) and lines[i].startswith(" "):
            nested.append(lines[i])
            i += 1
        if value in (">", "|"):
            if not nested:
                raise _NotSimple
            # Clip chomping keeps the last line break only if the text has one there.
            result[key] = _block_scalar(value, nested, final_break=i < len(lines))
        elif nested:
            if value:
                raise _NotSimple  # a plain scalar continued on the next line
            items = []
            for item_line in nested:
                item = _ITEM.fullmatch(item_line)
                if item is None or len(item.group(1)) != len(nested[0]) - len(
                    nested[0].lstrip(" ")
                ):
                    raise _NotSimple
                items.append(_scalar(item.group(2)))
            result[key] = items
        else:
            result[key] = _scalar(value)
    return result


def load(text: str) -> dict[str, Any] | None:
    """``text`` as ``yaml.safe_load`` would give it, or None when it is not simple YAML."""
    try:
        return _load(text) or None  # empty: PyYAML says None, the caller decides
    except (_NotSimple, ValueError, yaml.YAMLError):
        return None
