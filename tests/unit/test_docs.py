"""The README is the front door: two commands, links into docs/ that resolve, and nothing
in the repository pointing at files outside it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINKED_PAGES = {"regulated-charters.md", "salesforce-setup.md", "reports.md"}


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_first_code_block_holds_the_demo_and_the_full_test_command() -> None:
    """The README's first code block has exactly two commands: `make demo`, `make test-all`."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test-all"]


def _anchors(page: Path) -> set[str]:
    """The anchors a Markdown page's headings get, as GitHub makes them: lower case, every
    character but letters, digits, spaces, hyphens and underscores dropped, spaces to
    hyphens; a repeated heading gets -1, -2 ..."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(text):
        plain = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_every_relative_link_of_the_docs_resolves() -> None:
    """Each relative link in README.md and docs/*.md names a file of the repository, and a
    link to a section of a Markdown page names a heading that page has."""
    broken = []
    for page in _pages():
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target, anchor in LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve() if target else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(REPO)} -> {target}#{anchor} (no such section)")
    assert broken == []


def test_the_component_counts_the_setup_guide_quotes_are_the_kit_s() -> None:
    """Every "N components" and "N custom fields" in the Salesforce set-up guide is what the
    bundled mapping's kit holds: one component per custom field plus the permission set."""
    from crmsync.adapters.crm.salesforce_metadata import source_files
    from crmsync.mapping.field_mapping import load_mapping

    files = source_files(load_mapping(REPO / "mappings" / "salesforce.yaml"))
    fields = sum(1 for path in files if path.endswith(".field-meta.xml"))
    text = (REPO / "docs" / "salesforce-setup.md").read_text(encoding="utf-8")
    components = [int(n) for n in re.findall(r"(\d+) components", text)]
    quoted_fields = [int(n) for n in re.findall(r"(\d+) custom fields", text)]
    assert components, "the guide quotes no component count"
    assert set(components) == {fields + 1}
    assert set(quoted_fields) <= {fields}


def test_the_docs_cover_the_charter_language_mapping_operations_archive_and_decisions() -> None:
    """docs/ holds the pages the README sends users to, each linked from the docs index."""
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    for page in (
        "charter-language.md",
        "field-mapping.md",
        "operator-guide.md",
        "archive.md",
        "semantics-decisions.md",
        *sorted(LINKED_PAGES),
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
