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


def _exception_in_one_line(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A library's exception as one ``error`` field, ``Type: message`` and the same of
    each cause, instead of a traceback."""
    exc_info = event.pop("exc_info", None)
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    parts: list[str] = []
    while isinstance(exc, BaseException) and len(parts) < 5:
        message = " ".join(str(exc).split())
        parts.append(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    if parts:
        event["error"] = " <- ".join(parts)
    return event


_LIBRARY_HANDLER = "crmsync-libraries"


def _route_library_logs(
    renderer: structlog.typing.Processor,
    safe: list[structlog.typing.Processor],
    level: str,
) -> None:
    """What the libraries log through ``logging`` (the job queue's engine, the connection
    pool) goes out as crmsync's own lines: the same format, one event per line, warnings
    and up (their info lines too at ``debug``)."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_in_one_line,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *safe, renderer],
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.set_name(_LIBRARY_HANDLER)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _LIBRARY_HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if level == "debug" else logging.WARNING)


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info"
) -> None:
    """Configure structlog to write to standard error, and the libraries' ``logging``
    through the same renderer."""
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
    _route_library_logs(renderer, safe, level)
