"""Every pointer from the code to the docs leads somewhere: each ``docs/<file>.md`` named in a docstring,
comment or message of src/, services/ or gateway/ exists, and each section named beside it
(``docs/access-control.md, "Gateway-to-adapter trust"``) is a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("src", "services", "gateway")
SUFFIXES = (".py", ".cedar", ".cedarschema")
#: ``docs/<file>.md``, optionally followed by ``, "<section>"`` (possibly after a line break inside a
#: docstring or a ``#``, ``#:`` or ``//`` comment).
REFERENCE = re.compile(r'docs/([\w.-]+\.md)(?:,(?:\s|#:?|//)*"([^"\n]+)")?')


def _references() -> list[tuple[str, str, str | None]]:
    found = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in SUFFIXES or "gen" in path.relative_to(ROOT).parts:
                continue
            for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
                found.append((str(path.relative_to(ROOT)), match[1], match[2]))
    return found


def _headings(doc: Path) -> set[str]:
    return {
        line.lstrip("#").strip() for line in doc.read_text(encoding="utf-8").splitlines() if line[:1] == "#"
    }


def test_references_were_found() -> None:
    refs = _references()
    assert len(refs) > 20
    assert (
        "services/adapter/familyctx_adapter/trust.py",
        "access-control.md",
        "Gateway-to-adapter trust",
    ) in refs


def test_every_doc_and_section_named_by_the_code_exists() -> None:
    dangling = []
    for where, name, section in _references():
        doc = ROOT / "docs" / name
        if not doc.is_file():
            dangling.append(f"{where}: docs/{name} does not exist")
        elif section is not None and section not in _headings(doc):
            dangling.append(f'{where}: docs/{name} has no section "{section}"')
    assert dangling == []
