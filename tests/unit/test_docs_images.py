"""Every image the README and docs/ link to exists (a screenshot renamed or never made
shows as a broken picture to the reader)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"\]\(([^)\s]+\.(?:png|svg|jpe?g|gif))\)", re.IGNORECASE)


def linked_images() -> list[tuple[Path, str]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [(page, m.group(1)) for page in pages for m in IMAGE.finditer(page.read_text("utf-8"))]


def test_docs_link_images() -> None:
    """The report screenshots are linked (the check below is not vacuous)."""
    assert any(target.startswith("reports/") for _, target in linked_images())


def test_every_linked_image_exists() -> None:
    missing = [
        f"{page.relative_to(REPO)}: {target}"
        for page, target in linked_images()
        if "://" not in target and not (page.parent / target).is_file()
    ]
    assert missing == []
