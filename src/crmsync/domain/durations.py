"""Durations of a charter: ``N unit`` (semantics section 3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """The seven units a duration may be counted in."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    BUSINESS_MINUTES = "business_minutes"
    BUSINESS_HOURS = "business_hours"
    BUSINESS_DAYS = "business_days"

    @property
    def is_business(self) -> bool:
        return self.value.startswith("business_")


_SINGULAR = {u.value[:-1]: u for u in Unit}
# ASCII digits only (no "٢ days"); a minus sign is matched so that "-1 days" gets the ">= 1" message
_PATTERN = re.compile(r"^\s*(-?\d+)\s+([a-z_]+)\s*$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Duration:
    """A whole number (>= 1) of one unit."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


def parse_duration(text: str) -> Duration:
    """Parse ``"N unit"`` (unit singular or plural); raise ``ValueError`` saying what is wrong."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration: write 'N unit', e.g. '2 business_days' "
            f"(units: {', '.join(u.value for u in Unit)})"
        )
    amount = int(match.group(1))
    name = match.group(2)
    unit = _SINGULAR.get(name) or (Unit(name) if name in Unit._value2member_map_ else None)
    if unit is None:
        raise ValueError(
            f"unknown unit '{name}' in '{text}' (units: {', '.join(u.value for u in Unit)})"
        )
    if amount < 1:
        raise ValueError(f"'{text}': the number must be a whole number >= 1")
    return Duration(amount, unit)
