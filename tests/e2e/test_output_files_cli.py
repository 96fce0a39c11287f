"""The files the CLI hands to people, as real processes: ``report --output`` (JSON, CSV,
HTML), ``evaluate --output``, ``archive export --output`` and ``local export --output``.

Each is created 0600 under umask 022. On a write that fails part-way (the process's file
size limit, ``RLIMIT_FSIZE``, makes the kernel refuse the write as a full disk would) the
command exits 1 naming the file, without a traceback, and the previous good file is still
there, whole, with no partial file beside it."""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
SAMPLE = REPO / "samples" / "aston-complaints.jsonl"
NOW = "2026-06-01T02:00:00Z"
PREVIOUS = "the previous good file\n"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder whose local CRM holds two closed complaints, archived."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "data"
    folder.mkdir()
    for name, value in env_for(folder).items():
        monkeypatch.setenv(name, value)
    with LocalCrm(folder / LOCAL_CRM_FILE) as crm:
        done = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "CreatedDate": "2026-03-02T10:00:00.000+0000",
                    "ClosedDate": "2026-03-10T10:00:00.000+0000",
                    "SuppliedName": f"Customer {i}",
                }
                for i in range(2)
            ]
            + [  # open ones, to make the local export larger than its small disk
                {"Type": "Complaint", "Description": f"{i} " + "words " * 80} for i in range(150)
            ],
        )
        assert all(r.ok for r in done)
    archived = CliRunner().invoke(app, ["archive", "run", "--now", NOW], catch_exceptions=False)
    assert archived.exit_code == 0, archived.output
    structlog.reset_defaults()
    yield folder
    structlog.reset_defaults()


def crmsync_command() -> list[str]:
    """The console script installed beside this interpreter, else on PATH, else `-m`."""
    beside = Path(sys.executable).with_name("crmsync")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crmsync")
    return [found] if found else [sys.executable, "-m", "crmsync"]


def env_for(folder: Path) -> dict[str, str]:
    return {
        "CRMSYNC_DATA_DIR": str(folder),
        "CRMSYNC_CHARTER": str(ASTON),
        "CRMSYNC_MAPPING": str(REPO / "mappings" / "salesforce.yaml"),
        "CRMSYNC_CONFIG": str(folder / "none.toml"),
        "CRMSYNC_SECRETS_DIR": str(folder / "no-secrets"),
        "CRMSYNC_ACTOR": "mary.staff",
    }


def commands(out: Path) -> dict[str, list[str]]:
    report = [
        "report", "-c", str(ASTON), "-i", str(SAMPLE), "--from", "2026-01-01",
        "--to", "2026-03-31", "--now", "2026-04-01T00:00:00Z", "-o", str(out),
    ]  # fmt: skip
    return {
        "report json": [*report, "--format", "json"],
        "report csv": [*report, "--format", "csv"],
        "report html": [*report, "--format", "html"],
        "evaluate": ["evaluate", "-c", str(ASTON), "-i", str(SAMPLE), "--now", NOW, "-o", str(out)],
        "archive export": ["archive", "export", "--output", str(out)],
        "local export": ["local", "export", "Case", "--output", str(out)],
    }


def run(
    args: Sequence[str], folder: Path, limit: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    return subprocess.run(
        [*crmsync_command(), *args],
        capture_output=True,
        text=True,
        env={**base, **env_for(folder), "NO_COLOR": "1"},
        cwd=REPO,
        timeout=120,
        check=False,
        preexec_fn=limit,
    )


def small_disk(size: int) -> Callable[[], None]:
    """Runs in the child: umask 022 and no file may grow past ``size`` bytes (writes beyond
    fail with EFBIG, as a full disk fails them with ENOSPC)."""

    def limit() -> None:
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


DISK = {
    "report json": 200,
    "report csv": 200,
    "report html": 200,
    "evaluate": 200,
    "archive export": 200,
    "local export": 40_000,  # SQLite's shared-memory file (32 KiB) must fit: it reads
}


def lenient_umask() -> None:
    os.umask(0o022)


NAMES = list(DISK)


@pytest.mark.parametrize("name", NAMES)
def test_the_output_file_is_created_readable_by_its_owner_only(data: Path, name: str) -> None:
    """Under umask 022 the command's --output file is 0600 and holds the whole output."""
    out = data.parent / "out.file"
    done = run(commands(out)[name], data, lenient_umask)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.stat().st_size > DISK[name]  # more than the small disk below lets through


@pytest.mark.parametrize("name", NAMES)
def test_a_full_disk_keeps_the_previous_file_and_leaves_no_partial_one(
    data: Path, name: str
) -> None:
    """The write fails part-way: exit 1 naming the file, no traceback, the previous file
    whole and nothing else beside it."""
    out = data.parent / "out.file"
    out.write_text(PREVIOUS)
    before = sorted(p.name for p in data.parent.iterdir())
    done = run(commands(out)[name], data, small_disk(DISK[name]))
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 1, done.stderr
    assert str(out) in done.stderr
    assert "File too large" in done.stderr
    assert out.read_text() == PREVIOUS
    assert sorted(p.name for p in data.parent.iterdir()) == before
