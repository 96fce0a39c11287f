"""The canonical complaint (semantics section 1) and its validation."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from crmsync.domain.instants import format_instant, parse_instant
from crmsync.errors import BadComplaintError, InstantError

EARLIEST = int(datetime(1970, 1, 1, tzinfo=UTC).timestamp())
"""The first instant a complaint may carry (the business calendar is compiled from it on)."""
LATEST = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) - 1
"""The last instant a complaint may carry: a year like 0206 or 9999 is a typo, not a date."""


def check_range(instant: int, value: object) -> int:
    """``instant`` if it lies in ``EARLIEST..LATEST``; else ``InstantError`` naming ``value``.

    Keeps one mistyped year from stalling or crashing the evaluation of all the others.
    """
    if not EARLIEST <= instant <= LATEST:
        raise InstantError(
            f"{value!r} is outside the supported range "
            f"{format_instant(EARLIEST)} .. {format_instant(LATEST)}"
        )
    return instant


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint as the engine sees it: events are sorted UTC instants."""

    id: str
    events: Mapping[str, tuple[int, ...]]
    attributes: Mapping[str, object]

    def first(self, event: str, now: int) -> int | None:
        """The earliest instant of ``event`` that is ``<= now``, or ``None``."""
        instants = self.events.get(event)
        if instants and instants[0] <= now:
            return instants[0]
        return None

    def first_between(self, events: tuple[str, ...], low: int, now: int) -> int | None:
        """The earliest instant of any of ``events`` with ``low <= instant <= now``."""
        best: int | None = None
        for name in events:
            instants = self.events.get(name)
            if not instants:
                continue
            i = bisect_left(instants, low)
            if i < len(instants) and instants[i] <= now and (best is None or instants[i] < best):
                best = instants[i]
        return best

    def all_between(self, events: tuple[str, ...], low_exclusive: int, high: int) -> list[int]:
        """Every distinct instant of ``events`` with ``low_exclusive < instant <= high``, sorted."""
        found: set[int] = set()
        for name in events:
            for instant in self.events.get(name, ()):
                if low_exclusive < instant <= high:
                    found.add(instant)
        return sorted(found)


def complaint_from_json(data: object, zone: ZoneInfo, ref: str) -> Complaint:
    """Build a complaint from its JSON object; dates alone are local midnight in ``zone``.

    ``ref`` names the complaint in errors until its id is known (e.g. ``line 12``).
    Raises ``BadComplaintError`` for a missing id, a malformed or naive instant, an instant
    outside ``EARLIEST..LATEST``, or an event value that is not an instant or a list of
    instants. An event whose value is ``null`` (an empty CRM field) has not happened.
    """
    if not isinstance(data, dict):
        raise BadComplaintError(ref, "a complaint must be a JSON object")
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise BadComplaintError(ref, "the complaint has no id")
    complaint_id = str(raw_id)
    raw_events = data.get("events", {})
    if raw_events is None:
        raw_events = {}
    if not isinstance(raw_events, dict):
        raise BadComplaintError(complaint_id, "'events' must be an object of name -> instant(s)")
    events: dict[str, tuple[int, ...]] = {}
    for name, value in raw_events.items():
        if value is None:
            continue  # an empty CRM field: the event has not happened
        try:
            if isinstance(value, list):
                instants = [check_range(parse_instant(v, zone), v) for v in value]
                events[name] = tuple(sorted(instants))
            else:  # one instant, the common case: nothing to sort, range checked inline
                instant = parse_instant(value, zone)
                if not EARLIEST <= instant <= LATEST:
                    check_range(instant, value)  # raises, naming the value
                events[name] = (instant,)
        except InstantError as exc:
            raise BadComplaintError(complaint_id, f"event '{name}': {exc}") from exc
    attributes = data.get("attributes", {})
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise BadComplaintError(complaint_id, "'attributes' must be an object")
    return Complaint(complaint_id, events, attributes)
