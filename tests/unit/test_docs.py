"""The README is the front door: two commands, links into docs/ that resolve, and nothing
in the repository pointing at files outside it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Pages other developers are writing right now: their links are checked once they exist.
WRITTEN_ELSEWHERE = {"regulated-charters.md", "salesforce-setup.md", "reports.md"}


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_first_code_block_holds_the_demo_and_the_full_test_command() -> None:
    """The README's first code block has exactly two commands: `make demo`, `make test-all`."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test-all"]


def test_every_relative_link_of_the_docs_resolves() -> None:
    """Each relative link in README.md and docs/*.md names a file of the repository."""
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists() and resolved.name not in WRITTEN_ELSEWHERE:
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


def test_the_docs_cover_the_charter_language_mapping_operations_archive_and_decisions() -> None:
    """docs/ holds the pages the README sends users to, each linked from the docs index."""
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    for page in (
        "charter-language.md",
        "field-mapping.md",
        "operator-guide.md",
        "archive.md",
        "semantics-decisions.md",
        *sorted(WRITTEN_ELSEWHERE),
    ):
        assert f"]({page})" in index, page


def test_nothing_points_outside_the_repository() -> None:
    """No README, doc, mapping, charter or source file names `shared/...` or `../shared`."""
    found = []
    roots = [REPO / "README.md", REPO / "docs", REPO / "mappings", REPO / "src" / "crmsync"]
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if path.suffix not in {".md", ".yaml", ".json", ".py", ".toml", ".txt"}:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "shared/" in line:
                    found.append(f"{path.relative_to(REPO)}:{number}")
    assert found == []
