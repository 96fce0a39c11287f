"""Public holidays from the ``holidays`` package, as a ``HolidaySource`` for the calendar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache

import holidays


@cache
def supported_countries() -> dict[str, list[str]]:
    """Country code -> its subdivision codes, as the installed ``holidays`` knows them."""
    return {k: list(v) for k, v in holidays.list_supported_countries().items()}


class PublicHolidays:
    """The public holidays of one country (and subdivision), named in English where possible."""

    def __init__(self, country: str, subdivision: str | None = None) -> None:
        self.country = country
        self.subdivision = subdivision

    def __call__(self, year: int) -> Mapping[date, str]:
        """The holidays of ``year``: date -> name (several names joined with '; ')."""
        try:
            table = holidays.country_holidays(
                self.country, subdiv=self.subdivision, years=year, language="en_US"
            )
        except (NotImplementedError, ValueError):
            table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
        return {day: str(name) for day, name in table.items()}

    def __repr__(self) -> str:
        sub = f"-{self.subdivision}" if self.subdivision else ""
        return f"PublicHolidays({self.country}{sub})"
