"""The one failing CRM of the test suite: the local CRM whose updates of chosen ids fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crmsync.adapters.crm.local import LocalCrm
from crmsync.ports import WriteResult


class FailingCrm(LocalCrm):
    """The local CRM, except that updates of the ids in ``fail_ids`` fail permanently, as a
    validation rule or an approval lock makes them fail in an org (a fake, no mock)."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.fail_ids: set[str] = set()

    def update_records(
        self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        passing = [u for u in updates if u[0] not in self.fail_ids]
        done = {r.ref: r for r in super().update_records(object, passing)}
        return [
            done[rid]
            if rid in done
            else WriteResult(
                rid,
                False,
                error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                message="locked by an approval process",
                fields=tuple(fields),
            )
            for rid, fields in updates
        ]
