"""BusinessCalendar deadlines (semantics sections 2-3), worked out by hand.

Offsets used below (2026): Europe/London and Europe/Dublin are UTC+0 until Sun 29 Mar
01:00Z and from Sun 25 Oct 01:00Z, UTC+1 in between; Europe/Amsterdam is one hour ahead
of them. Every expected value is written in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmsync.domain.business_calendar import BusinessCalendar, OpeningInterval, overlaps
from crmsync.domain.durations import Duration, Unit
from crmsync.errors import CalendarError
from crmsync.mapping.holiday_source import PublicHolidays

LONDON = ZoneInfo("Europe/London")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DUBLIN = ZoneInfo("Europe/Dublin")
UTC_ZONE = ZoneInfo("UTC")

HolidaySource = Callable[[int], Mapping[date, str]]


# ---------------------------------------------------------------------------- helpers
def local(zone: ZoneInfo, text: str, fold: int = 0) -> int:
    """The instant at which ``zone``'s wall clock shows ``YYYY-MM-DD HH:MM[:SS]``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold).timestamp())


def utc(text: str) -> int:
    """The instant of a UTC ``YYYY-MM-DD HH:MM[:SS]``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def iso(instant: int) -> str:
    """``instant`` as ``YYYY-MM-DD HH:MM:SS`` UTC, for readable comparisons."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%d %H:%M:%S")


def hours(*texts: str) -> tuple[OpeningInterval, ...]:
    """Opening intervals from ``"HH:MM-HH:MM"`` strings."""
    result = []
    for text in texts:
        a, b = text.split("-")
        result.append(
            OpeningInterval(
                int(a[:2]) * 60 + int(a[3:]),
                int(b[:2]) * 60 + int(b[3:]),
            )
        )
    return tuple(result)


def calendar(
    zone: ZoneInfo,
    week: Mapping[int, tuple[OpeningInterval, ...]],
    *,
    holidays: HolidaySource | None = None,
    extra_closed: Mapping[date, str] | None = None,
    extra_open: frozenset[date] = frozenset(),
) -> BusinessCalendar:
    """A calendar; no public holidays unless ``holidays`` is given."""
    if holidays is None:
        return BusinessCalendar(zone, week, extra_closed=extra_closed, extra_open=extra_open)
    return BusinessCalendar(
        zone, week, holidays=holidays, extra_closed=extra_closed, extra_open=extra_open
    )


def aston(
    *, extra_closed: Mapping[date, str] | None = None, extra_open: frozenset[date] = frozenset()
) -> BusinessCalendar:
    """Aston: Europe/London, Mon-Thu 08:30-17:00, Fri 08:30-16:30, England's bank holidays."""
    week = {d: hours("08:30-17:00") for d in range(4)} | {4: hours("08:30-16:30")}
    return calendar(
        LONDON,
        week,
        holidays=PublicHolidays("GB", "ENG"),
        extra_closed=extra_closed,
        extra_open=extra_open,
    )


def nine_to_five(zone: ZoneInfo, holidays: HolidaySource | None = None) -> BusinessCalendar:
    """Mon-Fri 09:00-17:00 in ``zone``."""
    return calendar(zone, {d: hours("09:00-17:00") for d in range(5)}, holidays=holidays)


def due(cal: BusinessCalendar, start: int, amount: int, unit: Unit) -> str:
    """The deadline of ``amount unit`` from ``start``, as UTC text."""
    return iso(cal.deadline(start, Duration(amount, unit)))


BD, BH, BM = Unit.BUSINESS_DAYS, Unit.BUSINESS_HOURS, Unit.BUSINESS_MINUTES


# ---------------------------------------------------------------------------- section 3
def test_spec_example_two_business_days_from_monday_morning() -> None:
    """Received Mon 10:00, 2 business_days -> Wed 17:00 (semantics section 3)."""
    assert due(aston(), local(LONDON, "2026-03-02 10:00"), 2, BD) == "2026-03-04 17:00:00"


def test_spec_example_one_business_day_after_friday_closing() -> None:
    """Received Fri 16:45 (after 16:30 closing), 1 business_days -> day0 Mon -> Tue 17:00."""
    assert due(aston(), local(LONDON, "2026-03-06 16:45"), 1, BD) == "2026-03-10 17:00:00"


def test_spec_example_two_business_hours_over_the_night() -> None:
    """Received Thu 16:00, 2 business_hours -> 1 h on Thu, 1 h from Fri 08:30 -> Fri 09:30."""
    assert due(aston(), local(LONDON, "2026-03-05 16:00"), 2, BH) == "2026-03-06 09:30:00"


def test_spec_example_fourteen_days_across_the_change_to_bst() -> None:
    """Mon 16 Mar 10:00 GMT + 14 days -> Mon 30 Mar 10:00 BST, which is 09:00Z."""
    assert due(aston(), local(LONDON, "2026-03-16 10:00"), 14, Unit.DAYS) == "2026-03-30 09:00:00"


# ---------------------------------------------------------------------------- boundaries
def test_start_exactly_at_opening() -> None:
    """From Mon 08:30 one business hour ends 09:30 and day0 is that Monday."""
    start = local(LONDON, "2026-03-02 08:30")
    assert due(aston(), start, 1, BH) == "2026-03-02 09:30:00"
    assert due(aston(), start, 1, BD) == "2026-03-03 17:00:00"


def test_start_exactly_at_closing_keeps_that_day_as_day0() -> None:
    """Mon 17:00 is not after closing, so day0 is Monday; one second later day0 is Tuesday."""
    cal = aston()
    assert due(cal, local(LONDON, "2026-03-02 17:00:00"), 1, BD) == "2026-03-03 17:00:00"
    assert due(cal, local(LONDON, "2026-03-02 17:00:01"), 1, BD) == "2026-03-04 17:00:00"


def test_business_minutes_from_closing_start_at_next_opening() -> None:
    """30 business minutes from Mon 17:00 are counted from Tue 08:30 -> Tue 09:00."""
    assert due(aston(), local(LONDON, "2026-03-02 17:00"), 30, BM) == "2026-03-03 09:00:00"


def test_count_ending_exactly_at_closing_gives_that_closing() -> None:
    """A count that uses up the day's last minute ends at closing, not at the next opening."""
    cal = aston()
    assert due(cal, local(LONDON, "2026-03-02 16:00"), 1, BH) == "2026-03-02 17:00:00"
    # Fri 08:30-16:30 is exactly 8 hours
    assert due(cal, local(LONDON, "2026-03-06 08:30"), 8, BH) == "2026-03-06 16:30:00"
    # Mon 08:30-17:00 is 510 minutes
    assert due(cal, local(LONDON, "2026-03-02 08:30"), 510, BM) == "2026-03-02 17:00:00"
    assert due(cal, local(LONDON, "2026-03-02 08:30"), 511, BM) == "2026-03-03 08:31:00"


def test_start_in_the_middle_of_a_minute() -> None:
    """Seconds count: 1 business minute from Mon 16:59:30 ends Tue 08:30:30."""
    assert due(aston(), local(LONDON, "2026-03-02 16:59:30"), 1, BM) == "2026-03-03 08:30:30"


def test_start_on_a_public_holiday() -> None:
    """From Good Friday 2026 (3 Apr) day0 is Tue 7 Apr (Easter Monday is closed too)."""
    cal = aston()
    start = local(LONDON, "2026-04-03 10:00")
    # BST: 17:00 local is 16:00Z, 09:30 local is 08:30Z
    assert due(cal, start, 1, BD) == "2026-04-08 16:00:00"
    assert due(cal, start, 1, BH) == "2026-04-07 08:30:00"


def test_start_at_midnight() -> None:
    """From Mon 00:00 the count starts at 08:30 and day0 is that Monday."""
    start = local(LONDON, "2026-03-02 00:00")
    assert due(aston(), start, 1, BH) == "2026-03-02 09:30:00"
    assert due(aston(), start, 1, BD) == "2026-03-03 17:00:00"


def test_a_day_closing_at_midnight() -> None:
    """A day open 00:00-24:00 closes at the next midnight, which already belongs to the next day."""
    cal = calendar(UTC_ZONE, {d: hours("00:00-24:00") for d in range(5)})
    assert cal.opening_instants(date(2026, 3, 2)) == [
        (utc("2026-03-02 00:00"), utc("2026-03-03 00:00"))
    ]
    # Mon 23:59: day0 Monday -> Tuesday closes at Wed 00:00
    assert due(cal, utc("2026-03-02 23:59"), 1, BD) == "2026-03-04 00:00:00"
    # Tue 00:00 is Monday's closing instant but its local date is Tuesday: day0 Tuesday
    assert due(cal, utc("2026-03-03 00:00"), 1, BD) == "2026-03-05 00:00:00"
    # a count ending at 24:00 gives that closing
    assert due(cal, utc("2026-03-02 23:00"), 60, BM) == "2026-03-03 00:00:00"
    # Monday 24:00 and Tuesday 00:00 touch: the count runs on without a break
    assert due(cal, utc("2026-03-02 23:30"), 60, BM) == "2026-03-03 00:30:00"
    # Friday 23:30 + 60 minutes: 30 on Friday, 30 from Monday 00:00
    assert due(cal, utc("2026-03-06 23:30"), 60, BM) == "2026-03-09 00:30:00"


def test_minutes_and_hours_are_elapsed_time() -> None:
    """minutes and hours add absolute seconds, ignoring opening hours and DST."""
    cal = aston()
    # Sat 28 Mar 12:00Z + 24 hours = Sun 12:00Z (13:00 BST)
    assert due(cal, utc("2026-03-28 12:00"), 24, Unit.HOURS) == "2026-03-29 12:00:00"
    # Sun 29 Mar 00:30Z + 90 minutes = 02:00Z (03:00 BST)
    assert due(cal, utc("2026-03-29 00:30"), 90, Unit.MINUTES) == "2026-03-29 02:00:00"


# ---------------------------------------------------------------------------- lunch break
def lunch_break() -> BusinessCalendar:
    """UTC, Mon-Fri 09:00-12:00 and 13:00-17:00."""
    return calendar(UTC_ZONE, {d: hours("09:00-12:00", "13:00-17:00") for d in range(5)})


def test_lunch_break_is_not_counted() -> None:
    """From Mon 11:30 one business hour is 30 min before lunch and 30 after -> 13:30."""
    assert due(lunch_break(), utc("2026-03-02 11:30"), 1, BH) == "2026-03-02 13:30:00"


def test_count_ending_at_the_start_of_lunch() -> None:
    """60 business minutes from 11:00 end at 12:00, the morning's closing."""
    assert due(lunch_break(), utc("2026-03-02 11:00"), 60, BM) == "2026-03-02 12:00:00"


def test_start_during_lunch() -> None:
    """From 12:30 counting starts at 13:00; day0 is still Monday (last closing 17:00)."""
    cal = lunch_break()
    assert due(cal, utc("2026-03-02 12:30"), 1, BM) == "2026-03-02 13:01:00"
    assert due(cal, utc("2026-03-02 12:30"), 1, BD) == "2026-03-03 17:00:00"


def test_lunch_break_day_holds_seven_hours() -> None:
    """Mon 09:00 + 7 business hours = 17:00; + 8 = Tue 10:00."""
    cal = lunch_break()
    assert due(cal, utc("2026-03-02 09:00"), 7, BH) == "2026-03-02 17:00:00"
    assert due(cal, utc("2026-03-02 09:00"), 8, BH) == "2026-03-03 10:00:00"


def test_opening_instants_list_each_interval() -> None:
    """A working day with a lunch break has two opening intervals; a Saturday none."""
    cal = lunch_break()
    assert cal.opening_instants(date(2026, 3, 2)) == [
        (utc("2026-03-02 09:00"), utc("2026-03-02 12:00")),
        (utc("2026-03-02 13:00"), utc("2026-03-02 17:00")),
    ]
    assert cal.opening_instants(date(2026, 3, 7)) == []


# ---------------------------------------------------------------------------- DST: London
def sunday_only(zone: ZoneInfo, text: str) -> BusinessCalendar:
    """Open on Sundays only, ``text`` hours."""
    return calendar(zone, {6: hours(text)})


def test_london_skipped_hour_is_not_open() -> None:
    """Sun 29 Mar 00:00-04:00 holds 3 open hours: 01:00-02:00 never shows on the wall."""
    cal = sunday_only(LONDON, "00:00-04:00")
    # 00:00-01:00 GMT is 00:00Z-01:00Z; 02:00-04:00 BST is 01:00Z-03:00Z
    assert cal.opening_instants(date(2026, 3, 29)) == [
        (utc("2026-03-29 00:00"), utc("2026-03-29 03:00"))
    ]
    assert due(cal, utc("2026-03-29 00:00"), 3, BH) == "2026-03-29 03:00:00"


def test_london_repeated_hour_is_open_twice() -> None:
    """Sun 25 Oct 00:00-04:00 holds 5 open hours: 01:00-02:00 shows twice."""
    cal = sunday_only(LONDON, "00:00-04:00")
    start = local(LONDON, "2026-10-25 00:00")  # BST: Sat 23:00Z
    assert cal.opening_instants(date(2026, 10, 25)) == [(start, utc("2026-10-25 04:00"))]
    assert due(cal, start, 5, BH) == "2026-10-25 04:00:00"
    assert due(cal, start, 4, BH) == "2026-10-25 03:00:00"


def test_london_repeated_hour_gives_two_runs_and_the_later_closing() -> None:
    """Sun 25 Oct 00:00-01:30 is open 00:00-01:30 BST and again 01:00-01:30 GMT."""
    cal = sunday_only(LONDON, "00:00-01:30")
    assert cal.opening_instants(date(2026, 10, 25)) == [
        (utc("2026-10-24 23:00"), utc("2026-10-25 00:30")),
        (utc("2026-10-25 01:00"), utc("2026-10-25 01:30")),
    ]
    # from Sat 17 Oct day0 is Sun 18 Oct; the 1st working day after is 25 Oct, which
    # closes at the end of its second run
    assert due(cal, local(LONDON, "2026-10-17 12:00"), 1, BD) == "2026-10-25 01:30:00"
    # 00:45Z is 01:45 BST, between the runs: 30 minutes are all of the second run
    assert due(cal, utc("2026-10-25 00:45"), 30, BM) == "2026-10-25 01:30:00"
    # and 00:45Z is before that day's last closing, so day0 is 25 Oct -> 1 Nov 01:30 GMT
    assert due(cal, utc("2026-10-25 00:45"), 1, BD) == "2026-11-01 01:30:00"


def test_london_days_and_weeks_keep_the_wall_clock() -> None:
    """days/weeks keep the local time across the change back to GMT."""
    cal = aston()
    # Sat 24 Oct 12:00 BST (11:00Z) + 1 day = Sun 12:00 GMT (12:00Z): 25 hours later
    assert due(cal, local(LONDON, "2026-10-24 12:00"), 1, Unit.DAYS) == "2026-10-25 12:00:00"
    # Mon 19 Oct 09:00 BST (08:00Z) + 1 week = Mon 26 Oct 09:00 GMT (09:00Z)
    assert due(cal, local(LONDON, "2026-10-19 09:00"), 1, Unit.WEEKS) == "2026-10-26 09:00:00"


def test_london_days_into_a_missing_or_repeated_wall_time_use_fold_0() -> None:
    """A target wall time that is skipped or repeated is resolved with fold=0."""
    cal = aston()
    # Sat 28 Mar 01:30 GMT + 1 day: Sun 01:30 does not exist; fold=0 reads it with the
    # offset before the change (GMT) -> 01:30Z, shown as 02:30 BST
    assert due(cal, utc("2026-03-28 01:30"), 1, Unit.DAYS) == "2026-03-29 01:30:00"
    # Sat 24 Oct 01:30 BST (00:30Z) + 1 day: Sun 01:30 happens twice; fold=0 is the BST one
    assert due(cal, utc("2026-10-24 00:30"), 1, Unit.DAYS) == "2026-10-25 00:30:00"
    # the second Sun 01:30 (GMT, 01:30Z) + 1 day = Mon 01:30 GMT
    second = local(LONDON, "2026-10-25 01:30", fold=1)
    assert second == utc("2026-10-25 01:30")
    assert due(cal, second, 1, Unit.DAYS) == "2026-10-26 01:30:00"


def test_london_business_days_across_the_change_to_bst() -> None:
    """Fri 27 Mar 12:00 GMT + 1 business day -> Mon 30 Mar 17:00 BST (16:00Z)."""
    assert due(aston(), local(LONDON, "2026-03-27 12:00"), 1, BD) == "2026-03-30 16:00:00"


# ---------------------------------------------------------------------------- DST: Amsterdam
def test_amsterdam_business_units_across_the_change_to_summer_time() -> None:
    """Weekday 09:00-17:00 counts are in local time on both sides of the change."""
    cal = nine_to_five(AMSTERDAM, PublicHolidays("NL"))
    # Fri 27 Mar 12:00 CET + 1 business day -> Mon 30 Mar 17:00 CEST (15:00Z)
    assert due(cal, local(AMSTERDAM, "2026-03-27 12:00"), 1, BD) == "2026-03-30 15:00:00"
    # Fri 16:00 CET + 2 business hours -> 1 h Friday, Mon 09:00-10:00 CEST -> 08:00Z
    assert due(cal, local(AMSTERDAM, "2026-03-27 16:00"), 2, BH) == "2026-03-30 08:00:00"


def test_amsterdam_sunday_lengths_on_change_days() -> None:
    """A Sunday open 00:00-24:00 holds 23 hours in March and 25 hours in October."""
    cal = sunday_only(AMSTERDAM, "00:00-24:00")
    march = local(AMSTERDAM, "2026-03-29 00:00")  # CET: Sat 23:00Z
    # 24:00 CEST is 22:00Z
    assert due(cal, march, 23, BH) == "2026-03-29 22:00:00"
    # one hour more is the next Sunday's first hour: 01:00 CEST on 5 Apr = Sat 23:00Z
    assert due(cal, march, 24, BH) == "2026-04-04 23:00:00"
    october = local(AMSTERDAM, "2026-10-25 00:00")  # CEST: Sat 22:00Z
    # 24:00 CET is 23:00Z
    assert due(cal, october, 25, BH) == "2026-10-25 23:00:00"
    assert due(cal, october, 1, BD) == "2026-11-01 23:00:00"


def test_amsterdam_days_and_weeks() -> None:
    """days/weeks keep the Amsterdam wall clock; a skipped target is read with fold=0."""
    cal = nine_to_five(AMSTERDAM)
    # Mon 23 Mar 09:00 CET (08:00Z) + 1 week = Mon 30 Mar 09:00 CEST (07:00Z)
    assert due(cal, local(AMSTERDAM, "2026-03-23 09:00"), 1, Unit.WEEKS) == "2026-03-30 07:00:00"
    # Sat 28 Mar 02:30 CET (01:30Z) + 1 day: Sun 02:30 is skipped; fold=0 reads it as CET
    # -> 01:30Z (shown as 03:30 CEST)
    assert due(cal, local(AMSTERDAM, "2026-03-28 02:30"), 1, Unit.DAYS) == "2026-03-29 01:30:00"
    # Sun 25 Oct 02:30 CET (second one, 01:30Z) + 1 day = Mon 02:30 CET = 01:30Z
    second = local(AMSTERDAM, "2026-10-25 02:30", fold=1)
    assert due(cal, second, 1, Unit.DAYS) == "2026-10-26 01:30:00"


# ---------------------------------------------------------------------------- DST: Dublin
def test_dublin_repeated_hour_inside_one_interval() -> None:
    """Sun 25 Oct 00:30-02:30 is one run of 3 hours: 01:00-02:00 shows twice."""
    cal = sunday_only(DUBLIN, "00:30-02:30")
    start = local(DUBLIN, "2026-10-25 00:30")  # IST: Sat 23:30Z
    assert start == utc("2026-10-24 23:30")
    assert due(cal, start, 180, BM) == "2026-10-25 02:30:00"
    assert due(cal, start, 150, BM) == "2026-10-25 02:00:00"


def test_dublin_skipped_hour_inside_one_interval() -> None:
    """Sun 29 Mar 00:30-02:30 holds 1 hour: 00:30-01:00 GMT and 02:00-02:30 IST."""
    cal = sunday_only(DUBLIN, "00:30-02:30")
    assert due(cal, utc("2026-03-29 00:30"), 60, BM) == "2026-03-29 01:30:00"
    # one more minute is the next Sunday's first: 5 Apr 00:31 IST = Sat 23:31Z
    assert due(cal, utc("2026-03-29 00:30"), 61, BM) == "2026-04-04 23:31:00"


def test_dublin_weeks_and_business_days_across_the_change_to_gmt() -> None:
    """Dublin: a week keeps 10:00; the October bank holiday follows the change."""
    cal = nine_to_five(DUBLIN, PublicHolidays("IE"))
    # Fri 23 Oct 10:00 IST (09:00Z) + 1 week = Fri 30 Oct 10:00 GMT (10:00Z)
    assert due(cal, local(DUBLIN, "2026-10-23 10:00"), 1, Unit.WEEKS) == "2026-10-30 10:00:00"
    # Fri 23 Oct 12:00 IST + 1 business day: Mon 26 Oct is the October Bank Holiday
    # -> Tue 27 Oct 17:00 GMT
    assert due(cal, local(DUBLIN, "2026-10-23 12:00"), 1, BD) == "2026-10-27 17:00:00"


# ---------------------------------------------------------------------------- holidays
def test_easter_in_england() -> None:
    """Good Friday and Easter Monday 2026 (3 and 6 Apr) are closed in GB-ENG."""
    cal = aston()
    assert cal.closed_reason(date(2026, 4, 3)) == "Good Friday"
    assert cal.closed_reason(date(2026, 4, 6)) == "Easter Monday"
    assert not cal.is_working_day(date(2026, 4, 3))
    # Thu 2 Apr 16:00 BST + 1 business day -> Tue 7 Apr 17:00 BST (16:00Z)
    assert due(cal, local(LONDON, "2026-04-02 16:00"), 1, BD) == "2026-04-07 16:00:00"
    # Thu 16:30 + 1 business hour: 30 min Thursday, then Tue 08:30-09:00 BST (08:00Z)
    assert due(cal, local(LONDON, "2026-04-02 16:30"), 1, BH) == "2026-04-07 08:00:00"


def test_easter_in_the_netherlands() -> None:
    """Good Friday and Easter Monday are closed in NL: Thu 2 Apr + 1 -> Tue 7 Apr 17:00 CEST."""
    cal = nine_to_five(AMSTERDAM, PublicHolidays("NL"))
    assert due(cal, local(AMSTERDAM, "2026-04-02 12:00"), 1, BD) == "2026-04-07 15:00:00"


def test_easter_in_ireland_closes_monday_but_not_good_friday() -> None:
    """Good Friday is not a public holiday in IE; Easter Monday is."""
    cal = nine_to_five(DUBLIN, PublicHolidays("IE"))
    assert cal.is_working_day(date(2026, 4, 3))
    # Thu 2 Apr 12:00 IST: 1 -> Fri 3 Apr 17:00 IST (16:00Z); 2 -> Tue 7 Apr 17:00 IST
    assert due(cal, local(DUBLIN, "2026-04-02 12:00"), 1, BD) == "2026-04-03 16:00:00"
    assert due(cal, local(DUBLIN, "2026-04-02 12:00"), 2, BD) == "2026-04-07 16:00:00"


def test_christmas_and_boxing_day_in_england() -> None:
    """Christmas 2026 is a Friday; Boxing Day (Sat) is observed on Mon 28 Dec."""
    cal = aston()
    assert cal.closed_reason(date(2026, 12, 28)) == "Boxing Day (observed)"
    # Thu 24 Dec 10:00 + 1 business day -> Tue 29 Dec 17:00 GMT
    assert due(cal, local(LONDON, "2026-12-24 10:00"), 1, BD) == "2026-12-29 17:00:00"


def test_christmas_and_st_stephens_day_in_ireland() -> None:
    """In 2025 Christmas (Thu) and St Stephen's Day (Fri) are closed in IE."""
    cal = nine_to_five(DUBLIN, PublicHolidays("IE"))
    assert cal.closed_reason(date(2025, 12, 26)) == "Saint Stephen's Day"
    # Wed 24 Dec 10:00 + 1 business day -> Mon 29 Dec 17:00 GMT
    assert due(cal, local(DUBLIN, "2025-12-24 10:00"), 1, BD) == "2025-12-29 17:00:00"


def test_christmas_in_the_netherlands() -> None:
    """Both Christmas days 2025 (Thu, Fri) are closed in NL: Wed 24 + 1 -> Mon 29 Dec."""
    cal = nine_to_five(AMSTERDAM, PublicHolidays("NL"))
    # 17:00 CET is 16:00Z
    assert due(cal, local(AMSTERDAM, "2025-12-24 12:00"), 1, BD) == "2025-12-29 16:00:00"


def test_kings_day_in_the_netherlands() -> None:
    """King's Day, Mon 27 Apr 2026, is closed: Fri 24 Apr + 1 -> Tue 28 Apr 17:00 CEST."""
    cal = nine_to_five(AMSTERDAM, PublicHolidays("NL"))
    assert cal.closed_reason(date(2026, 4, 27)) == "King's Day"
    assert due(cal, local(AMSTERDAM, "2026-04-24 12:00"), 1, BD) == "2026-04-28 15:00:00"


def test_st_patricks_day_in_ireland() -> None:
    """St Patrick's Day, Tue 17 Mar 2026, is closed: Mon 16 + 1 -> Wed 18 Mar 17:00 GMT."""
    cal = nine_to_five(DUBLIN, PublicHolidays("IE"))
    assert cal.closed_reason(date(2026, 3, 17)) == "Saint Patrick's Day"
    assert due(cal, local(DUBLIN, "2026-03-16 12:00"), 1, BD) == "2026-03-18 17:00:00"


def test_holidays_of_another_country_do_not_close() -> None:
    """King's Day is a working day for Aston (GB-ENG)."""
    assert aston().is_working_day(date(2026, 4, 27))


# ---------------------------------------------------------------------------- year boundary
def test_deadline_crossing_new_year() -> None:
    """Thu 31 Dec 2026: New Year's Day (Fri) is closed, so the next working day is Mon 4 Jan."""
    cal = aston()
    assert due(cal, local(LONDON, "2026-12-31 10:00"), 1, BD) == "2027-01-04 17:00:00"
    # 30 min left on Thu, then Mon 08:30-09:00
    assert due(cal, local(LONDON, "2026-12-31 16:30"), 1, BH) == "2027-01-04 09:00:00"


def test_ten_business_days_over_christmas_and_new_year() -> None:
    """From Thu 24 Dec 2026: 29, 30, 31 Dec, 4-8 Jan, 11, 12 Jan -> Tue 12 Jan 17:00."""
    assert due(aston(), local(LONDON, "2026-12-24 10:00"), 10, BD) == "2027-01-12 17:00:00"


def test_deadlines_more_than_a_year_ahead_and_back_in_time() -> None:
    """One calendar serves a deadline years ahead, then an earlier start."""
    cal = calendar(UTC_ZONE, {0: hours("09:00-17:00")})  # Mondays only
    # Mon 2 Mar 2026 is day0; its 100th Monday after is 700 days later, Mon 31 Jan 2028
    assert due(cal, utc("2026-03-02 10:00"), 100, BD) == "2028-01-31 17:00:00"
    assert due(cal, utc("2024-03-04 10:00"), 1, BD) == "2024-03-11 17:00:00"
    assert due(cal, utc("2024-03-04 16:00"), 2, BH) == "2024-03-11 10:00:00"


# ---------------------------------------------------------------------------- extra dates
def test_extra_closed_date() -> None:
    """An extra closed date is skipped and named by closed_reason."""
    cal = aston(extra_closed={date(2026, 3, 3): "staff training"})
    assert cal.closed_reason(date(2026, 3, 3)) == "staff training"
    # Mon 10:00 + 2 business days: Tue closed -> Wed (1), Thu (2) 17:00
    assert due(cal, local(LONDON, "2026-03-02 10:00"), 2, BD) == "2026-03-05 17:00:00"
    # 1 business hour from Mon 16:30: 30 min Mon, then Wed 08:30-09:00
    assert due(cal, local(LONDON, "2026-03-02 16:30"), 1, BH) == "2026-03-04 09:00:00"


def test_extra_open_date_overrides_a_public_holiday() -> None:
    """Opening on Good Friday makes it a working day with its Friday hours (16:30 BST)."""
    cal = aston(extra_open=frozenset({date(2026, 4, 3)}))
    assert cal.closed_reason(date(2026, 4, 3)) is None
    assert due(cal, local(LONDON, "2026-04-02 12:00"), 1, BD) == "2026-04-03 15:30:00"


def test_extra_open_date_without_hours_stays_closed() -> None:
    """An extra open Saturday has no opening hours, so it is still not a working day."""
    cal = aston(extra_open=frozenset({date(2026, 3, 7)}))
    assert not cal.is_working_day(date(2026, 3, 7))
    assert due(cal, local(LONDON, "2026-03-06 16:45"), 1, BD) == "2026-03-10 17:00:00"


# ---------------------------------------------------------------------------- no working time
def closed_from_2027(year: int) -> dict[date, str]:
    """A holiday source that closes every date from 2027 on."""
    if year < 2027:
        return {}
    first = date(year, 1, 1)
    return {
        first + timedelta(days=i): "closed for good"
        for i in range((date(year + 1, 1, 1) - first).days)
    }


@pytest.mark.parametrize("unit", [BD, BH, BM])
def test_no_working_time_ahead_raises_calendar_error(unit: Unit) -> None:
    """A business count that can never end raises CalendarError."""
    cal = calendar(UTC_ZONE, {d: hours("09:00-17:00") for d in range(5)}, holidays=closed_from_2027)
    with pytest.raises(CalendarError, match="no working time"):
        cal.deadline(utc("2026-12-31 17:00:01"), Duration(1, unit))
    # the working time that is left still counts
    assert due(cal, utc("2026-12-31 16:00"), 60, BM) == "2026-12-31 17:00:00"


# ---------------------------------------------------------------------------- invalid hours
@pytest.mark.parametrize(("start", "end"), [(600, 600), (700, 600), (-1, 60), (0, 1441)])
def test_invalid_interval_raises_value_error(start: int, end: int) -> None:
    """An interval must satisfy 00:00 <= start < end <= 24:00."""
    with pytest.raises(ValueError, match="must satisfy"):
        OpeningInterval(start, end)


def test_overlapping_intervals_raise_value_error() -> None:
    """Two intervals of one weekday may not overlap."""
    with pytest.raises(ValueError, match="overlap"):
        BusinessCalendar(UTC_ZONE, {0: hours("09:00-12:00", "11:00-17:00")})


def test_no_opening_hours_at_all_raise_value_error() -> None:
    """A calendar needs opening hours on at least one weekday."""
    with pytest.raises(ValueError, match="no opening hours"):
        BusinessCalendar(UTC_ZONE, {0: ()})


# ---------------------------------------------------------------------------- odd zones
def test_fall_back_across_midnight_keeps_time_order() -> None:
    """Goose Bay 2 Nov 2008: at 00:01 ADT (03:01Z) clocks went back to 23:01 AST on Saturday."""
    zone = ZoneInfo("America/Goose_Bay")
    cal = calendar(zone, {5: hours("00:00-24:00"), 6: hours("00:00-24:00")})
    # Saturday shows until 24:00 ADT (03:00Z) and again 23:01-24:00 AST (03:01Z-04:00Z)
    assert cal.opening_instants(date(2008, 11, 1)) == [
        (utc("2008-11-01 03:00"), utc("2008-11-02 03:00")),
        (utc("2008-11-02 03:01"), utc("2008-11-02 04:00")),
    ]
    # the whole weekend is open, so opening time runs without a break across 03:00Z
    assert due(cal, utc("2008-11-02 03:00"), 2, BM) == "2008-11-02 03:02:00"
    # 03:00:30Z shows Sun 00:00:30: day0 is Sunday, though Saturday closes later (04:00Z);
    # the next working day is Sat 8 Nov, closing 24:00 AST = 9 Nov 04:00Z
    assert due(cal, utc("2008-11-02 03:00:30"), 1, BD) == "2008-11-09 04:00:00"


def test_repeated_half_hour_at_the_end_of_the_day() -> None:
    """Rarotonga 2 Mar 1985: at 24:00 (UTC-9:30) clocks went back to 23:30 (UTC-10)."""
    zone = ZoneInfo("Pacific/Rarotonga")
    cal = calendar(zone, {5: hours("23:00-24:00")})
    # 23:00 (-9:30) is 08:30Z; 23:30-24:00 shows twice, the second time until 10:00Z
    assert cal.opening_instants(date(1985, 3, 2)) == [
        (utc("1985-03-03 08:30"), utc("1985-03-03 10:00"))
    ]
    assert due(cal, utc("1985-03-03 08:30"), 90, BM) == "1985-03-03 10:00:00"


@pytest.mark.parametrize("text", ["09:00-17:00", "00:00-24:00", "12:30-13:45"])
def test_opening_hours_text_round_trips(text: str) -> None:
    """`OpeningInterval.parse` reads what `str` writes."""
    assert str(OpeningInterval.parse(text)) == text


def test_touching_intervals_are_no_overlap_but_crossing_ones_are() -> None:
    """`overlaps` names the neighbours that cross, not the ones that only touch."""
    a, b, c = (OpeningInterval.parse(t) for t in ("09:00-12:00", "12:00-13:00", "12:30-14:00"))
    assert overlaps([c, a, b]) == [(b, c)]
