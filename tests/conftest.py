"""Shared pytest setup for the whole suite.

This file's presence puts ``tests/`` on ``sys.path`` (pytest's default ``prepend`` import
mode), so test modules can import test-only helpers such as ``reference_calendar``.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

SRC = Path(__file__).resolve().parents[1] / "src" / "crmsync"


def _compiled_modules() -> list[tuple[Path, Path]]:
    """(extension, source) of every module compiled in place by ``make compile``."""
    pairs = []
    for extension in SRC.rglob("*.so"):
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        if source.exists():
            pairs.append((extension, source))
    return pairs


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test stale compiled modules: Python imports a ``.so`` before its ``.py``."""
    stale = [
        str(source.relative_to(SRC.parent))
        for extension, source in _compiled_modules()
        if source.stat().st_mtime > extension.stat().st_mtime
    ]
    if stale:
        pytest.exit(
            "compiled modules are older than their source: "
            + ", ".join(stale)
            + " (run `make compile` again, or `make clean-compiled` for pure Python)",
            returncode=4,
        )


def pytest_report_header(config: pytest.Config) -> str:
    """Say which build the suite runs against."""
    compiled = _compiled_modules()
    if not compiled:
        return "crmsync: pure Python"
    return f"crmsync: {len(compiled)} modules compiled by mypyc (make clean-compiled removes them)"


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults, so a CLI test that configured
    logging onto a stream that is closed afterwards cannot break a later test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
