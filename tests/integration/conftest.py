"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.bootstrap import Runtime, build_runtime
from crmsync.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """The real composition root on the embedded default in ``tmp_path``: local CRM, SQLite
    state, local archive (no key), the Aston charter and the bundled mapping."""
    settings = Settings(
        data_dir=tmp_path,
        charter=REPO / "mappings" / "charters" / "aston.yaml",
        mapping=REPO / "mappings" / "salesforce.yaml",
        state_url=None,
        archive_url=None,
        archive_key=None,
        profile="default",
    )
    built = build_runtime(settings)
    yield built
    built.close()
