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

import functools
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*))?$")
_ITEM = re.compile(r"( +)- (.*)$")
# A plain scalar we can take as is: no indicator first, no ': ' / ' #', no flow characters.
# Possessive: the three branches start differently, so there is only one way to match, and
# taking runs whole is 2-3x quicker than a character at a time.
_PLAIN = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@`\s](?:[^:#,\[\]{}]++|:(?! |$)|(?<! )#)*+")
_FLOW_ITEM = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@`\s][^:#,\[\]{}'\"]*")
_DOUBLE = re.compile(r'"([^"\\]*)"')
_SINGLE = re.compile(r"'((?:[^']|'')*)'")

_resolver = yaml.resolver.Resolver()
# PyYAML picks implicit resolvers by a scalar's first character (there are no wildcard
# ones in the safe resolver); any other first character means a plain string. These are
# the resolver's own (tag, regexp) lists, tried in its order, as ``Resolver.resolve`` does.
assert None not in _resolver.yaml_implicit_resolvers
_IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) for first, resolvers in _resolver.yaml_implicit_resolvers.items()
}
_constructor = yaml.constructor.SafeConstructor()
_CONSTRUCT = {
    "tag:yaml.org,2002:str": lambda node: node.value,
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": _constructor.construct_yaml_null,
    "tag:yaml.org,2002:timestamp": _constructor.construct_yaml_timestamp,
}


# Control flow within this module (the fast path gives up for PyYAML), not an error.
class _NotSimpleYaml(Exception):
    """The text uses YAML beyond the fast path."""


def _plain(text: str) -> Any:
    """A plain scalar, typed as PyYAML types it (str, int, float, bool, null, timestamp)."""
    for tag, regexp in _IMPLICIT.get(text[0], ()):
        if regexp.match(text):
            construct = _CONSTRUCT.get(tag)
            if construct is None:  # merge '<<' and value '=': YAML beyond this path
                raise _NotSimpleYaml
            return construct(ScalarNode(tag, text))
    return text  # PyYAML's default tag for a plain scalar: a string


# Categories, tags, flags and the like repeat from post to post: their values are
# remembered (all immutable: str, int, float, bool, None, date, datetime).
@functools.lru_cache(maxsize=4096)
def _plain_value(text: str) -> Any:
    if _PLAIN.fullmatch(text) is None:
        raise _NotSimpleYaml
    return _plain(text)


@functools.lru_cache(maxsize=4096)
def _flow_item(part: str) -> Any:
    if _DOUBLE.fullmatch(part):
        return part[1:-1]
    if _FLOW_ITEM.fullmatch(part):
        return _plain(part)
    raise _NotSimpleYaml


def _scalar(text: str) -> Any:
    text = text.rstrip(" ")
    if not text:
        return None
    # The first character decides which form it can be (none of the others can start so).
    first = text[0]
    if first == '"':
        match = _DOUBLE.fullmatch(text)
        if match is None:
            raise _NotSimpleYaml
        return match.group(1)
    if first == "'":
        match = _SINGLE.fullmatch(text)
        if match is None:
            raise _NotSimpleYaml
        return match.group(1).replace("''", "'")
    if first == "[":
        if not text.endswith("]"):
            raise _NotSimpleYaml
        return _flow_list(text[1:-1])
    return _plain_value(text)


def _flow_list(inner: str) -> list[Any]:
    if not inner.strip():
        return []
    return [_flow_item(part.strip(" ")) for part in inner.split(",")]


def _block_scalar(style: str, lines: list[str], final_break: bool) -> str:
    """``>`` or ``|`` with clip chomping, for one paragraph at one indentation."""
    indent = len(lines[0]) - len(lines[0].lstrip(" "))
    if indent == 0:
        raise _NotSimpleYaml
    texts = []
    for line in lines:
        if len(line) - len(line.lstrip(" ")) != indent or not line.strip():
            raise _NotSimpleYaml
        texts.append(line[indent:])
    if any(t.startswith((" ", "\t")) or t.endswith((" ", "\t")) for t in texts):
        raise _NotSimpleYaml  # more-indented lines and trailing blanks have their own rules
    return (" " if style == ">" else "\n").join(texts) + ("\n" if final_break else "")


# Characters PyYAML refuses, or treats as line breaks: leave the verdict to PyYAML. (The
# complement of what PyYAML's reader accepts, less line breaks: a short class compiles in
# 0.1 ms where the accepted ranges, negated, take 5 ms at every start.)
_UNUSUAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


@functools.lru_cache(maxsize=1024)
def _string_key(key: str) -> bool:
    """Whether PyYAML reads ``key`` (a plain scalar) as that very string."""
    return _plain(key) == key and isinstance(_plain(key), str)


def _load(text: str) -> dict[str, Any]:
    if _UNUSUAL.search(text):
        raise _NotSimpleYaml
    lines = text.split("\n")
    count = len(lines)
    result: dict[str, Any] = {}
    i = 0
    while i < count:
        line = lines[i]
        i += 1
        if not line.strip(" "):
            continue  # only spaces are blank to YAML: U+3000, U+00A0, U+2003 are not
        match = _KEY.match(line)
        if match is None:
            raise _NotSimpleYaml
        key, value = match.groups()
        if not _string_key(key):
            raise _NotSimpleYaml  # on, yes, no, true, null … are booleans or None to PyYAML
        if key in result:
            raise _NotSimpleYaml  # duplicate keys: leave them to PyYAML (_KEY rules out merges)
        if i == count or not lines[i].startswith(" "):  # the usual case: one line
            result[key] = _scalar(value) if value else None
            continue
        # Lines indented below this key belong to it.
        start = i
        while i < count and lines[i].startswith(" "):
            i += 1
        nested = lines[start:i]
        if value in (">", "|"):
            # Clip chomping keeps the last line break only if the text has one there.
            result[key] = _block_scalar(value, nested, final_break=i < count)
        elif value:
            raise _NotSimpleYaml  # a plain scalar continued on the next line
        else:
            indent = len(nested[0]) - len(nested[0].lstrip(" "))
            items = []
            for item_line in nested:
                item = _ITEM.fullmatch(item_line)
                if item is None or len(item.group(1)) != indent:
                    raise _NotSimpleYaml
                items.append(_scalar(item.group(2)))
            result[key] = items
    return result


def load(text: str) -> dict[str, Any] | None:
    """``text`` as ``yaml.safe_load`` would give it, or None when it is not simple YAML."""
    try:
        return _load(text) or None  # empty: PyYAML says None, the caller decides
    except (_NotSimpleYaml, ValueError, yaml.YAMLError):
        return None
