"""The regulators' returns: figures a regulator asks for, counted from a charter's clocks.

Pure and streaming like ``report``: a ``ReturnTally`` takes one complaint's clock
instances at a time (``clock_instances``, the code ``evaluate`` runs) and keeps counts
only; tallies of separate chunks merge.

* ``tsm``: the Regulator of Social Housing's Tenant Satisfaction Measures CH01 and CH02,
  from the ``housing-ombudsman`` charter. CH01 counts the complaints *received* in the
  reporting year (stage one: the start of ``stage1-acknowledge``, the complaint's receipt;
  stage two: the start of ``stage2-acknowledge``, the escalation). CH02 counts the
  complaints *responded to* in the year (the stop of ``stage1-response`` and
  ``stage2-response``) and, of those, the ones answered by their due instant, an
  extension the charter allows (one, of 10 or 20 working days) included.
* ``fca``: the FCA's complaints return (DISP 1.10, DISP 1 Annex 1R), from the
  ``fca-disp`` charter: complaints *closed* in the period (the ``decision`` that stops
  ``summary-resolution``; a holding response closes nothing) by time to close: within
  three business days (``summary-resolution``'s due instant), after that but within
  eight weeks (``final-response``'s due instant), later; and the complaints received in
  the period and those outstanding at its start.

A day is the local date of an instant in the charter's zone, as in ``report``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from crmsync.domain.report import Instance, tenths_half_up


class ReturnKind(StrEnum):
    """Which regulator's return."""

    TSM = "tsm"
    FCA = "fca"


REQUIRED_CLOCKS = {
    ReturnKind.TSM: (
        "stage1-acknowledge",
        "stage1-response",
        "stage2-acknowledge",
        "stage2-response",
    ),
    ReturnKind.FCA: ("summary-resolution", "final-response"),
}
"""The clocks each return is counted from (the bundled ``housing-ombudsman`` and
``fca-disp`` charters have them)."""


def missing_clocks(kind: ReturnKind, clock_ids: Iterable[str]) -> list[str]:
    """The clocks ``kind`` needs that a charter with ``clock_ids`` lacks."""
    have = set(clock_ids)
    return [c for c in REQUIRED_CLOCKS[kind] if c not in have]


PERIOD_MONTHS = {ReturnKind.TSM: (12,), ReturnKind.FCA: (6, 12)}
"""The lengths, in months, of the period each return is filed for: the Tenant
Satisfaction Measures are a year's; the FCA's complaints return is a half year's (DISP
1.10.1R(1)), or a year's for the firms DISP 1.10.1R(2) lets report once a year."""


def months_later(day: date, months: int) -> date:
    """The same day of the month ``months`` later (that month's last day when it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def period_refusal(kind: ReturnKind, first: date, last: date) -> str | None:
    """Why ``first..last`` (inclusive) is not a period ``kind`` is filed for, or None: the
    period must end the day before the same date 12 (tsm) or 6 or 12 (fca) months on."""
    ends = [months_later(first, n) - timedelta(days=1) for n in PERIOD_MONTHS[kind]]
    if last in ends:
        return None
    if kind is ReturnKind.TSM:
        return (
            f"--return tsm counts one reporting year: {first}..{last} is not a whole year "
            f"(from {first} the year ends {ends[0]}; the TSM year runs 1 April to 31 March)"
        )
    return (
        f"--return fca counts one reporting period: {first}..{last} is neither six months nor "
        f"a year (from {first}: --to {ends[0]} for a half year, {ends[1]} for a firm that "
        "reports once a year)"
    )


def period_containing(kind: ReturnKind, day: date) -> tuple[date, date]:
    """The usual period of ``kind`` that holds ``day``: the TSM year from 1 April, the
    calendar half year for the FCA (a firm's own follows its accounting reference date)."""
    if kind is ReturnKind.TSM:
        year = day.year if day.month >= 4 else day.year - 1
        return date(year, 4, 1), date(year + 1, 3, 31)
    if day.month <= 6:
        return date(day.year, 1, 1), date(day.year, 6, 30)
    return date(day.year, 7, 1), date(day.year, 12, 31)


def period_over(last: date, zone: ZoneInfo, now: int) -> bool:
    """Whether the period ending on the date ``last`` (in ``zone``) is over at ``now``: a
    return counted before then is provisional, as complaints are still being received
    and answered in it."""
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    return now >= int(end.timestamp())


def share(part: int, whole: int) -> float | None:
    """``100 x part / whole`` rounded half up to one decimal (exactly); None if whole is 0."""
    if whole == 0:
        return None
    return tenths_half_up(100 * part, whole)


def per_thousand(count: int, homes: int) -> float:
    """``1000 x count / homes`` rounded half up to one decimal (exactly); homes > 0."""
    return tenths_half_up(1000 * count, homes)


def _day(instant: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(instant, zone).date()


@dataclass
class ReturnTally:
    """The counts of one return over the dates ``first..last`` (inclusive)."""

    kind: ReturnKind
    first: date
    last: date
    counts: dict[str, int] = field(default_factory=dict)

    def _inc(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _within(self, instant: int | None, zone: ZoneInfo) -> bool:
        return instant is not None and self.first <= _day(instant, zone) <= self.last

    def add(self, zone: ZoneInfo, instances: Iterable[Instance]) -> None:
        """Count one complaint's instances (all of them, whatever their due date)."""
        by_clock = {i.clock: i for i in instances if i.occurrence == 0}
        if self.kind is ReturnKind.TSM:
            self._add_tsm(zone, by_clock)
        else:
            self._add_fca(zone, by_clock)

    def _add_tsm(self, zone: ZoneInfo, by_clock: dict[str, Instance]) -> None:
        for stage, acknowledge, response in (
            ("stage1", "stage1-acknowledge", "stage1-response"),
            ("stage2", "stage2-acknowledge", "stage2-response"),
        ):
            received = by_clock.get(acknowledge)
            if received is not None and self._within(received.start, zone):
                self._inc(f"{stage}_received")
            answered = by_clock.get(response)
            if (
                answered is not None
                and answered.end is not None
                and self._within(answered.end, zone)
            ):
                self._inc(f"{stage}_responded")
                if answered.end <= answered.due:
                    self._inc(f"{stage}_within_timescale")

    def _add_fca(self, zone: ZoneInfo, by_clock: dict[str, Instance]) -> None:
        summary = by_clock.get("summary-resolution")
        final = by_clock.get("final-response")
        if summary is None:
            return
        received = _day(summary.start, zone)
        if self.first <= received <= self.last:
            self._inc("received")
        if received < self.first and (summary.end is None or _day(summary.end, zone) >= self.first):
            self._inc("outstanding_at_start")
        if summary.end is None or not self._within(summary.end, zone):
            return
        self._inc("closed")
        if summary.end <= summary.due:
            self._inc("closed_within_3_business_days")
        elif final is not None and summary.end <= final.due:
            self._inc("closed_after_3_business_days_within_8_weeks")
        else:
            self._inc("closed_after_8_weeks")

    def merge(self, other: ReturnTally) -> None:
        """Add ``other``'s counts (the same kind and dates)."""
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def figures(self, homes: int | None) -> dict[str, object]:
        """The return's figures (TSM: ``homes`` > 0 is the landlord's number of homes)."""
        c = self.counts.get
        if self.kind is ReturnKind.TSM:
            assert homes is not None and homes > 0
            ch01: dict[str, float] = {}
            ch02: dict[str, float | None] = {}
            stages: dict[str, dict[str, object]] = {}
            for stage in ("stage1", "stage2"):
                received = c(f"{stage}_received", 0)
                responded = c(f"{stage}_responded", 0)
                within = c(f"{stage}_within_timescale", 0)
                rate, pct = per_thousand(received, homes), share(within, responded)
                ch01[f"{stage}_per_1000_homes"] = rate
                ch02[f"{stage}_within_timescale_pct"] = pct
                stages[stage] = {
                    "received": received,
                    "per_1000_homes": rate,
                    "responded": responded,
                    "within_timescale": within,
                    "within_timescale_pct": pct,
                }
            return {"homes": homes, "CH01": ch01, "CH02": ch02, **stages}
        closed = c("closed", 0)
        bands = {
            "closed_within_3_business_days": c("closed_within_3_business_days", 0),
            "closed_after_3_business_days_within_8_weeks": c(
                "closed_after_3_business_days_within_8_weeks", 0
            ),
            "closed_after_8_weeks": c("closed_after_8_weeks", 0),
        }
        return {
            "received": c("received", 0),
            "outstanding_at_start": c("outstanding_at_start", 0),
            "closed": closed,
            **bands,
            **{f"{name}_pct": share(n, closed) for name, n in bands.items()},
        }
