"""The one manual clock of the test suite: it stands still until a test moves it."""

from __future__ import annotations

from datetime import datetime, timedelta


class ManualClock:
    """A clock that stands still until a test moves it (shared by every client of a store).

    Built from an aware ``datetime`` or its ISO text; calling it returns the current time.
    """

    def __init__(self, now: datetime | str) -> None:
        self.now = datetime.fromisoformat(now) if isinstance(now, str) else now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by ``timedelta(**delta)`` and return the new time."""
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime | str) -> datetime:
        """Put the clock at ``when`` (a ``datetime`` or its ISO text) and return it."""
        self.now = datetime.fromisoformat(when) if isinstance(when, str) else when
        return self.now
