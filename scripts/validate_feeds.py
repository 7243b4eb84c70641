"""Validate every RSS and Atom feed below folders with the W3C feed validator, offline.

    python scripts/validate_feeds.py public/ [more folders or files] [--allow KIND]

The validator (w3c/feedvalidator, the code behind validator.w3.org/feed) is not published
as a package; a copy of it lives in scripts/vendor/feedvalidator (see VENDORED.md there).
Each feed is checked against its own ``rel="self"`` URL, at the level the online service
uses ("AA"). Errors and warnings are printed by kind, with a count and the first place
each was seen. Exit status 1 when there is an error, or a warning of a kind not expected:
DuplicateUpdated ("Two entries with the same value for atom:updated") is expected when
posts carry only a date (they share midnight; see the README, "Validating feeds");
``--allow KIND`` accepts another kind. JSON Feed is not the validator's; the tests check
it against the JSON Feed 1.1 schema.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "vendor"))

import feedvalidator
from feedvalidator import compatibility
from feedvalidator import logging as events
from feedvalidator.i18n.en import messages

EXPECTED_WARNINGS = frozenset({"DuplicateUpdated"})
_SELF = re.compile(rb"<(?:atom:)?link\b[^>]*\brel=\"self\"[^>]*>")
_HREF = re.compile(rb"\bhref=\"([^\"]*)\"")
_MEDIA_TYPES = {b"<rss": "application/rss+xml", b"<feed": "application/atom+xml"}


@dataclass
class Findings:
    """What the validator said about a set of feeds: per kind, how often and where first."""

    feeds: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (level, kind)
    first: dict[tuple[str, str], str] = field(default_factory=dict)

    def failing(self, allowed: frozenset[str]) -> list[tuple[str, str]]:
        """The kinds that fail a run: every error, and warnings not in ``allowed``."""
        return sorted(key for key in self.counts if key[0] == "error" or key[1] not in allowed)


def feed_files(paths: Iterable[Path]) -> list[Path]:
    """The .xml files named, and those below the folders named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.xml")) if path.is_dir() else [path])
    return found


def validate(path: Path, findings: Findings) -> None:
    """Validate one feed file and add what the validator logs to ``findings``."""
    data = path.read_bytes()
    head = data[:1024]
    media_type = next((t for tag, t in _MEDIA_TYPES.items() if tag in head), "application/xml")
    link = _SELF.search(data)
    href = _HREF.search(link.group()) if link else None
    base = href.group(1).decode() if href else path.resolve().as_uri()
    try:
        logged = feedvalidator.validateStream(
            io.BytesIO(data), firstOccurrenceOnly=0, contentType=media_type, base=base
        )["loggedEvents"]
    except events.ValidationFailure as failure:
        logged = [failure.event]
    findings.feeds += 1
    for event in compatibility.AA(logged):
        if isinstance(event, events.Error):
            level = "error"
        elif isinstance(event, events.Warning):
            level = "warning"
        else:
            continue
        key = (level, _kind(event))
        findings.counts[key] += 1
        if key not in findings.first:
            line = event.params.get("line", "?")
            text = _message(event)
            findings.first[key] = f"{path}:{line}: {text}"


def _kind(event: events.LoggedEvent) -> str:
    """The event's class name; a SecurityRisk also names its tag (``SecurityRisk:iframe``:
    an embed kept from feeds.iframe_hosts, unlike ``SecurityRisk:script``)."""
    name = type(event).__name__
    if name == "SecurityRisk" and event.params.get("tag"):
        return f"{name}:{event.params['tag']}"
    return name


def _message(event: events.LoggedEvent) -> str:
    """The validator's own sentence for an event (as its web page shows it)."""
    for kind in type(event).__mro__:
        if kind in messages:
            params = {k: v for k, v in event.params.items()}
            params.setdefault("element", "?")
            params.setdefault("parent", "?")
            params.setdefault("value", "")
            params.setdefault("attr", "?")
            try:
                return str(messages[kind] % params)
            except (KeyError, TypeError, ValueError):
                return str(messages[kind])
    return type(event).__name__


def report(findings: Findings, allowed: frozenset[str]) -> list[str]:
    """Lines for the terminal: a summary, then each kind with its count and first place."""
    errors = sum(n for (level, _), n in findings.counts.items() if level == "error")
    warnings = sum(n for (level, _), n in findings.counts.items() if level == "warning")
    lines = [f"{findings.feeds} feeds: {errors} errors, {warnings} warnings"]
    for key in sorted(findings.counts):
        level, kind = key
        note = " (expected)" if level == "warning" and kind in allowed else ""
        lines.append(f"  {level} {kind}: {findings.counts[key]}{note}")
        lines.append(f"    first: {findings.first[key]}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="feed files or folders of them")
    parser.add_argument(
        "--allow", action="append", default=[], metavar="KIND", help="a warning kind to accept"
    )
    args = parser.parse_args(argv)
    allowed = EXPECTED_WARNINGS | frozenset(args.allow)
    files = feed_files(args.paths)
    if not files:
        print(f"no .xml feed files in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 1
    findings = Findings()
    for path in files:
        validate(path, findings)
    print("\n".join(report(findings, allowed)))
    return 1 if findings.failing(allowed) else 0


if __name__ == "__main__":
    sys.exit(main())
