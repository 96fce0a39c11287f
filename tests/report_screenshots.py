"""Refresh the report screenshots under ``docs/reports/`` from current data and code.

For each bundled charter: 3,000 sample complaints received in 2026 (``crmsync demo``'s
generator, seed 7), its report per quarter as of 15 January 2027 as a page, and a PNG of
the page's top (summary, charts and counts) in headless chromium:

    make screenshots        # or: .venv/bin/python tests/report_screenshots.py [NAME ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_page import visit  # noqa: E402
from crmsync.demo.bundled_charters import CHARTERS  # noqa: E402
from crmsync.demo.sample_complaints import generate_complaints  # noqa: E402
from crmsync.mapping.charter_file import load_charter  # noqa: E402

COUNT = 3000
TOP_PX = 2600
"""The screenshot's height: the summary, the charts and the counts table of most charters."""


def screenshot(name: str, folder: Path) -> Path:
    """The page's paths are relative to the project folder (no machine's paths in docs)."""
    charter_file = Path("mappings") / "charters" / f"{name}.yaml"
    complaints = folder / f"{name}-sample-2026.jsonl"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    generated = generate_complaints(
        load_charter(REPO / charter_file), COUNT, seed=7, start=start, span_days=365
    )
    with (REPO / complaints).open("w", encoding="utf-8") as out:
        for complaint in generated:
            out.write(json.dumps(complaint, ensure_ascii=False) + "\n")
    page = folder / f"{name}.html"
    subprocess.run(
        [sys.executable, "-m", "crmsync", "report", "--charter", str(charter_file), "--input",
         str(complaints), "--from", "2026-01-01", "--to", "2026-12-31", "--period", "quarter",
         "--now", "2027-01-15T00:00:00Z", "--format", "html", "--output", str(page)],
        check=True,
        cwd=REPO,
    )  # fmt: skip
    target = REPO / "docs" / "reports" / f"{name}.png"
    seen = visit(REPO / page, target, TOP_PX)
    if seen.requests or seen.errors:
        raise SystemExit(f"{name}: the page made requests {seen.requests} or errors {seen.errors}")
    return target


def main(names: list[str]) -> None:
    folder = Path("build") / "screenshots"  # ignored by git
    (REPO / folder).mkdir(parents=True, exist_ok=True)
    for name in names or CHARTERS:
        print(screenshot(name, folder).relative_to(REPO))


if __name__ == "__main__":
    main(sys.argv[1:])
