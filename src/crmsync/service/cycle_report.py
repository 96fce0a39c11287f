"""What one sync cycle did: counts, errors and (for a dry run) the planned writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record the cycle could not read or write: kept as a failure, never skipped silently."""

    kind: str  # mapping, complaint, flags, task, complete
    record_id: str
    message: str
    field: str | None = None
    transient: bool = False


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One write the cycle plans (shown by ``--dry-run``)."""

    kind: str  # flags, task, complete
    complaint_id: str
    target: str  # the CRM record id or the follow-up key
    summary: str


@dataclass
class CycleReport:
    """Counts of one cycle, as ``crmsync sync --json`` prints them."""

    run_id: str
    profile: str
    now: str
    dry_run: bool = False
    status: str = "running"
    records_read: int = 0
    complaints_evaluated: int = 0
    flags_written: int = 0
    tasks_created: int = 0
    tasks_completed: int = 0
    complaints_deleted: int = 0  # deleted in the CRM: forgotten by the state store
    crm_calls: int = 0
    watermark: str | None = None
    next_check: str | None = None
    states: dict[str, int] = field(default_factory=dict)  # complaints by status written
    clock_states: dict[str, int] = field(default_factory=dict)  # "clock:state" -> clocks
    errors: list[RecordFailure] = field(default_factory=list)
    planned: list[PlannedWrite] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = [asdict(e) for e in self.errors]
        if not self.dry_run:
            out.pop("planned")
        else:
            out["planned"] = [asdict(p) for p in self.planned]
        return out
