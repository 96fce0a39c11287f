"""Durations: a charter's ``N unit`` (semantics section 3) and the elapsed time of settings.

Two grammars share one ``N unit`` reader and one unit table:

* a charter duration is ``N unit`` with one of the seven ``Unit`` names (``parse_duration``);
* an elapsed time (settings) is also whole seconds, a second-based or short form
  (``30 seconds``, ``30s``, ``5m``) or ISO 8601 (``PT5M``), never business time
  (``elapsed_seconds``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from crmsync.errors import closest


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
# ASCII digits only (no "٢ days"); a minus sign is matched so that "-1 days" gets the ">= 1"
# message; the space is a group because a charter needs it ("2 days") and a setting not ("5m")
_AMOUNT_UNIT = re.compile(r"^\s*(-?\d+)(\s*)([a-z_]+)\s*$", re.ASCII)
_UNITS = "|".join(u.value[:-1] for u in Unit)
DURATION_PATTERN = rf"^\s*0*[1-9][0-9]*\s+({_UNITS})s?\s*$"
"""What ``parse_duration`` accepts, as a regular expression (for the charter JSON Schema)."""


@dataclass(frozen=True, slots=True)
class Duration:
    """A whole number (>= 1) of one unit."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


def parse_duration(text: str) -> Duration:
    """Parse ``"N unit"`` (unit singular or plural); raise ``ValueError`` saying what is
    wrong, with the duration meant when the unit is a near miss (``3 weks``, ``2 working
    days``, ``1 Day``: did you mean '3 weeks', '2 business_days', '1 day'?)."""
    match = _AMOUNT_UNIT.match(text)
    if not match or not match.group(2):
        raise ValueError(
            f"'{text}' is not a duration{_meant(text)}: write 'N unit', e.g. '2 business_days' "
            f"(units: {', '.join(u.value for u in Unit)})"
        )
    amount = int(match.group(1))
    name = match.group(3)
    unit = _unit(name)
    if unit is None:
        raise ValueError(
            f"unknown unit '{name}' in '{text}'{_meant(text)} "
            f"(units: {', '.join(u.value for u in Unit)})"
        )
    if amount < 1:
        raise ValueError(f"'{text}': the number must be a whole number >= 1")
    return Duration(amount, unit)


def _unit(name: str) -> Unit | None:
    return _SINGULAR.get(name) or (Unit(name) if name in Unit._value2member_map_ else None)


def _unit_words() -> dict[str, Unit]:
    """The words people write for a unit, lower case and joined with ``_``: the names,
    singular or plural, "working" or "work" for "business", and min, mins, hr, hrs."""
    words: dict[str, Unit] = {**{u.value: u for u in Unit}, **_SINGULAR}
    words |= {"min": Unit.MINUTES, "mins": Unit.MINUTES, "hr": Unit.HOURS, "hrs": Unit.HOURS}
    for unit in Unit:
        if unit.is_business:
            plural = unit.value.removeprefix("business_")
            for word in ("working", "work"):
                words[f"{word}_{plural}"] = words[f"{word}_{plural[:-1]}"] = unit
    return words


_UNIT_WORDS = _unit_words()
_BETWEEN_WORDS = re.compile(r"(?<=[a-z])[\s-]+(?=[a-z])", re.ASCII)


def _meant(text: str) -> str:
    """`` (did you mean '3 weeks'?)`` when ``text`` is a whole number and words close to
    one unit (a typo, another case, spaces for ``_``, "working" for "business"), else
    nothing. Close means a ``difflib`` ratio of at least 0.8: ``months`` suggests nothing
    (not ``minutes``)."""
    match = _AMOUNT_UNIT.match(_BETWEEN_WORDS.sub("_", text.lower()))
    if match is None or int(match.group(1)) < 1:
        return ""
    name = match.group(3)
    word = name if name in _UNIT_WORDS else closest(name, _UNIT_WORDS, cutoff=0.8)
    if word is None:
        return ""
    amount, unit = int(match.group(1)), _UNIT_WORDS[word].value
    return f" (did you mean '{amount} {unit[:-1] if amount == 1 else unit}'?)"


_UNIT_SECONDS = {Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400, Unit.WEEKS: 7 * 86400}
# the short and second-based forms elapsed time also takes: 30s, 5m, 2h, 1d, 1w, 30 seconds
_SHORT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins"), 60),
    **dict.fromkeys(("h", "hr", "hrs"), 3600),
    "d": 86400,
    "w": 7 * 86400,
}
_ISO_8601 = re.compile(
    r"^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
    re.ASCII | re.IGNORECASE,
)
_ISO_SECONDS = (7 * 86400, 86400, 3600, 60, 1)


def elapsed_seconds(text: str) -> int:
    """Whole seconds (>= 0) from elapsed-time text, case-insensitive.

    Accepts a number of seconds (``300``), ``N unit`` with an elapsed unit (``30 seconds``,
    ``5 minutes``, ``2 hours``, ``1 day``, ``1 week``), a short form (``30s``, ``5m``,
    ``2h``, ``1d``, ``1w``) or ISO 8601 in weeks, days, hours, minutes and seconds
    (``PT5M``, ``P1DT12H``). ``ValueError`` quotes the text and says what is wrong.
    """
    clean = text.strip()
    if clean.isdigit():
        return int(clean)
    if iso := _ISO_8601.match(clean):
        return sum(int(n or 0) * unit for n, unit in zip(iso.groups(), _ISO_SECONDS, strict=True))
    match = _AMOUNT_UNIT.match(clean.lower())
    if match and not match.group(1).startswith("-"):
        amount, name = int(match.group(1)), match.group(3)
        if name in _SHORT_SECONDS:
            return amount * _SHORT_SECONDS[name]
        unit = _unit(name) if match.group(2) and amount >= 1 else None  # the charter rule
        if unit is not None and unit in _UNIT_SECONDS:
            return amount * _UNIT_SECONDS[unit]
        if unit is not None:
            raise ValueError(
                f"'{text}' must be elapsed time (seconds, minutes, hours, days, weeks)"
            )
    raise ValueError(
        f"'{text}' is not a duration: write seconds (300), 'N unit' "
        "('30 seconds', '5 minutes', '2 hours', '1 day', '1 week'), a short form "
        "('30s', '5m', '2h', '1d', '1w') or ISO 8601 ('PT5M')"
    )
