"""One run of a job (a sync cycle, an archive run, a state prune): its id, its bound log
context, its CRM call count, and one start and one finish event.

Every log line written inside the scope carries ``run_id`` and ``profile`` (structlog's
``bound_contextvars``, restored on exit even when the run fails). The run logs its start
event once it knows what to say (``started``), then on leaving the scope exactly one of:

* the finish event with ``status`` (``ok`` unless ``finish`` said otherwise), the fields
  given to ``finish``, ``crm_calls`` (when it counts calls) and ``duration_s``;
* the failed event with ``status="failed"``, ``error`` (``Type: message``), ``crm_calls``
  and ``duration_s``; the exception then goes on.

Durations come from ``timer`` (``time.perf_counter`` unless a test passes its own): the
length of a run is measured here, the run's instant (``now``) stays an input.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from crmsync.ports import CallCounter


@dataclass(frozen=True, slots=True)
class RunEvents:
    """The names of a job's three events."""

    started: str
    finished: str
    failed: str


@dataclass
class Run:
    """One run in progress (see the module docstring); given by ``run_scope``."""

    run_id: str
    profile: str
    _log: Any
    _events: RunEvents
    _calls: CallCounter | None
    _calls_before: int
    _status: str = "ok"
    _finish_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def crm_calls(self) -> int:
        """CRM calls made since the run began (0 for a run without a CRM)."""
        return 0 if self._calls is None else self._calls.total - self._calls_before

    def started(self, **fields: Any) -> None:
        """Log the start event with ``fields``."""
        self._log.info(self._events.started, **fields)

    def finish(self, status: str = "ok", /, **fields: Any) -> None:
        """Say how the run ended (logged with ``fields`` when the scope is left)."""
        self._status = status
        self._finish_fields = fields


def new_run_id() -> str:
    """A fresh run id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


@contextmanager
def run_scope(
    log: Any,
    events: RunEvents,
    *,
    profile: str,
    run_id: str | None = None,
    calls: CallCounter | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Iterator[Run]:
    """A run of ``profile`` logged on ``log`` with ``events``; ``calls`` is the CRM's call
    counter when the run talks to a CRM (see the module docstring)."""
    run = Run(
        run_id or new_run_id(),
        profile,
        log,
        events,
        calls,
        0 if calls is None else calls.total,
    )
    began = timer()
    with structlog.contextvars.bound_contextvars(run_id=run.run_id, profile=profile):
        counted: dict[str, Any] = {}
        try:
            yield run
        except Exception as exc:
            if calls is not None:
                counted["crm_calls"] = run.crm_calls
            log.error(
                events.failed,
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                **counted,
                duration_s=round(timer() - began, 3),
            )
            raise
        if calls is not None:
            counted["crm_calls"] = run.crm_calls
        log.info(
            events.finished,
            status=run._status,
            **{**run._finish_fields, **counted},
            duration_s=round(timer() - began, 3),
        )
