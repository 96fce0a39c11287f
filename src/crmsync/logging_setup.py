"""structlog configuration: one event per line, JSON off a terminal, readable on one.

The run id and record id are bound with ``structlog.contextvars`` so every line of a
cycle carries them.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from crmsync.terminal import escape_string_values

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _CurrentStderr:
    """Standard error as it is at each write: a progress display on the terminal swaps
    ``sys.stderr`` for a proxy that prints log lines above the display."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info"
) -> None:
    """Configure structlog to write to standard error."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=True)
        if console
        else structlog.processors.JSONRenderer()
    )
    safe: list[structlog.typing.Processor] = [escape_string_values] if console else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *safe,  # ids from the CRM cannot drive the terminal
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
