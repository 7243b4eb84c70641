"""Compile the message catalogues: feedsvc/locales/<code>.po → <code>.mo beside it.

    python scripts/compile_catalogues.py          # write every .mo that differs
    python scripts/compile_catalogues.py --check  # write nothing; exit 1 naming stale ones

Run it after editing a .po file and commit both. feedsvc reads the .mo files at run time
with the standard library's gettext (no Babel, no .po parsing at start-up), and
tests/test_catalogue.py fails while a .mo is not what its .po compiles to now.

Compiling uses Babel's read_po and write_mo. The compiled header keeps what the .po says
(language, plural forms, charset) and leaves out what would change from run to run or
machine to machine (the moment of compiling, Babel's version), so that the same .po
always gives the same bytes.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parent.parent / "feedsvc" / "locales"
# Header fields Babel writes from the clock or its own version, not from the .po file.
VOLATILE_HEADERS = ("POT-Creation-Date:", "PO-Revision-Date:", "Generated-By:")


class _Reproducible:
    """A catalogue as write_mo reads it (its entries, header first, and its charset), with
    a header that depends on the .po file alone."""

    def __init__(self, catalogue: Catalog) -> None:
        self.catalogue = catalogue
        self.charset = catalogue.charset

    def __iter__(self) -> Iterator[Message]:
        header, *entries = self.catalogue
        kept = [
            line
            for line in str(header.string).split("\n")
            if line and not line.startswith(VOLATILE_HEADERS)
        ]
        yield Message("", "\n".join(kept) + "\n", flags=header.flags)
        yield from entries


def compiled(po: Path) -> bytes:
    """The .mo bytes of the catalogue ``po`` (its language is the file's name)."""
    with po.open("rb") as source:
        catalogue = read_po(source, locale=po.stem, abort_invalid=True)
    out = io.BytesIO()
    write_mo(out, cast(Catalog, _Reproducible(catalogue)))
    return out.getvalue()


def stale(locales: Path = LOCALES) -> list[tuple[Path, bytes]]:
    """The .mo files that are missing or differ from their .po, with their right bytes."""
    found = []
    for po in sorted(locales.glob("*.po")):
        mo = po.with_suffix(".mo")
        data = compiled(po)
        if not mo.is_file() or mo.read_bytes() != data:
            found.append((mo, data))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    outdated = stale()
    for mo, data in outdated:
        if args.check:
            print(f"{mo}: not what {mo.with_suffix('.po').name} compiles to", file=sys.stderr)
        else:
            mo.write_bytes(data)
            print(f"wrote {mo}")
    if not outdated:
        print("every catalogue is compiled")
    return 1 if args.check and outdated else 0


if __name__ == "__main__":
    sys.exit(main())
