"""Clock results as JSON: the one serialiser of a ``ClockResult``.

``clock_result_fields`` gives a result's fields as section 5 of the contract names and
orders them (instants as ``format_instant`` text, None when there is none; ``breaches``,
``missing``, ``extensions`` and ``pauses`` only where the clock has them). ``crmsync
evaluate`` writes them after the complaint id (``result_line``), the archive keeps them with
the clock's ``kind`` (``clock_result_fields(result, kind=True)``).

``crmsync evaluate``'s worker processes write the same text through a specialised writer
(``service/evaluate_stream.py``, ``_LineWriter``) that is measured faster; the tests hold
it to ``result_line`` byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from crmsync.domain.evaluation import ClockResult
from crmsync.domain.instants import format_instant_or_none


def clock_result_fields(result: ClockResult, *, kind: bool = False) -> dict[str, Any]:
    """``result`` as plain JSON data in the contract's order; ``kind`` adds the clock's
    kind (``deadline``, ``recurring``...) after its id."""
    out: dict[str, Any] = {"clock": result.clock}
    if kind:
        out["kind"] = result.kind.value
    out["state"] = result.state.value
    out["started_at"] = format_instant_or_none(result.started_at)
    out["due_at"] = format_instant_or_none(result.due_at)
    out["warn_at"] = format_instant_or_none(result.warn_at)
    out["stopped_at"] = format_instant_or_none(result.stopped_at)
    out["occurrence"] = result.occurrence
    if result.breaches is not None:
        out["breaches"] = result.breaches
    if result.missing is not None:
        out["missing"] = list(result.missing)
    if result.extensions is not None:
        out["extensions"] = result.extensions
    if result.pauses is not None:
        out["pauses"] = result.pauses
    return out


def result_line(complaint_id: str, result: ClockResult) -> str:
    """One ``crmsync evaluate`` output line (no newline) exactly as section 5 of the
    contract shows it: the complaint id, then ``clock_result_fields``."""
    return json.dumps({"complaint_id": complaint_id, **clock_result_fields(result)})
