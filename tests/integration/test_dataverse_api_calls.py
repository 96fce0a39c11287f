"""The Dataverse scenario of bench/api_calls.py, small: the calls a cycle makes are the
contract's minimum (reference-org-dynamics.md), and a cycle with nothing changed makes
one read per table and no write."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_calls", ROOT / "bench" / "api_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_changed_cycle_makes_the_minimum_and_the_quiet_one_reads_each_table_once() -> None:
    """12 changed complaints, 6 flag writes, 3 new follow-ups: one clock read; one page of
    incidents, the tasks, status changes and recycle bin read once since the last cycle
    and the changed complaints' tasks and status changes once in bulk; one $batch for
    the flags and one for the follow-ups. Its writes read back change nothing. Nothing
    changed: the clock and one read of each of the four tables."""
    cycles = bench().run_dataverse(12, 6, 3)
    changed, echo, nothing = cycles["changed"], cycles["echo"], cycles["nothing"]
    assert (changed["flags_written"], changed["tasks_created"]) == (6, 3)
    assert changed["by_kind"] == {"time": 1, "query": 1 + 3 + 2, "write": 1 + 1}
    assert (echo["flags_written"], echo["tasks_created"]) == (0, 0)  # our writes read back
    assert (nothing["flags_written"], nothing["tasks_created"]) == (0, 0)
    assert nothing["by_kind"] == {"time": 1, "query": 4}
