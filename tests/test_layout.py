"""The shape of feedsvc/ that issue 15 promised, kept: few top-level modules, imports that
flow one way between the layers, no import circles, no function over 80 lines, one class
per name, and every exception class in errors.py.

Everything is read with ast; nothing of feedsvc is imported, so a module that no longer
imports is still checked, and each failure lists every offender with file:line and the
rule it breaks.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "feedsvc"
MAX_TOP_LEVEL_ENTRIES = 12  # besides packages
MAX_FUNCTION_LINES = 80
ERRORS_MODULE = "feedsvc.errors"

# The top-level modules: the base layer every package may use.
BASE_MODULES = frozenset(
    {"__init__", "models", "errors", "clock", "config", "messages", "templating"}
)
# Which base modules each base module may import (models stands alone, and so does the clock;
# errors name models' Message (for type checking only); config reads into models and raises
# errors; the message catalogue shows models' Messages and raises errors; templating renders
# with settings and the catalogue).
BASE_ALLOWED: dict[str, frozenset[str]] = {
    "__init__": frozenset(),
    "models": frozenset(),
    "errors": frozenset({"models"}),
    "clock": frozenset(),
    "config": frozenset({"models", "errors"}),
    "messages": frozenset({"errors", "models"}),
    "templating": frozenset({"config", "errors", "messages"}),
}
# Top-level modules that are entry points, and the layer they belong to: `python -m feedsvc`
# is the command line.
ENTRY_POINTS = {"__main__": "cli"}

_ABOVE_WEB = {
    "base", "content", "feeds", "storage", "build", "delivery", "newsletter", "bounces", "web",
}  # fmt: skip
# Layer → the layers its modules may import (a layer always includes itself).
# base ← content ← feeds ← storage ← build, and storage ← delivery ← newsletter ← bounces ←
# web ← daemon ← cli; storage knows no domain package.
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "content": frozenset({"base", "content"}),
    "feeds": frozenset({"base", "content", "feeds"}),
    "storage": frozenset({"base", "storage"}),
    "build": frozenset({"base", "content", "feeds", "storage", "build"}),
    "delivery": frozenset({"base", "storage", "delivery"}),
    "newsletter": frozenset({"base", "content", "storage", "delivery", "newsletter"}),
    "bounces": frozenset({"base", "storage", "delivery", "newsletter", "bounces"}),
    "web": frozenset(_ABOVE_WEB),
    "daemon": frozenset(_ABOVE_WEB | {"daemon"}),
    "cli": frozenset(_ABOVE_WEB | {"daemon", "cli"}),
}

BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)


@dataclass(frozen=True)
class Module:
    """One .py file of feedsvc/, parsed."""

    name: str  # dotted: feedsvc.content.posts; a package's __init__ is the package's name
    path: Path
    tree: ast.Module

    @property
    def where(self) -> str:
        return self.path.relative_to(REPO).as_posix()

    @property
    def package(self) -> str:
        """The package a relative import in this module starts from."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """A module of ours that a module imports, and where."""

    target: str
    line: int
    at_import_time: bool  # False inside a function or under `if TYPE_CHECKING:`


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> tuple[Module, ...]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" not in path.parts:
            tree = ast.parse(path.read_bytes(), filename=str(path))
            found.append(Module(_dotted(path), path, tree))
    return tuple(found)


@cache
def module_names() -> frozenset[str]:
    return frozenset(module.name for module in modules())


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _targets(module: Module, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules of ours an import statement names (a submodule where `from a import b`
    names one, else the package or module it imports from)."""
    known = module_names()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                yield name
        return
    base = node.module or ""
    if node.level:
        anchor = module.package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            yield submodule
        elif base in known:
            yield base


def imports(module: Module) -> list[Import]:
    """Every import of one of our modules, anywhere in ``module`` (once per statement)."""
    found: dict[tuple[str, int], Import] = {}

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(module, node):
                found.setdefault((target, node.lineno), Import(target, node.lineno, at_import_time))
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            at_import_time = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, False)
            for statement in node.orelse:
                visit(statement, at_import_time)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time)

    visit(module.tree, True)
    return list(found.values())


def layer(name: str) -> str:
    """The layer of a dotted module name: its package below feedsvc, or base."""
    parts = name.split(".")
    if len(parts) == 1:
        return "base"
    if (PACKAGE / parts[1] / "__init__.py").is_file():
        return parts[1]
    return ENTRY_POINTS.get(parts[1], "base")


def base_module(name: str) -> str:
    """``feedsvc.config`` → ``config``; ``feedsvc`` → ``__init__``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _fail(rule: str, offenders: list[str]) -> None:
    if offenders:
        pytest.fail(f"{rule} ({len(offenders)}):\n  " + "\n  ".join(offenders), pytrace=False)


def test_feedsvc_holds_few_top_level_entries_besides_packages() -> None:
    entries = sorted(
        entry.name
        for entry in PACKAGE.iterdir()
        if entry.name != "__pycache__" and not (entry / "__init__.py").is_file()
    )
    if len(entries) > MAX_TOP_LEVEL_ENTRIES:
        _fail(
            f"feedsvc/ holds {len(entries)} entries besides packages, at most "
            f"{MAX_TOP_LEVEL_ENTRIES} allowed",
            [f"feedsvc/{name}" for name in entries],
        )


def _unplaced(module: Module) -> str | None:
    if layer(module.name) != "base" or base_module(module.name) in BASE_MODULES:
        return None
    return (
        f"{module.where}:1: a top-level module outside the base layer "
        f"({', '.join(sorted(BASE_MODULES))}): move it into a package, or give it a place "
        "in BASE_MODULES and BASE_ALLOWED"
    )


def _layering_offence(module: Module, found: Import) -> str | None:
    source, target = layer(module.name), layer(found.target)
    where = f"{module.where}:{found.line}"
    if target not in ALLOWED[source]:
        allowed = ", ".join(sorted(ALLOWED[source]))
        return f"{where}: {source} imports {found.target} ({target}); {source} may import {allowed}"
    if source != "base" or target != "base":
        return None
    importer, imported = base_module(module.name), base_module(found.target)
    may = BASE_ALLOWED.get(importer)
    if importer == imported or may is None or imported in may:
        return None
    allowed = ", ".join(sorted(may)) or "nothing of ours"
    return (
        f"{where}: base module {importer} imports {found.target}; {importer} may import {allowed}"
    )


def test_imports_respect_the_layers() -> None:
    """Lower layers never import higher ones, counting imports inside functions and under
    TYPE_CHECKING too: a lower layer that needs a higher one's name has the wrong home."""
    offenders = [message for module in modules() if (message := _unplaced(module))]
    for module in modules():
        for found in imports(module):
            if message := _layering_offence(module, found):
                offenders.append(message)
    _fail("imports against the layers", offenders)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (node → nodes it points to)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_no_import_circles() -> None:
    """Only imports that run when a module is imported count (top level, not under
    TYPE_CHECKING, not inside a function)."""
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], str] = {}
    for module in modules():
        graph.setdefault(module.name, set())
        for found in imports(module):
            if found.at_import_time and found.target != module.name:
                graph[module.name].add(found.target)
                lines.setdefault((module.name, found.target), f"{module.where}:{found.line}")
    offenders = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            members = set(component)
            edges = [
                f"{lines[(source, target)]} imports {target}"
                for source in component
                for target in sorted(graph[source] & members)
            ]
            offenders.append(f"circle of {len(component)}: " + "; ".join(edges))
    _fail("import circles", offenders)


def every_import(module: Module) -> Iterator[tuple[str, int]]:
    """(module of ours, line) for every import statement anywhere in ``module``: top level,
    inside functions and methods, under ``if TYPE_CHECKING:``: all of ``ast.walk``."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(module, node):
                if target != module.name:
                    yield target, node.lineno


def _shortest_path(
    graph: dict[str, set[str]], members: set[str], start: str, end: str
) -> list[str]:
    """The modules from ``start`` to ``end`` (both included), breadth first inside ``members``."""
    before: dict[str, str] = {start: start}
    queue = [start]
    while queue and end not in before:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt not in before:
                before[nxt] = node
                queue.append(nxt)
    path = [end]
    while path[-1] != start:
        path.append(before[path[-1]])
    return path[::-1]


def cycles_through(component: list[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle through each import inside ``component`` (a strongly connected
    one), each cycle once, as a chain that starts and ends at its smallest module."""
    members = set(component)
    found: set[tuple[str, ...]] = set()
    for source in component:
        for target in sorted(graph[source] & members):
            cycle = [source, *_shortest_path(graph, members, target, source)[:-1]]
            first = cycle.index(min(cycle))
            found.add(tuple(cycle[first:] + cycle[:first]))
    return [[*cycle, cycle[0]] for cycle in sorted(found)]


def test_no_import_circles_even_through_deferred_imports() -> None:
    """No circle at all, counting imports inside functions and under TYPE_CHECKING: an
    import moved into a function to dodge a circle still ties the two modules together
    (the circle is only hidden until the function runs). Each circle is listed as a chain
    of modules, with the file:line of each import."""
    graph: dict[str, set[str]] = {module.name: set() for module in modules()}
    lines: dict[tuple[str, str], str] = {}
    for module in modules():
        for target, line in every_import(module):
            graph[module.name].add(target)
            lines.setdefault((module.name, target), f"{module.where}:{line}")
    offenders = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            for chain in cycles_through(component, graph):
                links = [
                    f"{source} -({lines[(source, target)]})-> "
                    for source, target in pairwise(chain)
                ]
                offenders.append("".join(links) + chain[-1])
    _fail("import circles, counting imports inside functions", offenders)


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every function and method under ``tree``, with its qualified name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def test_no_function_over_80_lines() -> None:
    offenders = []
    for module in modules():
        for name, node in functions(module.tree):
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                offenders.append(f"{module.where}:{node.lineno}: {name} is {length} lines")
    _fail(f"functions over {MAX_FUNCTION_LINES} lines", offenders)


def classes() -> Iterator[tuple[Module, ast.ClassDef]]:
    for module in modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                yield module, node


def test_no_two_classes_share_a_name() -> None:
    """One name per concept: two classes called the same mean two things under one word."""
    seen: dict[str, list[str]] = {}
    for module, node in classes():
        seen.setdefault(node.name, []).append(f"{module.where}:{node.lineno}")
    offenders = [
        f"class {name} is defined {len(places)} times: {', '.join(places)}"
        for name, places in sorted(seen.items())
        if len(places) > 1
    ]
    _fail("classes sharing a name", offenders)


def _base_name(base: ast.expr) -> str:
    """``FeedsvcError`` / ``errors.FeedsvcError`` / ``Generic[T]`` → the class's own name."""
    if isinstance(base, ast.Subscript):
        base = base.value
    if isinstance(base, ast.Attribute):
        return base.attr
    return base.id if isinstance(base, ast.Name) else ""


def _looks_like_an_exception(name: str) -> bool:
    return name in BUILTIN_EXCEPTIONS or name.endswith(("Error", "Exception", "Warning"))


def exception_classes() -> list[tuple[Module, ast.ClassDef]]:
    """Classes deriving, directly or through our own classes, from an exception class."""
    every = list(classes())
    exceptions = set(BUILTIN_EXCEPTIONS)
    grew = True
    while grew:
        grew = False
        for _, node in every:
            bases = [_base_name(base) for base in node.bases]
            if node.name not in exceptions and any(
                name in exceptions or _looks_like_an_exception(name) for name in bases
            ):
                exceptions.add(node.name)
                grew = True
    return [(module, node) for module, node in every if node.name in exceptions]


def test_every_exception_class_lives_in_errors() -> None:
    """One error module: a caller finds every error feedsvc raises in feedsvc/errors.py
    (a private helper exception, named with a leading underscore, may stay where it is used)."""
    offenders = [
        f"{module.where}:{node.lineno}: exception class {node.name} outside feedsvc/errors.py"
        for module, node in exception_classes()
        if module.name != ERRORS_MODULE and not node.name.startswith("_")
    ]
    _fail("exception classes outside errors.py", offenders)
