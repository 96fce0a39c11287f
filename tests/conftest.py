"""Shared pytest setup for the whole suite.

This file's presence puts ``tests/`` on ``sys.path`` (pytest's default ``prepend`` import
mode), so test modules can import test-only helpers such as ``reference_calendar``.
"""

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults, so a CLI test that configured
    logging onto a stream that is closed afterwards cannot break a later test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
