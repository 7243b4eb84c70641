"""`feedsvc init`: copy the bundled site skeleton, never overwriting a user's file."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            found.extend(_walk(child, rel + "/"))
        else:
            found.append((rel, child))
    return found


def write_skeleton(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write the skeleton below ``directory``; returns (written, kept because they existed)."""
    written: list[Path] = []
    skipped: list[Path] = []
    for rel, source in _walk(resources.files("feedsvc.cli") / "site_skeleton"):
        target = directory / rel
        if target.exists():
            skipped.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        written.append(target)
    return written, skipped
