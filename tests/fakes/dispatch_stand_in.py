"""A profile's worker as the replicas' dispatcher sees it, for tests and the replicas
benchmark that tick the dispatcher without any CRM behind the profiles."""

from __future__ import annotations


class StandIn:
    """A profile's worker as the dispatcher sees it: an interval, no monthly report."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.interval = 300

    @staticmethod
    def report_folder() -> None:
        return None
