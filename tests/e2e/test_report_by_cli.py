"""``report --by``: an attribute nobody defines is refused with a suggestion (exit 2,
nothing written); an attribute of the mapping, or one the input's complaints hold, groups
the rows. Runs in this process through typer's runner."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
RANGE = ["--from", "2026-01-01", "--to", "2026-01-31", "--now", "2026-03-01T00:00:00Z"]


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CRMSYNC_* pointing at an empty data folder and the repository's mapping."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRMSYNC_MAPPING", str(REPO / "mappings" / "salesforce.yaml"))
    monkeypatch.setenv("CRMSYNC_CHARTER", str(ASTON))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))
    yield tmp_path
    structlog.reset_defaults()


def complaints(tmp_path: Path, attributes: dict[str, Any]) -> Path:
    rows = [
        {"id": f"C-{i}", "events": {"received": "2026-01-05T10:00:00Z"}, "attributes": attributes}
        for i in range(3)
    ]
    path = tmp_path / "complaints.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def report(*args: str | Path) -> Any:
    return CliRunner().invoke(app, ["report", "-c", str(ASTON), *map(str, args), *RANGE])


def test_a_typo_in_by_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    """`--by chanel` on complaints holding `channel`: exit 2, the mapping's attributes
    listed, 'channel' suggested, no output file."""
    source = complaints(tmp_path, {"channel": "email"})
    out = tmp_path / "report.json"
    done = report("-i", source, "--by", "chanel", "-o", out)
    assert done.exit_code == 2, done.output
    assert "--by 'chanel': no complaint of" in done.stderr
    assert "(did you mean 'channel'?)" in done.stderr
    assert not out.exists()


def test_a_typo_in_by_without_a_readable_mapping_names_the_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--by chanel` run where the mapping file is not (the default `mappings/salesforce.yaml`
    is relative to the working folder): exit 2 naming the mapping that cannot be read, not
    a mapping that "defines none"; no output file."""
    missing = tmp_path / "elsewhere" / "salesforce.yaml"
    monkeypatch.setenv("CRMSYNC_MAPPING", str(missing))
    source = complaints(tmp_path, {"channel": "email"})
    out = tmp_path / "report.json"
    done = report("-i", source, "--by", "chanel", "-o", out)
    assert done.exit_code == 2, done.output
    assert f"the mapping {missing} cannot be read" in done.stderr
    assert "defines none" not in done.stderr and "it defines none" not in done.stderr
    assert not out.exists()


def test_an_attribute_only_the_input_holds_groups_the_rows(tmp_path: Path) -> None:
    """`--by team` (not in the mapping) on complaints holding `team`: grouped, exit 0."""
    source = complaints(tmp_path, {"channel": "email", "team": "north"})
    done = report("-i", source, "--by", "team", "--format", "json")
    assert done.exit_code == 0, done.output
    groups = {r["group"] for r in json.loads(done.stdout)["rows"]}
    assert groups == {"north"}


def test_a_mapping_attribute_no_complaint_fills_is_a_null_group(tmp_path: Path) -> None:
    """`--by level` (the mapping defines it) when no complaint holds it: one null group."""
    source = complaints(tmp_path, {"channel": "email"})
    done = report("-i", source, "--by", "level", "--format", "json")
    assert done.exit_code == 0, done.output
    assert {r["group"] for r in json.loads(done.stdout)["rows"]} == {None}


def test_the_profile_report_refuses_an_attribute_the_mapping_lacks() -> None:
    """From the profile's own state, `--by complainant_typ` is refused before anything is
    read; `--by complainant_type` runs."""
    done = report("--by", "complainant_typ", "--format", "json")
    assert done.exit_code == 2, done.output
    assert "--by 'complainant_typ': the mapping" in done.stderr
    assert "(did you mean 'complainant_type'?)" in done.stderr
    # a profile report reads an existing state store (it refuses to create one)
    from crmsync.bootstrap import open_state_store

    store = open_state_store(None, Path(os.environ["CRMSYNC_DATA_DIR"]))
    store.migrate()
    store.close()
    assert report("--by", "complainant_type", "--format", "json").exit_code == 0


def test_a_high_cardinality_by_folds_the_charts_and_keeps_every_row(tmp_path: Path) -> None:
    """`--by complainant_name` over 300 distinct names, HTML: the charts name 12 groups
    and one 'other (288 groups)'; the tables list all 300 names."""
    rows = [
        {
            "id": f"C-{i}",
            "events": {"received": "2026-01-05T10:00:00Z"},
            "attributes": {"channel": "email", "complainant_name": f"Person {i:03d}"},
        }
        for i in range(300)
    ]
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    page = tmp_path / "report.html"
    done = report("-i", source, "--by", "complainant_name", "-o", page)
    assert done.exit_code == 0, done.output
    html = page.read_text(encoding="utf-8")
    charts = html[html.index("<h2>Charts</h2>") : html.index("<h2>Figures per")]
    assert charts.count("other (288 groups)") >= 1
    named = {f"Person {i:03d}" for i in range(300) if f"Person {i:03d}" in charts}
    assert named == {f"Person {i:03d}" for i in range(12)}  # equal counts: name order
    tables = html.replace(charts, "")
    cell = '<td class="text"><span class="name">Person {:03d}</span></td>'
    assert all(cell.format(i) in tables for i in range(300))
