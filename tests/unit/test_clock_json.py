"""The one serialiser of clock results and the one instant formatter (domain/clock_json.py,
domain/instants.py)."""

from __future__ import annotations

from crmsync.domain.charter import ClockKind
from crmsync.domain.clock_json import clock_result_fields, result_line
from crmsync.domain.evaluation import ClockResult, State
from crmsync.domain.instants import format_instant, format_instant_or_none

T = 1_775_000_000  # 2026-03-31T23:33:20Z

STARTED = ClockResult("resolve", ClockKind.DEADLINE, State.ON_TRACK, T, T + 86400, None, None)
RECURRING = ClockResult(
    "update", ClockKind.RECURRING, State.BREACHED, T, T + 60, T + 30, None, 2, 3, None, 1
)
COMPLETE = ClockResult(
    "papers", ClockKind.COMPLETENESS, State.PENDING, None, None, None, T, 0, None, ("é", "b")
)


def test_the_formatter_writes_utc_seconds_and_keeps_none() -> None:
    """``format_instant`` writes ``YYYY-MM-DDTHH:MM:SSZ``; the None-keeping form gives None."""
    assert format_instant(T) == "2026-03-31T23:33:20Z"
    assert format_instant_or_none(T) == "2026-03-31T23:33:20Z"
    assert format_instant_or_none(None) is None


def test_fields_follow_the_contract_order_with_instants_as_text() -> None:
    """A started deadline clock: clock, state, the four instants (None where unset) and
    the occurrence, in that order; no optional field."""
    fields = clock_result_fields(STARTED)
    assert list(fields.items()) == [
        ("clock", "resolve"),
        ("state", "on_track"),
        ("started_at", "2026-03-31T23:33:20Z"),
        ("due_at", "2026-04-01T23:33:20Z"),
        ("warn_at", None),
        ("stopped_at", None),
        ("occurrence", 0),
    ]


def test_optional_fields_appear_only_where_the_clock_has_them() -> None:
    """Breaches and extensions for a recurring clock, missing (as a list) for a
    completeness clock; ``kind=True`` adds the clock's kind after its id (the archive)."""
    recurring = clock_result_fields(RECURRING)
    assert (recurring["breaches"], recurring["extensions"]) == (3, 1)
    assert "missing" not in recurring
    complete = clock_result_fields(COMPLETE, kind=True)
    assert complete["missing"] == ["é", "b"]
    assert list(complete)[:3] == ["clock", "kind", "state"]
    assert complete["kind"] == "completeness"


def test_result_line_is_the_contract_line() -> None:
    """``crmsync evaluate``'s line: the complaint id first, JSON with ASCII escapes."""
    assert result_line("C-é", COMPLETE) == (
        '{"complaint_id": "C-\\u00e9", "clock": "papers", "state": "pending", '
        '"started_at": null, "due_at": null, "warn_at": null, '
        '"stopped_at": "2026-03-31T23:33:20Z", "occurrence": 0, '
        '"missing": ["\\u00e9", "b"]}'
    )
    assert result_line("C-1", RECURRING).endswith(
        '"occurrence": 2, "breaches": 3, "extensions": 1}'
    )
