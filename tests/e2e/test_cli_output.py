"""What the commands print and where, off a terminal: data on standard output, JSON log
lines (or nothing) on standard error, no progress display, nothing wrapped; help texts as
re-flowed paragraphs; commands that refuse what they do not do."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
CONTROL = re.compile(r"[\x1b\r]")  # colour and cursor codes, carriage returns (progress)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """No CRMSYNC_* setting from the outside; a config file that does not exist."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_") or name in ("FORCE_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    yield {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    structlog.reset_defaults()


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command in the repository, its output on pipes."""
    return subprocess.run(
        [sys.executable, "-m", "crmsync", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_demo_on_a_pipe_prints_whole_lines_and_commands_that_work(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """On pipes the demo prints its tables and next commands unwrapped, with no log line,
    colour or progress among them, and the printed commands work on the demo's data."""
    data = tmp_path / "a-data-folder-with-a-long-name-so-that-lines-pass-eighty-columns"
    env = {**clean_env, "CRMSYNC_DATA_DIR": str(data)}
    demo = run(["demo", "--count", "40"], env)
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    assert not CONTROL.search(demo.stdout)
    lines = demo.stdout.splitlines()
    # a wrapped cell would leave the other cells of its continuation row blank
    rows = [line.strip("│").split("│") for line in lines if line.startswith("│")]
    assert len(rows) > 10
    assert all(cell.strip() for row in rows for cell in row)
    assert any(len(line) > 80 for line in lines)
    [export] = [line.strip() for line in lines if line.strip().startswith("export ")]
    assert export == (
        f"export CRMSYNC_DATA_DIR={data / 'demo-aston'} CRMSYNC_PROFILE=demo-aston "
        "CRMSYNC_CHARTER=mappings/charters/aston.yaml"
    )
    [explain] = [line.strip() for line in lines if " explain --charter " in line]
    complaint_id = explain.rsplit(" ", 1)[1]
    with LocalCrm(data / "demo-aston" / "local-crm.sqlite3") as crm:
        assert complaint_id in {r.id for r in crm.export_records("Case")}
    assert ".venv/bin/crmsync sync --once" in [line.strip() for line in lines]

    # the printed environment works the demo's profile: the next cycle sees no change,
    # and the printed explain and report commands answer from the demo's data
    exported = dict(item.split("=", 1) for item in shlex.split(export)[1:])
    again = run(["sync", "--once", "--json"], {**env, **exported})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["flags_written"] == 0
    assert all(json.loads(line)["profile"] == "demo-aston" for line in again.stderr.splitlines())
    for printed in (explain, next(line.strip() for line in lines if " report " in line)):
        args = shlex.split(printed)[1:]
        answered = run(args, {**env, **exported})
        assert answered.returncode == 0, (printed, answered.stderr)
        assert answered.stdout.strip()


def test_evaluate_on_a_pipe_prints_only_data(clean_env: dict[str, str], tmp_path: Path) -> None:
    """Off a terminal evaluate prints its JSON lines and nothing else: no progress, no
    summary on standard error."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "C-1", "events": {"received": "2026-03-02T10:00:00Z"}}) + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        ["evaluate", "-c", str(ASTON), "-i", str(source), "--now", "2026-03-03T10:00:00Z"],
    )
    assert result.exit_code == 0
    assert result.stderr == ""
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # received Mon 10:00, level 1 due Tue 17:00 (1 business day); the others not started
    assert [(r["clock"], r["state"]) for r in rows] == [
        ("callback", "pending"),
        ("level1-resolution", "on_track"),
        ("level2-contact", "pending"),
        ("level2-resolution", "pending"),
        ("level3-resolution", "pending"),
    ]


def test_an_error_line_is_not_wrapped_on_a_pipe(clean_env: dict[str, str], tmp_path: Path) -> None:
    """An error message longer than 80 columns stays one line on standard error."""
    missing = tmp_path / ("x" * 90) / "complaints.jsonl"
    result = CliRunner().invoke(
        app, ["evaluate", "-c", str(ASTON), "-i", str(missing), "--now", "2026-03-03T10:00:00Z"]
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: --input: cannot read {missing}:")


def test_sync_without_once_refuses_and_points_at_run(clean_env: dict[str, str]) -> None:
    """`crmsync sync` alone does not start the endless worker: exit 2, naming `crmsync run`."""
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "--once" in result.stderr
    assert "'crmsync run'" in result.stderr


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and command group under ``group``, as argument paths."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def _paragraphs(help_text: str) -> list[list[str]]:
    """The description paragraphs of a help page (between the usage line and the first
    list of arguments, options or commands)."""
    body = re.split(r"\n(?:Arguments|Options|Commands):", help_text.split("\n\n", 1)[1])[0]
    return [p.splitlines() for p in body.strip("\n").split("\n\n")]


def test_every_help_page_is_reflowed_and_shows_no_bool_tags(clean_env: dict[str, str]) -> None:
    """Every command's help fills its lines to the width (the docstring's own line breaks
    are gone) and tags no flag with `<bool>`."""
    root: Any = typer.main.get_command(app)
    width = 100
    pages = 0
    for path in _commands(root):
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=width)
        assert result.exit_code == 0, path
        assert "<bool>" not in result.stdout, path
        for paragraph in _paragraphs(result.stdout):
            for line, following in itertools.pairwise(paragraph):
                next_word = following.split()[0]
                assert len(line) + 1 + len(next_word) > width, (path, line)
        pages += 1
    assert pages >= 15
