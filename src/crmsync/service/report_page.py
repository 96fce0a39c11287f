"""What a report page says about its origin (light: no matplotlib behind it)."""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.domain.charter import Charter


@dataclass(frozen=True)
class PageSource:
    """The charter(s) a report was made with and where its complaints came from."""

    charter: Charter
    source: str
    compare: Charter | None = None
