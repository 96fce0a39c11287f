"""A charter: a business calendar and its clocks (semantics section 4)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from crmsync.domain.business_calendar import BusinessCalendar
from crmsync.domain.durations import Duration


@dataclass(frozen=True, slots=True)
class Condition:
    """``attribute`` equals one of ``allowed`` (equality or membership)."""

    attribute: str
    allowed: tuple[str | int | float | bool, ...]

    def holds(self, attributes: Mapping[str, object]) -> bool:
        """True when the attribute is present and equal to one allowed value.

        Numbers compare numerically (``2 == 2.0``); a numeric string equals its number
        (``"2" == 2``); strings compare exactly; booleans only equal booleans.
        """
        value = attributes.get(self.attribute)
        if value is None:
            return False
        return any(_same(value, allowed) for allowed in self.allowed)


def _same(value: object, allowed: object) -> bool:
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(allowed, int | float) and isinstance(value, str):
        try:
            return float(value) == float(allowed)
        except ValueError:
            return False
    if isinstance(value, int | float) and isinstance(allowed, str):
        try:
            return float(value) == float(allowed)
        except ValueError:
            return False
    return value == allowed


@dataclass(frozen=True, slots=True)
class Extension:
    """Section 4.4: a notice ``on`` at or before the due instant moves the due instant (and
    the warning) by ``by``, counted from the old instant as if it were a start; at most
    ``max`` times."""

    on: str
    by: Duration
    max: int = 1


EventPath = tuple[str, ...]
"""Where a model names events: attribute names from the clock (or notice) down to a field
holding one event name or a tuple of them. The charter file's keys are the same names, so
the path also locates the name in the file."""


def events_at(item: object, paths: tuple[EventPath, ...]) -> Iterator[str]:
    """The event names ``item`` holds at ``paths``, in path order (absent parts skipped)."""
    for path in paths:
        node: object = item
        for part in path:
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, str):
            yield node
        elif isinstance(node, tuple):
            yield from (n for n in node if isinstance(n, str))


@dataclass(frozen=True, slots=True)
class Pause:
    """Section 4.5: the clock stops from an instant of ``on`` to the next instant of
    ``off`` (or the clock's stop); a pause at or before the due instant moves the due
    instant (and the warning) by its length, measured in the kind of time of the
    duration it moves."""

    on: str
    off: str


class ClockKind(StrEnum):
    DEADLINE = "deadline"
    RECURRING = "recurring"
    COMPLETENESS = "completeness"


@dataclass(frozen=True, slots=True)
class DeadlineClock:
    """Section 4.1: from the first ``start`` to the first ``stop``, against a target."""

    id: str
    start: str
    stop: tuple[str, ...]
    target: Duration | None = None
    target_field: str | None = None
    warn_after: Duration | None = None
    when: tuple[Condition, ...] = ()
    kind: ClockKind = ClockKind.DEADLINE
    extend: Extension | None = None
    pause: Pause | None = None
    pending_key: str = field(init=False, repr=False, compare=False)
    """Key of the shared not-started result: the id, marked when the clock has ``extend``
    or ``pause`` (its result then carries ``extensions`` or ``pauses``), so that two
    charters' clocks of one id never share a wrong one."""

    def __post_init__(self) -> None:
        key = self.id
        if self.extend is not None:
            key += "\x00extend"
        if self.pause is not None:
            key += "\x00pause"
        object.__setattr__(self, "pending_key", key)

    @property
    def measure(self) -> Duration | None:
        """The duration its due instant is counted with (None: ``target_field``)."""
        return self.target

    def target_text(self) -> str:
        """Its target for people: ``2 business_days`` or ``attribute 'expected_decision'``."""
        return _target_text(self.target, self.target_field)

    @staticmethod
    def event_paths() -> tuple[EventPath, ...]:
        """Where this kind names events: attribute paths, which are the file's keys too."""
        return (
            ("start",),
            ("stop",),
            ("extend", "on"),
            ("pause", "on"),
            ("pause", "off"),
        )

    def events(self) -> tuple[str, ...]:
        """The event names it uses, each once, in ``event_paths`` order."""
        return tuple(dict.fromkeys(events_at(self, self.event_paths())))


@dataclass(frozen=True, slots=True)
class RecurringClock:
    """Section 4.2: cycles opened by ``start`` then each ``reset``, each due ``every`` later."""

    id: str
    start: str
    every: Duration
    reset: tuple[str, ...]
    stop: tuple[str, ...] = ()
    warn_after: Duration | None = None
    when: tuple[Condition, ...] = ()
    kind: ClockKind = ClockKind.RECURRING

    @property
    def measure(self) -> Duration:
        """The duration each cycle's due instant is counted with."""
        return self.every

    def target_text(self) -> str:
        """Its target for people: ``every 14 days``."""
        return f"every {self.every}"

    @staticmethod
    def event_paths() -> tuple[EventPath, ...]:
        """Where this kind names events: attribute paths, which are the file's keys too."""
        return (("start",), ("reset",), ("stop",))

    def events(self) -> tuple[str, ...]:
        """The event names it uses, each once, in ``event_paths`` order."""
        return tuple(dict.fromkeys(events_at(self, self.event_paths())))


@dataclass(frozen=True, slots=True)
class CompletenessClock:
    """Section 4.3: after ``start``, the ``require``d attributes must be filled by the target."""

    id: str
    start: str
    require: tuple[str, ...]
    target: Duration | None = None
    target_field: str | None = None
    warn_after: Duration | None = None
    when: tuple[Condition, ...] = ()
    kind: ClockKind = ClockKind.COMPLETENESS
    extend: Extension | None = None
    pause: Pause | None = None

    @property
    def measure(self) -> Duration | None:
        """The duration its due instant is counted with (None: ``target_field``)."""
        return self.target

    def target_text(self) -> str:
        """Its target for people: ``1 business_days`` or ``attribute 'x'``."""
        return _target_text(self.target, self.target_field)

    @staticmethod
    def event_paths() -> tuple[EventPath, ...]:
        """Where this kind names events: attribute paths, which are the file's keys too."""
        return (("start",), ("extend", "on"), ("pause", "on"), ("pause", "off"))

    def events(self) -> tuple[str, ...]:
        """The event names it uses, each once, in ``event_paths`` order."""
        return tuple(dict.fromkeys(events_at(self, self.event_paths())))


Clock = DeadlineClock | RecurringClock | CompletenessClock
CLOCK_TYPES: tuple[type[Clock], ...] = (DeadlineClock, RecurringClock, CompletenessClock)


def _target_text(target: Duration | None, target_field: str | None) -> str:
    return str(target) if target is not None else f"attribute '{target_field}'"


def clock_event_paths() -> tuple[EventPath, ...]:
    """Every path at which some clock kind names events (the charter check reads them)."""
    return tuple(dict.fromkeys(p for kind in CLOCK_TYPES for p in kind.event_paths()))


@dataclass(frozen=True, slots=True)
class Notice:
    """A follow-up raised once when an event happens (e.g. Aston's level-4 mediation).

    It has no deadline clock; ``due`` counts the follow-up's due date from the event,
    ``to`` names who gets it (``owner`` or ``manager``).
    """

    id: str
    on: str
    to: str = "owner"
    due: Duration | None = None
    when: tuple[Condition, ...] = ()

    @staticmethod
    def event_paths() -> tuple[EventPath, ...]:
        """Where a notice names its event."""
        return (("on",),)


@dataclass(frozen=True)
class Charter:
    """A named charter: calendar, clocks in report order, notices, and its source identity."""

    name: str
    title: str
    calendar: BusinessCalendar
    clocks: tuple[Clock, ...]
    notices: tuple[Notice, ...] = ()
    source: str = "<memory>"
    content_hash: str = ""
    language: str = "en"
    event_names: frozenset[str] = field(init=False)
    """Every event its clocks and notices use, derived from them."""

    def __post_init__(self) -> None:
        names = {e for c in self.clocks for e in c.events()}
        names.update(e for n in self.notices for e in events_at(n, Notice.event_paths()))
        object.__setattr__(self, "event_names", frozenset(names))

    def clock(self, clock_id: str) -> Clock:
        """The clock with ``clock_id``; ``KeyError`` if none."""
        for clock in self.clocks:
            if clock.id == clock_id:
                return clock
        raise KeyError(clock_id)
