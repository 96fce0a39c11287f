"""The HTML report opened in a real headless browser (Debian's chromium).

The page must render every chart, make no request besides itself and log no error, print
on A4 with no table cut, and break a group's name only between words. The test is
skipped, saying why, when chromium is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.e2e.test_evaluate_cli import ASTON, CHARTERS, run
from tests.e2e.test_report_returns_cli import tsm

from browser_page import chromium_path, visit
from crmsync.demo.sample_complaints import generate_complaints
from crmsync.mapping.charter_file import load_charter

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "aston-complaints.jsonl"
SERVICE_DESK = CHARTERS / "examples" / "service-desk.yaml"
TEAMS = (
    "Customer Relations Northern Region Escalations Team",
    "housing/repairs_and_maintenance-north-west",
    "Antidisestablishmentarianismcomplaintsfeedbackandresolutionunit",
    "Board of Directors Office of the Independent Adjudicator for Higher Education",
    "Beschwerdemanagement",
    "web",
)
"""Long names of teams: words, words joined by -, / and _, a word longer than any column
can be, a 20-letter word, and a short one."""


@pytest.mark.slow  # a real browser process: 10-20 s
@pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_page_renders_every_chart_offline_without_errors(tmp_path: Path) -> None:
    """With --by and --compare: five charts drawn, no request leaves the page, no error,
    and it prints on A4 with no table cut."""
    what_if = tmp_path / "aston-fast.yaml"
    what_if.write_text(
        ASTON.read_text(encoding="utf-8")
        .replace("charter: aston", "charter: aston-fast", 1)
        .replace("target: 2 business_days", "target: 1 business_days", 1),
        encoding="utf-8",
    )
    page = tmp_path / "report.html"
    result = run(
        [
            "report",
            "-c",
            ASTON,
            "-i",
            SAMPLES,
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--now",
            "2026-07-01T00:00:00Z",
            "--by",
            "channel",
            "--compare",
            what_if,
            "--format",
            "html",
            "--output",
            page,
        ]
    )
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert "aston-fast" in text and "Flips" in text
    seen = visit(page)
    assert seen.requests == []
    assert seen.errors == []
    assert seen.title.startswith("Aston")
    assert len(seen.charts) == 5  # achievement, outcomes, response times, per group, A/B
    for chart in seen.charts:
        assert chart["width"] > 300 and chart["height"] > 100 and chart["shapes"] > 10
    # it prints on A4 (the page's own @page size): summary, five charts, the rows of a
    # sample year per month and channel, and the what-if with its flips take 2 to 10 pages
    assert 2 <= seen.a4_pages <= 10
    assert seen.clipped_tables == []  # no table wider than A4's printable width


@pytest.mark.slow  # a real browser process
@pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_page_without_by_prints_with_no_table_cut(tmp_path: Path) -> None:
    """The summary's fourteen columns fit A4's printable width without --by too."""
    page = tmp_path / "report.html"
    result = run(
        ["report", "-c", ASTON, "-i", SAMPLES, "--from", "2026-01-01", "--to", "2026-12-31",
         "--now", "2026-07-01T00:00:00Z", "--format", "html", "--output", page]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = visit(page)
    assert seen.errors == [] and seen.requests == []
    assert 1 <= seen.a4_pages <= 6  # summary, four charts and the monthly rows
    assert seen.clipped_tables == []


@pytest.mark.slow  # a real browser process
@pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_a_return_prints_on_one_page(tmp_path: Path) -> None:
    """The TSM return's page: no request, no error, one A4 page, no table cut."""
    page = tmp_path / "tsm.html"
    result = tsm("html", "--output", str(page))
    assert result.returncode == 0, result.stderr
    seen = visit(page)
    assert seen.errors == [] and seen.requests == []
    assert seen.a4_pages == 1
    assert seen.clipped_tables == []


@pytest.mark.slow  # a real browser process
@pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_long_group_names_break_only_between_words(tmp_path: Path) -> None:
    """The widest summary (a charter whose clocks pause: one column more) grouped by long
    team names, with a what-if: on the screen and printed on A4, no piece of a name (a
    word, or up to a -, / or _) is broken though it fits its column, the 63-letter word is
    broken only at its soft hyphens (shown as -), and no table is cut."""
    charter = load_charter(SERVICE_DESK)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    complaints = tmp_path / "complaints.jsonl"
    with complaints.open("w", encoding="utf-8") as out:
        for i, complaint in enumerate(
            generate_complaints(charter, 240, seed=3, start=start, span_days=180)
        ):
            complaint["attributes"]["team"] = TEAMS[i % len(TEAMS)]
            out.write(json.dumps(complaint, ensure_ascii=False) + "\n")
    what_if = tmp_path / "service-desk-fast.yaml"
    what_if.write_text(
        SERVICE_DESK.read_text(encoding="utf-8")
        .replace("charter: service-desk", "charter: service-desk-fast", 1)
        .replace("target: 10 business_days", "target: 5 business_days", 1),
        encoding="utf-8",
    )
    page = tmp_path / "report.html"
    result = run(
        ["report", "-c", SERVICE_DESK, "-i", complaints, "--from", "2026-01-01", "--to",
         "2026-06-30", "--now", "2026-07-15T00:00:00Z", "--by", "team", "--compare", what_if,
         "--format", "html", "--output", page]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert ">paused</th>" in text  # the widest summary
    assert f'title="{TEAMS[2]}"' in text
    seen = visit(page)
    assert seen.errors == [] and seen.requests == []
    assert seen.name_pieces > 1000  # screen and print: the check is not vacuous
    assert seen.split_names == []
    assert seen.clipped_tables == []
