"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.bootstrap import Runtime, build_runtime
from fakes.local_settings import local_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """The real composition root on the embedded default in ``tmp_path``: local CRM, SQLite
    state, local archive (no key), the Aston charter and the bundled mapping."""
    built = build_runtime(local_settings(tmp_path))
    yield built
    built.close()
