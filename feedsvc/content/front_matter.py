"""A source file's bytes → decoded text → front matter mapping + body, with clear errors.

YAML between ``---`` lines or TOML between ``+++`` lines (python-frontmatter's handlers
find them), or none at all. Simple YAML takes the fast path in ``simple_yaml``, simple
TOML the one in ``simple_toml``; anything else goes to PyYAML (libyaml) or tomllib. Every
failure is a ContentError with the file's line.
"""

from __future__ import annotations

import codecs
import functools
import re
from datetime import date
from typing import Any

import yaml
from frontmatter.default_handlers import BaseHandler, YAMLHandler

from feedsvc.config import ParseOptions
from feedsvc.content import _simple_yaml as simple_yaml
from feedsvc.errors import ContentError
from feedsvc.models import Message

DATE_HELP = Message.of(
    "content.date_help", "write it as 2024-01-02, 2024-01-02 10:00 or 2024-01-02T10:00:00+09:00"
)
_TOML_LINE = re.compile(r"at line (\d+)")
_BAD_TIMESTAMP = re.compile(r"^[^:#\n]+:\s*['\"]?(\d{4})-(\d\d?)-(\d\d?)", re.MULTILINE)


class TOMLHandler(BaseHandler):
    """Hugo's ``+++`` TOML front matter via stdlib tomllib (the bundled handler needs ``toml``)."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str) -> dict[str, Any]:
        # Imported on the first TOML file: most sites have none (and ~10 ms saved at start).
        import tomllib

        from feedsvc.content import _simple_toml as simple_toml

        fast = simple_toml.load(fm)
        return fast if fast is not None else tomllib.loads(fm)


# Front matter is a few dozen values; aliases (&a … *a) may repeat parts of it, but not
# grow it past this many nodes: nine levels of nine-fold aliases in 1 KB ("billion
# laughs") make ~400 million, which formatting or walking would turn into gigabytes.
MAX_YAML_NODES = 10_000


# Control flow within this module (split_front_matter reports a ContentError for it).
class _AliasBomb(Exception):
    """The YAML's aliases expand beyond MAX_YAML_NODES (or refer to themselves)."""

    def __init__(self, key: str, line: int, reason: Message) -> None:
        super().__init__(str(reason))
        self.key, self.line, self.reason = key, line, reason


class FastYAMLHandler(YAMLHandler):
    """python-frontmatter's YAML handler, trying the simple-YAML fast path first; the rest
    composed by libyaml and measured (aliases expanded) before any Python object is made."""

    def load(self, fm: str, **kwargs: Any) -> Any:
        fast = simple_yaml.load(fm)
        if fast is not None:
            return fast
        loader = _SAFE_LOADER(fm)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if "*" in fm:  # only aliases repeat nodes: without one, size follows the text
                _check_expansion(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()


_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_expansion(root: yaml.Node) -> None:
    """Raise _AliasBomb naming the top-level key where the expanded node count (an alias
    counted as often as it is used) passes MAX_YAML_NODES. Linear in the distinct nodes:
    each node's expanded size is computed once, without recursion."""
    sizes: dict[int, int] = {}
    if isinstance(root, yaml.MappingNode):
        entries = [(k, v) for k, v in root.value]
    else:
        entries = [(root, root)]
    total = 1
    for key_node, value_node in entries:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
        line = key_node.start_mark.line
        try:
            total += _expanded(key_node, sizes) + _expanded(value_node, sizes)
        except _Cycle:
            cycle = Message.of("content.alias_cycle", "refers to itself through an alias")
            raise _AliasBomb(key, line, cycle) from None
        if total > MAX_YAML_NODES:
            raise _AliasBomb(
                key,
                line,
                Message.of(
                    "content.alias_bomb",
                    "expands through YAML aliases (*name) to more than %(limit)s values; "
                    "write the value out, or drop the aliases",
                    limit=f"{MAX_YAML_NODES:,}",
                ),
            )


# Control flow within this module (_check_expansion turns it into _AliasBomb).
class _Cycle(Exception):
    pass


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once its aliases are expanded (capped)."""
    if id(node) in sizes:
        return sizes[id(node)]
    open_nodes: set[int] = {id(node)}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        if children_done:
            size = 1 + sum(sizes[id(child)] for child in _children(current))
            sizes[id(current)] = min(size, MAX_YAML_NODES + 1)
            open_nodes.discard(id(current))
            continue
        stack.append((current, True))
        for child in _children(current):
            if id(child) in open_nodes:
                raise _Cycle
            if id(child) not in sizes:
                open_nodes.add(id(child))
                stack.append((child, False))
    return sizes[id(node)]


_HANDLERS: tuple[BaseHandler, ...] = (FastYAMLHandler(), TOMLHandler())


def _toml_error() -> type[ValueError]:
    """tomllib's error class (evaluated only when an error is being matched)."""
    import tomllib

    return tomllib.TOMLDecodeError


def decode_source(path: str, data: bytes, options: ParseOptions) -> str:
    limit = options.max_bytes
    if len(data) > limit:
        raise ContentError(
            path,
            Message.of(
                "content.too_big",
                "the file is %(size)s bytes, over content.max_bytes (%(limit)s); split the post "
                "or raise content.max_bytes",
                size=f"{len(data):,}",
                limit=f"{limit:,}",
            ),
        )
    skipped = 0
    encoding = options.encoding
    if data.startswith(codecs.BOM_UTF8):  # a UTF-8 BOM wins over the configured encoding
        data, skipped, encoding = data[3:], 3, "utf-8"
    utf8 = _is_utf8(encoding)
    # NUL is only a binary marker for ASCII-compatible codecs (UTF-16 text is full of it).
    nul = data.find(b"\x00") if utf8 else -1
    if nul >= 0:
        raise ContentError(
            path,
            Message.of(
                "content.nul_byte",
                "binary content (a NUL byte at byte offset %(offset)s); only text posts belong "
                "in the content folder: move the file out or change its extension",
                offset=nul + skipped,
            ),
            data.count(b"\n", 0, nul) + 1,
        )
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ContentError(
            path,
            Message.of(
                "content.undecodable",
                "cannot decode byte 0x%(byte)s at byte offset %(offset)s (line %(line)s) as "
                "%(encoding)s; save the file as UTF-8, or set content.encoding to the encoding "
                "it uses (for example euc-kr)",
                byte=f"{data[exc.start]:02x}",
                offset=exc.start + skipped,
                line=line,
                encoding=encoding,
            ),
            line,
        ) from None
    if not utf8 and "\x00" in text:
        raise ContentError(
            path,
            Message.of("content.nul_char", "binary content (a NUL character); move the file out"),
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text or text.isspace():
        raise ContentError(
            path,
            Message.of("content.empty", "the file is empty; write the post or delete the file"),
        )
    if b"\r" in data:  # memchr on bytes: cheaper than scanning the decoded text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


@functools.lru_cache(maxsize=8)
def _is_utf8(encoding: str) -> bool:
    """Whether ``encoding`` is UTF-8 by any of its names (looked up once, not per file)."""
    return codecs.lookup(encoding).name == "utf-8"


def split_front_matter(path: str, text: str) -> tuple[dict[str, Any], str, int, str, int]:
    """(front matter mapping, its text, its first line, body, body's first line)."""
    for handler in _HANDLERS:
        assert handler.FM_BOUNDARY is not None
        opening = handler.FM_BOUNDARY.match(text)
        if opening is not None:
            break
    else:
        return {}, "", 1, text, 1
    delimiter = text[:3]
    marker = "\n" + delimiter
    closing = None
    candidate = text.find(marker, opening.end())
    while candidate >= 0:  # str.find, then the regex: 5x a regex search
        closing = handler.FM_BOUNDARY.match(text, candidate + 1)
        if closing is not None:
            break  # not a scan of the whole body for a next one
        candidate = text.find(marker, candidate + 1)
    if closing is None:
        raise ContentError(
            path,
            Message.of(
                "content.unclosed",
                "the front matter opened by '%(delimiter)s' is never closed; add a line with "
                "'%(delimiter)s' after it",
                delimiter=delimiter,
            ),
            1,
        )
    fm = text[opening.end() : closing.start()]
    fm_line = text.count("\n", 0, opening.end()) + 1
    body_start = closing.end() + (text.startswith("\n", closing.end()))
    body_line = text.count("\n", 0, body_start) + 1
    loaded = _loaded(path, handler, fm, fm_line)
    return loaded, fm, fm_line, text[body_start:], body_line


def _loaded(path: str, handler: BaseHandler, fm: str, fm_line: int) -> dict[str, Any]:
    """The front matter ``fm`` read as a mapping; a ContentError naming the line when it
    cannot be."""
    try:
        loaded: object = handler.load(fm)
    except _AliasBomb as exc:
        raise ContentError(path, field_problem(exc.key, exc.reason), fm_line + exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = fm_line + mark.line if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ContentError(path, _yaml_help(problem), line) from None
    except yaml.reader.ReaderError as exc:
        line = fm_line + fm.count("\n", 0, exc.position)
        reason = Message.of(
            "content.yaml_character",
            "character #x%(character)s is not allowed in YAML; delete it",
            character=f"{exc.character:04x}",
        )
        raise ContentError(path, reason, line) from None
    except _toml_error() as exc:
        found = _TOML_LINE.search(str(exc))
        line = fm_line + int(found.group(1)) - 1 if found else None
        reason = Message.of(
            "content.toml_invalid",
            "front matter is not valid TOML: %(error)s; fix this line",
            error=str(exc),
        )
        raise ContentError(path, reason, line) from None
    except ValueError as exc:  # PyYAML builds dates like 2024-13-45 and fails outside its errors
        line = _bad_date_line(fm, fm_line)
        reason = Message.of(
            "content.impossible_date",
            "front matter has an impossible date (%(error)s); %(help)s",
            error=str(exc),
            help=DATE_HELP,
        )
        raise ContentError(path, reason, line) from None
    except (
        yaml.YAMLError,
        RecursionError,
        TypeError,
        AttributeError,
        LookupError,
        OverflowError,
    ) as exc:
        # PyYAML's constructors fail with plain Python errors on bad explicit tags
        # (e.g. "!!timestamp 'soon'" raises AttributeError): still the author's YAML.
        reason = Message.of(
            "content.unreadable_front_matter",
            "front matter cannot be read as %(kind)s (%(error)s); fix it",
            kind="TOML" if isinstance(handler, TOMLHandler) else "YAML",
            error=str(exc),
        )
        raise ContentError(path, reason, 1) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ContentError(
            path,
            Message.of(
                "content.not_a_mapping",
                "the front matter is a %(kind)s, not key/value pairs; write one 'key: value' "
                "per line",
                kind=type(loaded).__name__,
            ),
            fm_line,
        )
    return loaded


def _yaml_help(problem: str) -> Message:
    return Message.of(
        "content.yaml_invalid",
        "front matter is not valid YAML (%(error)s); fix this line: quote values that contain "
        "': ' or ' #' or start with [ { * & ! | > @ or a quote",
        error=problem,
    )


def field_problem(key: str, reason: Message) -> Message:
    """``'date' value 'soon' is not a date; …``: what is wrong with one front-matter key."""
    return Message.of("content.field", "'%(key)s' %(reason)s", key=key, reason=reason)


def _bad_date_line(fm: str, fm_line: int) -> int | None:
    for match in _BAD_TIMESTAMP.finditer(fm):
        year, month, day = (int(g) for g in match.groups())
        try:
            date(year, month, day)
        except ValueError:
            return fm_line + fm.count("\n", 0, match.start())
    return None
