"""Realistic sample complaints for any charter (demo data and benchmarks).

``generate_complaints`` yields canonical complaints (semantics section 1) that look like
a CRM export of the charter's organisation. One generator serves every charter: it
reads the charter's clocks as the story of a complaint and lets staff act on them.

* Received in the calendar's opening hours (a few before opening or in the evening by
  e-mail or web, and on closed days by e-mail or web only).
* Each clock started on the complaint's path is answered by its first stop, mostly on
  time, some late, a few never (then the complaint stays open), always within opening
  hours and counted with the calendar's own deadlines (``BusinessCalendar.deadline``).
* A clock that may also be stopped by an escalation (``escalated_lN``) escalates some
  complaints; ``level`` and a ``manager`` follow the escalation. A clock that may also
  be stopped by another event (a holding response, an interim update) gets that event
  before its due instant when the answer will be late.
* Extensions (``extend``) are notified before the due instant for some complaints.
* A clock that pauses (``pause``) waits on the customer for some complaints: a pause before
  its due instant, mostly resumed a few working days later (the answer then follows the
  resumption), now and then still open (the customer never answered).
* Recurring clocks get their resets (interim updates) while the complaint waits.
* Events that start a clock but that no clock produces are a customer's requests (short
  clocks: a call back, on the phone), a step before the final decision, the step after
  an escalation, or an appeal after the answer (mediation, stage 2).
* Completeness clocks find their attributes filled, now and then one left empty.
* Closed 0-3 working days after the last step.

Names and descriptions come from ``flavour``. Ids come from the ``RecordIds`` given (the
CRM's own kind, when seeding one), made from serial numbers unique per charter and
increasing for complaints; ``serial_ids`` is a neutral maker. Pure: no I/O and no clock;
every random choice comes from one ``random.Random(seed)``, so the same arguments always
give the same complaints. The generator only decides what looks real; the state of a
clock is the engine's job.
"""

from __future__ import annotations

import random
import re
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

from crmsync.demo.flavour import Flavour, flavour_for
from crmsync.demo.office_days import OfficeDays
from crmsync.domain.charter import (
    Charter,
    Clock,
    CompletenessClock,
    DeadlineClock,
    RecurringClock,
)
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.instants import parse_deadline_value

__all__ = ["RecordIds", "SampleComplaint", "generate_complaints", "serial_ids"]

RecordIds = Callable[[str, int], str]
"""The id of a ``complaint`` or a ``user`` from its serial number (0 <= serial < 62**12)."""


def serial_ids(kind: str, serial: int) -> str:
    """A neutral id: the kind, then the serial as 18 hexadecimal digits (ids sort by serial)."""
    return f"{kind}-{serial:018x}"


SampleComplaint = dict[str, Any]
"""A canonical complaint as JSON-ready data (semantics section 1)."""

_DAY = 86400
_POD = 62**10  # serials of one charter: its pod times this, plus a number below 62**6
_TAIL_DAYS = 500  # events may follow the last received date by this much (long escalations)
_RECEIVED, _FINAL, _CLOSED = "received", "decision", "closed"
_ESCALATION = re.compile(r"^escalated_l(\d+)$")
_CHANNELS = (("email", 0.35), ("phone", 0.31), ("web", 0.16), ("in_person", 0.10), ("letter", 0.08))
_REMOTE = ("email", "web")
_REQUEST_CHANNELS = ("phone",)  # a customer asks for a call back when nobody can answer
_BLANKS = ("", " ")  # how an empty CRM text field arrives: nothing, or a stray space
_PICKLISTS = frozenset({"channel", "complainant_type", "language", "level"})

# how staff answer a clock that is theirs to stop: (on time, late); the rest never
_ANSWER = (0.88, 0.08)  # acknowledgements, contacts, call backs
_DECISION = (0.73, 0.22)  # the final decision: some take longer
_FAST_TRACK = 0.55  # share decided within the shorter of two decision targets
_FIRST_ESCALATION, _LATER_ESCALATION = 0.38, 0.12
_APPEAL = 0.2  # answered complaints taken further (mediation, stage 2)
_WAITING = 0.3  # complaints that wait on the customer (when the clock pauses)
_NEVER_RESUMED = 0.2  # of those, the customer never answers
_STAND_IN = 0.85  # a late answer announced by a holding response or interim update
_EXTENDED = 0.18  # answers that get a notified extension (when the clock allows one)
_REQUEST = 0.35  # phone complaints that ask for a call back (when the charter has one)
_CLOSED_SHARE = 0.9


def _is_short(clock: DeadlineClock) -> bool:
    """A promise kept within a day or two: a call back rather than a decision."""
    if clock.target is None:
        return clock.target_field is not None
    unit, n = clock.target.unit, clock.target.amount
    if unit in (Unit.MINUTES, Unit.HOURS, Unit.BUSINESS_MINUTES, Unit.BUSINESS_HOURS):
        return True
    return unit in (Unit.BUSINESS_DAYS, Unit.DAYS) and n <= 2


class _Story:
    """What the charter's clocks say about the life of a complaint, worked out once."""

    def __init__(self, charter: Charter) -> None:
        self.charter = charter
        self.starting: dict[str, list[Clock]] = {}
        for clock in charter.clocks:
            self.starting.setdefault(clock.start, []).append(clock)
        deadlines = [c for c in charter.clocks if isinstance(c, DeadlineClock)]
        produced = {s for c in deadlines for s in c.stop}
        produced |= {e.on for c in deadlines if (e := c.extend) is not None}
        produced |= {r for c in charter.clocks if isinstance(c, RecurringClock) for r in c.reset}
        names = set(charter.event_names) | {_RECEIVED, _CLOSED}
        self.final = _FINAL if _FINAL in names else None
        self.levels = {e: int(m.group(1)) for e in names if (m := _ESCALATION.match(e))}
        self.many = {r for c in charter.clocks if isinstance(c, RecurringClock) for r in c.reset}
        self.requests: list[str] = []  # asked by the customer right after receipt
        self.preparations: list[str] = []  # the step before the final decision
        self.steps: dict[int, str] = {}  # after escalation to level N: its first step
        self.appeals: list[str] = []  # after the answer
        for event in dict.fromkeys(c.start for c in deadlines):
            if event in produced or event in (_RECEIVED, _CLOSED):
                continue
            clocks = [c for c in deadlines if c.start == event]
            stops = {s for c in clocks for s in c.stop}
            escalations = [self.levels[s] for s in stops if s in self.levels]
            if any(_is_short(c) for c in clocks):
                self.requests.append(event)
            elif escalations and (min(escalations) - 1) in self.levels.values():
                self.steps[min(escalations) - 1] = event
            elif self.final is not None and stops == {self.final}:
                self.preparations.append(event)
            else:
                self.appeals.append(event)
        self.has_levels = bool(self.levels)


class _Generator:
    """The state of one ``generate_complaints`` call: calendar tables, staff, id counter."""

    def __init__(
        self, charter: Charter, rng: random.Random, first: date, span_days: int, ids: RecordIds
    ) -> None:
        self.ids = ids
        self.story = _Story(charter)
        self.calendar = charter.calendar
        self.flavour: Flavour = flavour_for(charter)
        self.r = rng.random
        self.days = OfficeDays(charter.calendar, first - timedelta(days=1), span_days + _TAIL_DAYS)
        days = self.days
        # received days: working days weigh 1, weekends and holidays 0.2 (email and web only)
        self.received_cum = list(
            accumulate(1.0 if days.is_working(i) else 0.2 for i in range(1, span_days + 1))
        )
        self.channel_by_percent = tuple(
            channel for channel, share in _CHANNELS for _ in range(round(share * 100))
        )
        # the charter's own range of serials: its "pod" above 62**10
        self.pod = zlib.crc32(charter.name.encode()) % 3844 * _POD
        staff = 6 + int(self.r() * 6)
        self.staff_ids = tuple(self._user_id() for _ in range(staff))
        self.staff_names = tuple(self._person() for _ in range(staff))
        self.managers = [self._user_id() for _ in range(2)]
        self.case_high = 62**3 + int(self.r() * 40 * 62**3)
        self.case_low = int(self.r() * 3844)
        self.requires_language = any(
            "language" in c.require for c in charter.clocks if isinstance(c, CompletenessClock)
        ) or any(w.attribute == "language" for c in charter.clocks for w in c.when)
        # per complaint
        self.events: dict[str, list[int]] = {}
        self.attributes: dict[str, object] = {}
        self.last = 0
        self.stalled = False

    # ------------------------------------------------------------------ small choices
    def _pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.r() * len(options))]

    def _share(self, options: tuple[tuple[str, float], ...]) -> str:
        u = self.r()
        for value, share in options:
            u -= share
            if u < 0:
                return value
        return options[-1][0]

    def _between(self, low: int, high: int) -> int:
        """A whole number in ``[low, high]``."""
        return low + int(self.r() * (high - low + 1))

    def _person(self) -> str:
        return self._pick(self.flavour.people)

    def _user_id(self) -> str:
        return self.ids("user", self.pod + int(self.r() * 62**6))

    def _case_id(self) -> str:
        """The next complaint id: unique and increasing."""
        low = self.case_low + 1 + int(self.r() * 7)
        if low >= 3844:
            self.case_high += 1
            low -= 3844
        self.case_low = low
        return self.ids("complaint", self.pod + self.case_high * 3844 + low)

    # ------------------------------------------------------------------ time
    def _received(self, index: int, count: int) -> tuple[int, str]:
        """``(instant, channel)`` of the ``index``-th of ``count`` complaints."""
        r, days = self.r, self.days
        cum = self.received_cum
        day = 1 + min(bisect_right(cum, (index + r()) / count * cum[-1]), len(cum) - 1)
        channel = self.channel_by_percent[int(r() * 100)]
        midnight = days.midnight[day]
        if not days.is_working(day):  # weekend or holiday: only what arrives on its own
            if channel not in _REMOTE:
                channel = self._pick(_REMOTE)
            return midnight + 28800 + int(r() * 50400), channel  # 08:00-22:00
        opens, closes = days.first_open[day], days.last_close[day]
        if channel in _REMOTE and r() < 0.18:  # before opening or in the evening
            if r() < 0.3 and opens - midnight > 3600:
                return opens - 3600 + int(r() * 3600), channel
            late = midnight + 23 * 3600
            if late > closes:
                return closes + int(r() * (late - closes)), channel
        k = days.next_working[day]
        return days.place(k, opens - 1, None, r), channel

    def _due(self, clock: DeadlineClock | CompletenessClock, start: int) -> int | None:
        if clock.target is not None:
            return self.calendar.deadline(start, clock.target)
        promised = self.attributes.get(clock.target_field or "")
        if not isinstance(promised, str):
            return None
        return parse_deadline_value(promised, self.calendar.zone)  # the engine's own reading

    def _when(
        self,
        start: int,
        due: int | None,
        shares: tuple[float, float],
        *,
        main: bool = True,
        early: bool = False,
    ) -> int | None:
        """When staff act on a clock started at ``start`` with ``due``: on time, late or never
        (``None``); after ``self.last`` on the main path; mostly soon when ``early``."""
        u = self.r()
        if u < shares[0]:
            return self._on_time(start, due, main=main, early=early)
        if u < shares[0] + shares[1]:
            return self._late(start, due, main=main)
        return None

    def _on_time(
        self, start: int, due: int | None, *, main: bool = True, early: bool = False
    ) -> int:
        days = self.days
        after = max(start, self.last) if main else start
        k0 = days.first_working_index(start)
        if due is None:
            return days.place(k0 + self._between(0, 2), after, None, self.r)
        k_due = max(days.last_working_index_before(due), k0)
        position = self.r() ** 3 if early else self.r()
        k = k0 + int(position * (k_due - k0 + 1))
        return days.place(k, after, due, self.r)

    def _late(self, start: int, due: int | None, *, main: bool = True) -> int:
        days = self.days
        after = max(start, self.last) if main else start
        k0 = days.first_working_index(start)
        if due is None:
            return days.place(k0 + self._between(3, 6), after, None, self.r)
        k_due = max(days.last_working_index_before(due), k0)
        extra = self._between(1, max(1, round((k_due - k0 + 1) * 0.6)))
        return days.place(k_due + extra, max(after, due), None, self.r)

    # ------------------------------------------------------------------ the story
    def complaint(self, index: int, count: int) -> SampleComplaint:
        self.events, self.last, self.stalled = {}, 0, False
        received, channel = self._received(index, count)
        self.attributes = self._attributes(channel)
        story = self.story
        if channel in _REQUEST_CHANNELS:
            for request in story.requests:
                if self.r() < _REQUEST:
                    self._emit(request, received + 60 * self._between(1, 20), main=False)
        self._emit(_RECEIVED, received, main=True)
        if not self.stalled:
            self._after_the_answer()
        self._recurring()
        if not self.stalled and self.r() < _CLOSED_SHARE:
            end = max(t for values in self.events.values() for t in values)
            k = self.days.first_working_index(end) + int(self.r() * 4)
            self._emit(_CLOSED, self.days.place(k, end, None, self.r), main=False)
        return self._finish()

    def _after_the_answer(self) -> None:
        """The final decision after an answer that allows one; then maybe an appeal."""
        story, final = self.story, self.story.final
        if final is not None and final not in self.events:
            answered_by = {
                c.start: c
                for c in self.story.charter.clocks
                if isinstance(c, DeadlineClock)
                and final in c.stop
                and any(s in self.events for s in c.stop)
            }
            if answered_by and self.r() < 0.9:
                k = self.days.first_working_index(self.last) + self._between(0, 8)
                self._emit(final, self.days.place(k, self.last, None, self.r), main=True)
        if story.appeals and not self.stalled and self.r() < _APPEAL:
            k = self.days.first_working_index(self.last) + self._between(2, 12)
            appeal = self._pick(story.appeals)
            self._emit(appeal, self.days.place(k, self.last, None, self.r), main=True)

    def _emit(self, name: str, instant: int, *, main: bool) -> None:
        """Record event ``name`` and start what it starts."""
        self.events.setdefault(name, []).append(instant)
        if main:
            self.last = max(self.last, instant)
        level = self.story.levels.get(name)
        if level is not None:
            self.attributes["level"] = level
            self.attributes.setdefault("manager", self._pick(self.managers))
        for clock in self.story.starting.get(name, ()):
            if not all(c.holds(self.attributes) for c in clock.when):
                continue
            if isinstance(clock, DeadlineClock):
                self._deadline(clock, instant, main=main)
            elif isinstance(clock, CompletenessClock):
                self._complete(clock, name == _RECEIVED)
        if main and level is not None and not self.stalled and not self.story.starting.get(name):
            self._next_level(level)

    def _next_level(self, level: int) -> None:
        """After an escalation that starts no clock: its first step, or in the end a decision."""
        step = self.story.steps.get(level)
        k = self.days.first_working_index(self.last)
        if step is not None:
            self._emit(
                step, self.days.place(k + self._between(2, 9), self.last, None, self.r), main=True
            )
        elif self.story.final is not None and self.r() < 0.8:
            k += self._between(15, 40)
            self._emit(self.story.final, self.days.place(k, self.last, None, self.r), main=True)
        else:
            self.stalled = True

    def _deadline(self, clock: DeadlineClock, start: int, *, main: bool) -> None:
        story = self.story
        stopped = [t for s in clock.stop for t in self.events.get(s, ()) if t >= start]
        if clock.target_field is not None and clock.target_field not in self.attributes:
            self._promise(clock, start, min(stopped) if stopped else None, main=main)
        due = self._due(clock, start)
        if self.stalled and main:  # nobody decides; some customers are at least told so
            stand_in = self._stand_in(clock)
            if stand_in is not None and due is not None and self.r() < _STAND_IN:
                at = self._when(start, due, (0.85, 0.15))
                if at is not None:
                    self._emit(stand_in, at, main=False)
            return
        if stopped:  # answered already; a stand-in when that answer came late
            stop_at = min(stopped)
            if due is not None and stop_at > due and self.r() < _STAND_IN:
                stand_in = self._stand_in(clock)
                if stand_in is not None:
                    before = max(
                        (t for v in self.events.values() for t in v if t < stop_at), default=start
                    )
                    at = self.days.place(
                        self.days.first_working_index(before), before, min(due, stop_at - 1), self.r
                    )
                    if at < stop_at:
                        self._emit(stand_in, at, main=False)
            return
        escalations = [s for s in clock.stop if s in story.levels]
        answer = next((s for s in clock.stop if s not in story.levels), None)
        u = self.r()
        if main and escalations:
            share = _FIRST_ESCALATION if self.attributes.get("level", 1) == 1 else _LATER_ESCALATION
            if u < 0.05:
                self.stalled = True
                return
            if u < 0.05 + share or answer is None:
                escalated = self._when(start, due, (0.9, 0.1), early=True)
                assert escalated is not None
                self._emit(escalations[0], escalated, main=True)
                return
        if answer is None:
            return
        if clock.pause is not None and main and due is not None and self.r() < _WAITING:
            waited = self._wait(clock.pause.on, clock.pause.off, start, due)
            if waited is None:
                self.stalled = True  # still waiting on the customer
                return
            start, due = waited
        if answer == story.final and main:
            self._decide(clock, start, due)
            return
        answered = self._answer(clock, start, due, main=main)
        if answered is None:
            if main and story.starting.get(answer):
                self.stalled = True  # the next step waits for this one
            return
        self._emit(answer, answered, main=main)

    def _answer(
        self, clock: DeadlineClock, start: int, due: int | None, *, main: bool
    ) -> int | None:
        """When ``clock`` is answered; a notified extension first for some complaints."""
        extension = clock.extend
        if extension is None or due is None or not main:
            return self._when(start, due, _ANSWER, main=main, early=True)
        if self.r() >= _EXTENDED:
            return self._when(start, due, (0.83, 0.12))
        notice = self._notice(extension.on, start, due)
        extended = self.calendar.deadline(due, extension.by) if notice <= due else due
        return self._when(notice, extended, (0.85, 0.15))

    def _wait(self, on: str, off: str, start: int, due: int) -> tuple[int, int] | None:
        """Wait on the customer: ``on`` between ``start`` and ``due``, then mostly ``off``
        one to five working days later. Returns ``(resumed, due moved by the wait)`` (the
        elapsed wait: roughly what the pause gives back), or None when still waiting."""
        days = self.days
        k0 = days.first_working_index(max(start, self.last))
        k_due = max(days.last_working_index_before(due), k0)
        k = k0 + int(self.r() * (k_due - k0 + 1))
        paused = days.place(k, max(start, self.last), due, self.r)
        self._emit(on, paused, main=True)
        if self.r() < _NEVER_RESUMED:
            return None
        k = days.first_working_index(paused) + self._between(1, 5)
        resumed = days.place(k, paused, None, self.r)
        self._emit(off, resumed, main=True)
        return resumed, max(due, paused) + (resumed - paused)

    def _notice(self, event: str, start: int, due: int) -> int:
        """A notified extension: mostly in the days before ``due``, some too late."""
        days = self.days
        k_due = days.last_working_index_before(due)
        k = k_due - self._between(0, 4) if self.r() < 0.9 else k_due + self._between(1, 2)
        k = max(k, days.first_working_index(start))
        notice = days.place(k, max(start, self.last), None, self.r)
        self._emit(event, notice, main=True)
        return notice

    def _decide(self, clock: DeadlineClock, start: int, due: int | None) -> None:
        """The final decision on a clock: fast track, on time, late (with a stand-in) or never."""
        story = self.story
        longer = [
            c
            for c in story.starting.get(clock.start, ())
            if isinstance(c, DeadlineClock)
            and c is not clock
            and c.stop[0] == story.final
            and c.target is not None
            and clock.target is not None
            and _longer(c.target, clock.target)
            and all(w.holds(self.attributes) for w in c.when)
        ]
        if longer:  # the shorter of two targets for one decision: only some make it
            if self.r() < _FAST_TRACK:
                self._final(self._when(start, due, (0.9, 0.1)))
            return
        extension = clock.extend
        if extension is not None and due is not None and self.r() < _EXTENDED:
            notice = self._notice(extension.on, start, due)
            extended = self.calendar.deadline(due, extension.by) if notice <= due else due
            self._final(self._when(notice, extended, (0.85, 0.15)))
            return
        u = self.r()
        if u < _DECISION[0]:
            self._final(self._on_time(start, due))
            return
        stand_in = self._stand_in(clock)
        if stand_in is not None and due is not None and self.r() < _STAND_IN:
            at = self._when(start, due, (0.85, 0.15))
            if at is not None:
                self._emit(stand_in, at, main=True)
        if u < _DECISION[0] + _DECISION[1]:
            self._final(self._late(start, due))
        else:
            self.stalled = True

    def _final(self, at: int | None) -> None:
        """The decision at ``at``, or first the step it waits for (the outcome of an
        investigation), whose own clock then brings the decision."""
        story = self.story
        if at is None or story.final is None:
            self.stalled = True
            return
        for step in story.preparations:
            if step not in self.events:
                self._emit(step, at, main=True)
                return
        self._emit(story.final, at, main=True)

    def _stand_in(self, clock: DeadlineClock) -> str | None:
        """A stop that answers for now: not the decision, not an escalation, not yet sent."""
        story = self.story
        for stop in clock.stop:
            if stop != story.final and stop not in story.levels and stop not in self.events:
                return stop
        return None

    def _promise(self, clock: DeadlineClock, start: int, kept: int | None, *, main: bool) -> None:
        """Write the promised instant ``clock.target_field`` when the clock starts: a date and
        time for a request (a call back), a date for a decision."""
        assert clock.target_field is not None
        days, r = self.days, self.r
        if clock.start in self.story.requests:
            if r() >= 0.95:
                return  # not written down
            k = days.first_working_index(start) + self._between(0, 2)
            promised = days.place(k, start + 1800, None, r)
            promised += 1800 - promised % 1800  # on the half hour
            self.attributes[clock.target_field] = (
                days.utc_text(promised) if r() < 0.7 else days.local_text(promised)
            )
            return
        if kept is None:
            promised = start + _DAY * self._between(14, 35)
        elif r() < 0.8:
            promised = kept + _DAY * self._between(0, 6)
        else:
            promised = max(start + _DAY, kept - _DAY * self._between(1, 7))
        self.attributes[clock.target_field] = days.local_date(promised)

    def _recurring(self) -> None:
        """Interim updates for each recurring clock, from its start while the answer waits."""
        story = self.story
        for clock in story.charter.clocks:
            if not isinstance(clock, RecurringClock) or clock.start not in self.events:
                continue
            if not clock.reset or not all(w.holds(self.attributes) for w in clock.when):
                continue
            reset = clock.reset[0]
            begin = min(self.events[clock.start])
            ends = self._waiting_ends(clock, begin)
            horizon = min(ends) if ends else None
            cycles = 0 if horizon is not None else self._between(1, 4)
            at = begin
            while True:
                due = self.calendar.deadline(at, clock.every)
                if self.r() < 0.88:
                    soonest = at + int((due - at) * (0.75 + 0.2 * self.r()))
                    k = self.days.first_working_index(soonest)
                    nxt = self.days.place(k, soonest, due, self.r)
                else:
                    soonest = due + int((due - at) * 0.25 * self.r())
                    nxt = self.days.place(
                        self.days.first_working_index(soonest), soonest, None, self.r
                    )
                if horizon is not None and nxt >= horizon:
                    break
                if horizon is None:
                    if cycles == 0:
                        break
                    cycles -= 1
                if reset not in self.events or nxt not in self.events[reset]:
                    self.events.setdefault(reset, []).append(nxt)
                at = nxt

    def _waiting_ends(self, clock: RecurringClock, begin: int) -> list[int]:
        """Instants that end the wait: the clock's stops, and the events that answer for its
        stop or lead to it (a holding response, the end of an investigation)."""
        story = self.story
        ending = set(clock.stop)
        for other in story.charter.clocks:
            if not isinstance(other, DeadlineClock) or not set(other.stop) & set(clock.stop):
                continue
            if other.start not in (clock.start, *clock.reset, _RECEIVED):
                ending.add(other.start)
            ending.update(s for s in other.stop if s not in clock.reset and s != clock.start)
        ending -= {clock.start, *clock.reset}
        return [t for e in ending for t in self.events.get(e, ()) if t > begin]

    # ------------------------------------------------------------------ attributes
    def _attributes(self, channel: str) -> dict[str, object]:
        """What every complaint carries: channel, complainant, description and owner."""
        flavour = self.flavour
        attributes: dict[str, object] = {
            "channel": channel,
            "complainant_type": self._share(flavour.complainant_types),
            "complainant_name": self._person(),
            "description": self._pick(flavour.descriptions),
            "owner": self._pick(self.staff_ids),
        }
        if self.story.has_levels:
            attributes["level"] = 1
        languages = flavour.customer_languages
        if self.requires_language or len(languages) > 1:
            language = self._share(languages)
            attributes["language"] = language
            other = flavour.other_language_descriptions.get(language)
            if other and self.r() < 0.6:
                attributes["description"] = self._pick(other)
        return attributes

    def _value(self, name: str) -> object:
        """A plausible value for a required attribute."""
        flavour = self.flavour
        if name in ("registered_by", "handled_by"):
            return self._pick(self.staff_names)
        if name == "root_cause":
            return self._pick(flavour.root_causes)
        if name == "solution":
            return self._pick(flavour.solutions)
        if name == "language":
            return self._share(flavour.customer_languages)
        if name in ("owner", "manager"):
            return self._pick(self.staff_ids)
        return self._person()

    def _complete(self, clock: CompletenessClock, at_receipt: bool) -> None:
        """Fill the required attributes; a registration is now and then left incomplete,
        later records (a root cause at closing) now and then not made."""
        required = list(clock.require)
        for name in required:
            if name not in self.attributes:
                self.attributes[name] = self._value(name)
        if at_receipt:
            # the first field is missed 12 % of the time; each further one adds a little
            if self.r() < 1 - 0.88 * 0.977 ** (len(required) - 1):
                left = 1 if len(required) == 1 or self.r() < 0.7 else 2
                for _ in range(left):
                    self._leave_empty(self._pick(required))
            return
        u = self.r()
        if u < 0.15:
            for name in required:
                self._leave_empty(name)
        elif u < 0.25:
            for name in required[(len(required) + 1) // 2 :]:
                self._leave_empty(name)

    def _leave_empty(self, name: str) -> None:
        if name in _PICKLISTS or self.r() < 0.6:
            self.attributes.pop(name, None)
        else:
            self.attributes[name] = self._pick(_BLANKS)

    # ------------------------------------------------------------------ output
    def _finish(self) -> SampleComplaint:
        """The canonical JSON shape with a new id; most sources write ``Z``, some offsets."""
        days = self.days
        text = days.utc_text if self.r() < 0.85 else days.local_text
        texts: dict[str, str | list[str]] = {}
        for name, values in self.events.items():
            if name in self.story.many or len(values) > 1:
                texts[name] = [text(t) for t in sorted(values)]
            else:
                texts[name] = text(values[0])
        return {"id": self._case_id(), "events": texts, "attributes": self.attributes}


def _longer(a: Duration, b: Duration) -> bool:
    """Roughly: is ``a`` a longer target than ``b``? (in working days)"""
    return _working_days(a) > _working_days(b)


def _working_days(d: Duration) -> float:
    per_day = {
        Unit.MINUTES: 1 / 1440,
        Unit.HOURS: 1 / 24,
        Unit.DAYS: 5 / 7,
        Unit.WEEKS: 5,
        Unit.BUSINESS_MINUTES: 1 / 480,
        Unit.BUSINESS_HOURS: 1 / 8,
        Unit.BUSINESS_DAYS: 1,
    }
    return d.amount * per_day[d.unit]


def generate_complaints(
    charter: Charter,
    count: int,
    *,
    seed: int,
    start: datetime,
    span_days: int,
    ids: RecordIds = serial_ids,
) -> Iterator[SampleComplaint]:
    """Yield ``count`` canonical complaints that look real for ``charter``, ids made by
    ``ids``.

    Received instants fall on the ``span_days`` calendar days from ``start``'s UTC date
    (its time of day is ignored), in roughly ascending order; later events may follow
    the span. ``start`` must be timezone-aware. The same arguments always yield the same
    complaints. Raises ``ValueError`` for a bad count, span or start.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if span_days < 1:
        raise ValueError(f"span_days must be >= 1, not {span_days}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware (e.g. 2026-03-01T00:00:00+00:00)")
    generator = _Generator(
        charter, random.Random(seed), start.astimezone(UTC).date(), span_days, ids
    )
    return _generate(generator, count)


def _generate(generator: _Generator, count: int) -> Iterator[SampleComplaint]:
    for index in range(count):
        yield generator.complaint(index, count)
