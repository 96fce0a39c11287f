"""What staff read, in their language: instants as local date and time (Babel's CLDR data).

``format_local(instant, zone, language)`` writes an instant in the charter's time zone
the way the language writes dates ("Tue 22 Sept 2026 16:39", "di 22 sep 2026 16:39",
"Máirt 22 MFómh 2026 16:39"): CLDR's abbreviated weekday-day-month-year form and its
24-hour time, for the locale of the language in the zone's country when CLDR has one
(``en`` in Europe/Dublin is ``en_IE``), else for the language alone, else English.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_skeleton

_DATE = "yMMMEd"
_TIME = "Hm"


@cache
def _locale(language: str, zone_key: str) -> Locale:
    territory = get_global("zone_territories").get(zone_key)
    for candidate in ([f"{language}_{territory}"] if territory else []) + [language, "en"]:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def format_local(instant: int, zone: ZoneInfo, language: str) -> str:
    """``instant`` (epoch seconds) as local date and time in ``zone``, written in
    ``language`` (an ISO 639-1 code such as ``en``, ``nl``, ``ga``)."""
    moment = datetime.fromtimestamp(instant, zone)
    locale = _locale(language, zone.key)
    return (
        f"{format_skeleton(_DATE, moment, locale=locale)} "
        f"{format_skeleton(_TIME, moment, locale=locale)}"
    )
