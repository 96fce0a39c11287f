"""The image's build, replayed without Docker: the Dockerfile's own pip commands, in its order,
each stage in a fresh virtual environment holding only what that stage installs.

Stage 1 (build) gets the files its COPY lines name and runs its RUN lines that call pip (the
apt-get line installs the C compiler this machine already has); stage 2 (runtime) installs
crmsync from the wheels stage 1 made, exactly as its RUN line says. The installed ``crmsync``
then answers ``--version``, ``check`` and ``evaluate`` on the bundled sample, with the
mypyc-compiled modules (``.so`` files) being what Python imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_dockerfile import instructions  # this directory is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc): mypyc cannot build"),
]

# setup.py's COMPILED list, as modules
COMPILED_MODULES = [
    "crmsync.domain.instants",
    "crmsync.domain.durations",
    "crmsync.domain.business_calendar",
    "crmsync.domain.charter",
    "crmsync.domain.complaint",
    "crmsync.domain.evaluation",
    "crmsync.domain.action_planning",
    "crmsync.domain.report",
    "crmsync.service.evaluate_stream",
    "crmsync.service.report_stream",
]


def _run_stage(stage: int, venv: Path, workdir: Path, paths: dict[str, Path]) -> None:
    """Replay the stage's RUN lines that call pip, in order, with `python` the venv's.

    The image paths in them (``/wheels``) are mapped to directories under the test's tmp."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
    }
    runs = [i["value"] for i in instructions(stage) if i["instruction"] == "RUN"]
    pip_runs = [command for command in runs if "pip " in command]
    assert pip_runs, f"stage {stage} has no pip command"
    for line in pip_runs:
        command = line
        for image_path, local in sorted(paths.items(), key=lambda item: -len(item[0])):
            command = command.replace(image_path, str(local))
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    return path


def test_the_build_stage_compiles_and_the_runtime_stage_runs_the_compiled_engine(
    tmp_path: Path,
) -> None:
    # stage 1: the build context as its COPY lines name it
    context = tmp_path / "src-context"
    context.mkdir()
    for value in (i["value"] for i in instructions(0) if i["instruction"] == "COPY"):
        *sources, _target = value.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, context / source, ignore=shutil.ignore_patterns("*.so", "__pycache__")
                )
            else:
                shutil.copy2(origin, context / source)
    wheels = tmp_path / "wheels"
    _run_stage(0, _fresh_venv(tmp_path / "build-venv"), context, {"/wheels": wheels})
    built = sorted(p.name for p in wheels.glob("crmsync-*.whl"))
    assert len(built) == 1, built
    assert "-cp311-" in built[0] or "-cp3" in built[0], f"not a compiled wheel: {built}"

    # stage 2: COPY --from=build /wheels /tmp/wheels, then its pip install
    runtime_wheels = tmp_path / "runtime-wheels"
    shutil.copytree(wheels, runtime_wheels)
    app = tmp_path / "app"
    app.mkdir()
    (app / "mappings").symlink_to(ROOT / "mappings")  # COPY mappings ./mappings
    runtime = _fresh_venv(tmp_path / "runtime-venv")
    _run_stage(1, runtime, app, {"/tmp/wheels": runtime_wheels})

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")},
        "CRMSYNC_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("PYTHONPATH", None)
    crmsync = str(runtime / "bin" / "crmsync")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [crmsync, *args],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    version = run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "crmsync 0.1.0 (compiled)"

    checked = run("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    evaluated = run(
        "evaluate",
        "--charter",
        "mappings/charters/aston.yaml",
        "--input",
        str(ROOT / "samples" / "aston-complaints.jsonl"),
        "--now",
        "2026-04-08T12:00:00Z",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    lines = [json.loads(line) for line in evaluated.stdout.splitlines() if line.strip()]
    sample_ids = {
        json.loads(line)["id"]
        for line in (ROOT / "samples" / "aston-complaints.jsonl").read_text().splitlines()
        if line.strip()
    }
    assert {line["complaint_id"] for line in lines} == sample_ids

    # what the installed interpreter imports for the engine: the compiled extension modules,
    # from the installed wheel (not from this checkout)
    probe = subprocess.run(
        [
            str(runtime / "bin" / "python"),
            "-c",
            "import importlib, json, sys;"
            f"names = {COMPILED_MODULES!r};"
            "print(json.dumps({n: importlib.import_module(n).__file__ for n in names}))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    files = json.loads(probe.stdout)
    for name, file in files.items():
        assert file.endswith(".so"), (name, file)
        assert file.startswith(str(runtime)), (name, file)
