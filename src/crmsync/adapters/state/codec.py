"""What every state store shares: turning port dataclasses into rows and back.

All backends (memory, SQLite, PostgreSQL) validate through these functions, so a value
one store refuses every store refuses, with the same message naming the item and field:

- JSON columns must serialise with ``json.dumps`` (no NaN/Infinity) and hold no NUL
  character (PostgreSQL's JSONB cannot store one);
- text columns hold no NUL character (PostgreSQL's ``text`` cannot store one);
- integers (epoch seconds, occurrence) fit in a signed 64-bit column;
- watermarks are timezone-aware datetimes, stored to the microsecond, read back in UTC.

Bulk writes keep the last item of each key (a batch may repeat a key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from crmsync.domain.archive_entry import ChainHead
from crmsync.errors import StateStoreError
from crmsync.ports import LedgerEntry, LedgerStatus, ProfileState, RunRecord, StoredComplaint
from crmsync.redaction import redact_url

__all__ = ["redact_url"]  # the state stores and the profile lock import it from here

LEDGER_STATUSES: frozenset[str] = frozenset({"planned", "done", "failed", "completed"})

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An escaped NUL in json.dumps output: ``\u0000`` preceded by an even number of backslashes.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

# One encoder for all calls: ``json.dumps`` with options builds a new one every time.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

ComplaintRow = tuple[str, str, str, str, int | None, str, bool, int | None, str, int | None]
LedgerRow = tuple[str, str, str, str, int, str, str, str | None, str | None, int]
RunRow = tuple[str, str, int, int | None, str, str]


def encode_json(value: Any, what: str) -> str:
    """Serialise a JSON column value; ``StateStoreError`` naming ``what`` if it cannot be."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateStoreError(f"{what} is not JSON: {exc}") from exc
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise StateStoreError(f"{what} holds a NUL character (\\u0000), which cannot be stored")
    return text


def decode_json(text: str) -> Any:
    """Parse a JSON column value written by ``encode_json``."""
    return _DECODER.decode(text)


def check_text(value: object, what: str) -> str:
    """A text column value: a ``str`` without NUL characters."""
    if not isinstance(value, str):
        raise StateStoreError(f"{what} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise StateStoreError(f"{what} holds a NUL character, which cannot be stored")
    return value


def check_optional_text(value: object, what: str) -> str | None:
    """Like ``check_text`` but None is allowed."""
    return None if value is None else check_text(value, what)


def check_int(value: object, what: str) -> int:
    """An integer column value: an ``int`` (not bool) in the signed 64-bit range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateStoreError(f"{what} must be an integer, got {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise StateStoreError(f"{what} = {value} does not fit in 64 bits")
    return value


def check_optional_int(value: object, what: str) -> int | None:
    """Like ``check_int`` but None is allowed."""
    return None if value is None else check_int(value, what)


def check_aware(value: object, what: str) -> datetime:
    """A timezone-aware datetime, converted to UTC."""
    if not isinstance(value, datetime):
        raise StateStoreError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StateStoreError(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def last_wins(items: Sequence[T], key: Callable[[T], K]) -> list[T]:
    """The items with one per key, the last given winning, in first-seen key order."""
    by_key: dict[K, T] = {}
    for item in items:
        by_key[key(item)] = item
    return list(by_key.values())


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def complaint_row(item: StoredComplaint) -> ComplaintRow:
    """``(profile, id, canonical, flags, next_check, source_hash, closed, closed_at,
    clock_states, evaluated_at)`` for a complaint; ``closed_at`` is refused on a complaint
    that is not closed, ``clock_states`` must map text to text.

    The common case (plain values) takes a fast path without building messages; anything
    unusual goes through the checks below, which name the complaint and field.
    """
    profile, id, source_hash, next_check = item.profile, item.id, item.source_hash, item.next_check
    closed, closed_at = bool(item.closed), item.closed_at
    evaluated_at = item.evaluated_at
    if (
        (
            evaluated_at is None
            or (type(evaluated_at) is int and _INT64_MIN <= evaluated_at <= _INT64_MAX)
        )
        and type(profile) is str
        and type(id) is str
        and type(source_hash) is str
        and (
            next_check is None
            or (type(next_check) is int and _INT64_MIN <= next_check <= _INT64_MAX)
        )
        and (
            closed_at is None
            or (closed and type(closed_at) is int and _INT64_MIN <= closed_at <= _INT64_MAX)
        )
        and "\x00" not in profile
        and "\x00" not in id
        and "\x00" not in source_hash
    ):
        try:
            canonical = _ENCODER.encode(item.canonical)
            flags = _ENCODER.encode(item.flags)
            states = _ENCODER.encode(item.clock_states)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            if (
                "\\u0000" not in canonical
                and "\\u0000" not in flags
                and "\\u0000" not in states
                and _text_to_text(item.clock_states)
            ):
                return (
                    profile,
                    id,
                    canonical,
                    flags,
                    next_check,
                    source_hash,
                    closed,
                    closed_at,
                    states,
                    evaluated_at,
                )
    return _checked_complaint_row(item)


def _checked_complaint_row(item: StoredComplaint) -> ComplaintRow:
    where = f"complaint {item.profile!r}/{item.id!r}"
    closed_at = check_optional_int(item.closed_at, f"{where}: closed_at")
    if closed_at is not None and not item.closed:
        raise StateStoreError(f"{where}: closed_at is set but the complaint is not closed")
    if not _text_to_text(item.clock_states):
        raise StateStoreError(f"{where}: clock_states must map clock ids to states (text)")
    return (
        check_text(item.profile, f"{where}: profile"),
        check_text(item.id, f"{where}: id"),
        encode_json(item.canonical, f"{where}: canonical"),
        encode_json(item.flags, f"{where}: flags"),
        check_optional_int(item.next_check, f"{where}: next_check"),
        check_text(item.source_hash, f"{where}: source_hash"),
        bool(item.closed),
        closed_at,
        encode_json(item.clock_states, f"{where}: clock_states"),
        check_optional_int(item.evaluated_at, f"{where}: evaluated_at"),
    )


def _text_to_text(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        type(k) is str and type(v) is str for k, v in value.items()
    )


def complaint_from_row(row: Sequence[Any]) -> StoredComplaint:
    """A ``StoredComplaint`` from ``(profile, id, canonical, flags, next_check, source_hash,
    closed, closed_at, clock_states, evaluated_at)`` with the JSON columns as text."""
    profile, id, canonical, flags, next_check, source_hash, closed, closed_at, states = row[:9]
    evaluated_at = row[9]
    return StoredComplaint(
        profile=profile,
        id=id,
        canonical=decode_json(canonical),
        flags=decode_json(flags),
        next_check=None if next_check is None else int(next_check),
        source_hash=source_hash,
        closed=bool(closed),
        closed_at=None if closed_at is None else int(closed_at),
        clock_states=decode_json(states),
        evaluated_at=None if evaluated_at is None else int(evaluated_at),
    )


def ledger_row(entry: LedgerEntry) -> LedgerRow:
    """``(profile, key, complaint_id, clock, occurrence, state, status, crm_id, error,
    updated_at)`` for a ledger entry; the status must be one of ``LEDGER_STATUSES``."""
    where = f"ledger entry {entry.profile!r}/{entry.key!r}"
    if entry.status not in LEDGER_STATUSES:
        allowed = ", ".join(sorted(LEDGER_STATUSES))
        raise StateStoreError(f"{where}: status {entry.status!r} is not one of {allowed}")
    return (
        check_text(entry.profile, f"{where}: profile"),
        check_text(entry.key, f"{where}: key"),
        check_text(entry.complaint_id, f"{where}: complaint_id"),
        check_text(entry.clock, f"{where}: clock"),
        check_int(entry.occurrence, f"{where}: occurrence"),
        check_text(entry.state, f"{where}: state"),
        entry.status,
        check_optional_text(entry.crm_id, f"{where}: crm_id"),
        check_optional_text(entry.error, f"{where}: error"),
        check_int(entry.updated_at, f"{where}: updated_at"),
    )


def ledger_from_row(row: Sequence[Any]) -> LedgerEntry:
    """A ``LedgerEntry`` from a row in ``ledger_row``'s column order."""
    profile, key, complaint_id, clock, occurrence, state, status, crm_id, error, updated_at = row
    return LedgerEntry(
        profile=profile,
        key=key,
        complaint_id=complaint_id,
        clock=clock,
        occurrence=int(occurrence),
        state=state,
        status=_ledger_status(status),
        crm_id=crm_id,
        error=error,
        updated_at=int(updated_at),
    )


def _ledger_status(status: str) -> LedgerStatus:
    if status == "planned":
        return "planned"
    if status == "done":
        return "done"
    if status == "failed":
        return "failed"
    if status == "completed":
        return "completed"
    raise StateStoreError(f"ledger holds an unknown status {status!r}")


def run_row(run: RunRecord) -> RunRow:
    """``(profile, run_id, started_at, finished_at, status, summary)`` for a run."""
    where = f"run {run.profile!r}/{run.run_id!r}"
    return (
        check_text(run.profile, f"{where}: profile"),
        check_text(run.run_id, f"{where}: run_id"),
        check_int(run.started_at, f"{where}: started_at"),
        check_optional_int(run.finished_at, f"{where}: finished_at"),
        check_text(run.status, f"{where}: status"),
        encode_json(run.summary, f"{where}: summary"),
    )


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A ``RunRecord`` from ``(profile, run_id, started_at, finished_at, status, summary)``
    with the summary as JSON text."""
    profile, run_id, started_at, finished_at, status, summary = row
    return RunRecord(
        profile=profile,
        run_id=run_id,
        started_at=int(started_at),
        finished_at=None if finished_at is None else int(finished_at),
        status=status,
        summary=decode_json(summary),
    )


def finish_row(
    profile: str, run_id: str, finished_at: int, status: str, summary: Mapping[str, Any]
) -> tuple[int, str, str]:
    """``(finished_at, status, summary)`` validated for ``finish_run``."""
    where = f"run {profile!r}/{run_id!r}"
    return (
        check_int(finished_at, f"{where}: finished_at"),
        check_text(status, f"{where}: status"),
        encode_json(summary, f"{where}: summary"),
    )


# ------------------------------------------------------------------ archive witness


WitnessRow = tuple[str, int, str, int]


def witness_row(head: ChainHead, recorded_at: int) -> WitnessRow:
    """``(profile, seq, entry_hash, recorded_at)`` for an archive witness."""
    where = f"archive witness {head.profile!r}"
    return (
        check_text(head.profile, f"{where}: profile"),
        check_int(head.seq, f"{where}: seq"),
        check_text(head.entry_hash, f"{where}: entry_hash"),
        check_int(recorded_at, f"{where}: recorded_at"),
    )


def witness_moves(current: tuple[int, str] | None, row: WitnessRow, where: str) -> bool:
    """Whether ``row`` replaces the recorded ``(seq, entry_hash)``: only a later head does;
    the same ``seq`` with another hash raises ``StateStoreError`` (the archive changed)."""
    if current is None:
        return True
    seq, entry_hash = current
    if row[1] == seq and row[2] != entry_hash:
        raise StateStoreError(
            f"{where}: archive witness {row[0]!r}: entry {seq} was recorded with hash "
            f"{entry_hash[:16]}..., the archive now has {row[2][:16]}... there: it was rewritten"
        )
    return row[1] > seq


ProfileRow = tuple[str, int, int, str, str, int]


def profile_row(state: ProfileState) -> ProfileRow:
    """``(profile, follow_up_since, horizon, charter_hash, mapping_hash, updated_at)``."""
    where = f"profile state {state.profile!r}"
    return (
        check_text(state.profile, f"{where}: profile"),
        check_int(state.follow_up_since, f"{where}: follow_up_since"),
        check_int(state.horizon, f"{where}: horizon"),
        check_text(state.charter_hash, f"{where}: charter_hash"),
        check_text(state.mapping_hash, f"{where}: mapping_hash"),
        check_int(state.updated_at, f"{where}: updated_at"),
    )


def profile_from_row(row: Sequence[Any]) -> ProfileState:
    """A ``ProfileState`` from a ``profile_row``-shaped row."""
    profile, since, horizon, charter_hash, mapping_hash, updated_at = row
    return ProfileState(
        profile, int(since), int(horizon), str(charter_hash), str(mapping_hash), int(updated_at)
    )
