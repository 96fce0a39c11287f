"""Crash safety with real processes: ``crmsync sync --once`` killed by SIGKILL at any point
of a cycle, then simply run again, ends exactly where a run that was never killed ends.

Every scenario starts from a copy of one prepared data folder (local CRM + SQLite state
store), kills a real ``python -m crmsync sync --once`` with SIGKILL (at a named step through
``CRMSYNC_CRASH_AT``, or after a random delay from the parent), checks what the dead process
left (the watermark never passes a record that is not yet right), runs the cycle again
without a crash, runs one more cycle that must write nothing, and compares the CRM and the
state store with a reference folder that ran the same cycles without any crash. Every run
uses the same ``--now``, so even ``Charter_Checked_At__c`` must be equal.

The scenarios are independent real processes: the module fixture starts all of them two at
a time in the background; each parametrised test waits for its own one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.salesforce_values import parse_sf_datetime
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import LedgerEntry, StoredComplaint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "salesforce.yaml"
CHARTERS = REPO / "mappings" / "charters"
STATE_FILE = "state.sqlite3"
PROFILE = "default"
SEED_NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
NOW1 = "2026-03-20T12:00:00Z"  # the first cycle (a Friday), also the seed's present
NOW2 = "2026-03-23T12:00:00Z"  # a later cycle, the Monday after, once staff have acted
CHANGED_AT = "2026-03-20T13:00:00.000+0000"  # when staff acted (between NOW1 and NOW2)
FLAG_FIELDS = (
    "Charter_Status__c",
    "Charter_Breaches__c",
    "Charter_Next_Due__c",
    "Charter_Checked_At__c",
)
KEY_FIELD = "CrmSync_Key__c"
SYSTEM_FIELDS = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"})
RUN_TIMEOUT_S = 180
WORKERS = max(2, os.cpu_count() or 2) + 1  # one more: runs also wait on fsync

# ---------------------------------------------------------------------------- what is read


@dataclass(frozen=True)
class Snapshot:
    """What a data folder holds: the CRM's complaints and follow-ups, and the state store."""

    flags: dict[str, tuple[Any, ...]]  # case id -> the four write-back values
    modstamps: dict[str, datetime]  # case id -> SystemModstamp
    tasks: dict[str, dict[str, Any]]  # follow-up key -> fields (system fields left out)
    task_ids: dict[str, list[str]]  # follow-up key -> ids of the Tasks carrying it
    updates_modstamp: dict[str, datetime]  # case id -> newest customer-update Task modstamp
    watermarks: dict[str, datetime | None]
    ledger: dict[str, LedgerEntry]
    stored: dict[str, StoredComplaint]

    def tasks_of(self, case_id: str) -> dict[str, dict[str, Any]]:
        return {k: f for k, f in self.tasks.items() if f.get("WhatId") == case_id}


def read_snapshot(data_dir: Path) -> Snapshot:
    """Read a data folder no process is writing (the local CRM and the state store)."""
    flags: dict[str, tuple[Any, ...]] = {}
    modstamps: dict[str, datetime] = {}
    tasks: dict[str, dict[str, Any]] = {}
    task_ids: dict[str, list[str]] = {}
    updates: dict[str, datetime] = {}
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        for case in crm.export_records("Case"):
            flags[case.id] = tuple(case.fields.get(f) for f in FLAG_FIELDS)
            modstamps[case.id] = parse_sf_datetime(case.fields["SystemModstamp"])
        for task in crm.export_records("Task"):
            key = task.fields.get(KEY_FIELD)
            if isinstance(key, str):
                task_ids.setdefault(key, []).append(task.id)
                tasks[key] = {k: v for k, v in task.fields.items() if k not in SYSTEM_FIELDS}
            elif task.fields.get("Type") == "Customer Update":
                stamp = parse_sf_datetime(task.fields["SystemModstamp"])
                parent = str(task.fields["WhatId"])
                updates[parent] = max(stamp, updates.get(parent, stamp))
    watermarks: dict[str, datetime | None] = {"complaints": None, "related:customer_update": None}
    ledger: dict[str, LedgerEntry] = {}
    stored: dict[str, StoredComplaint] = {}
    if (data_dir / STATE_FILE).exists():
        store = SqliteStateStore(data_dir / STATE_FILE)
        try:
            for name in watermarks:
                watermarks[name] = store.get_watermark(PROFILE, name)
            ids = sorted(flags)
            ledger = {e.key: e for e in store.ledger_for_complaints(PROFILE, ids)}
            stored = store.get_complaints(PROFILE, ids)
        finally:
            store.close()
    return Snapshot(flags, modstamps, tasks, task_ids, updates, watermarks, ledger, stored)


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def differences(got: Snapshot, ref: Snapshot) -> list[str]:
    """Everything in which ``got`` differs from the reference, as readable lines."""
    problems: list[str] = []
    duplicates = sorted(k for k, ids in got.task_ids.items() if len(ids) > 1)
    if duplicates:
        problems.append(f"duplicate {KEY_FIELD} among Tasks: {_first(duplicates)}")
    wrong = sorted(c for c in ref.flags if got.flags.get(c) != ref.flags[c])
    if wrong:
        c = wrong[0]
        problems.append(
            f"{len(wrong)} case(s) with other flags, e.g. {c}: {got.flags.get(c)} "
            f"instead of {ref.flags[c]}"
        )
    missing = sorted(set(ref.tasks) - set(got.tasks))
    extra = sorted(set(got.tasks) - set(ref.tasks))
    if missing:
        problems.append(f"follow-ups missing: {_first(missing)}")
    if extra:
        problems.append(f"follow-ups that should not exist: {_first(extra)}")
    unequal = sorted(k for k in set(ref.tasks) & set(got.tasks) if got.tasks[k] != ref.tasks[k])
    for key in unequal[:3]:
        fields = sorted(
            f
            for f in set(got.tasks[key]) | set(ref.tasks[key])
            if got.tasks[key].get(f) != ref.tasks[key].get(f)
        )
        problems.append(f"follow-up {key}: fields differ: {', '.join(fields)}")

    def entry(e: LedgerEntry) -> tuple[Any, ...]:
        return (e.complaint_id, e.clock, e.occurrence, e.state, e.status, e.error, e.updated_at)

    ledger_diff = sorted(
        k
        for k in set(got.ledger) | set(ref.ledger)
        if k not in got.ledger
        or k not in ref.ledger
        or entry(got.ledger[k]) != entry(ref.ledger[k])
    )
    if ledger_diff:
        k = ledger_diff[0]
        problems.append(
            f"{len(ledger_diff)} ledger entr(ies) differ, e.g. {k}: "
            f"{got.ledger.get(k)} instead of {ref.ledger.get(k)}"
        )
    dangling = sorted(
        k
        for k, e in got.ledger.items()
        if e.crm_id is not None and got.task_ids.get(k, [None])[0] != e.crm_id
    )
    if dangling:
        problems.append(f"ledger entries naming a Task that does not hold the key: {dangling[:3]}")

    def kept(s: StoredComplaint) -> tuple[Any, ...]:
        return (dict(s.canonical), dict(s.flags), s.next_check, s.source_hash, s.closed)

    stored_diff = sorted(
        c
        for c in set(got.stored) | set(ref.stored)
        if c not in got.stored or c not in ref.stored or kept(got.stored[c]) != kept(ref.stored[c])
    )
    if stored_diff:
        problems.append(f"{len(stored_diff)} stored complaint(s) differ: {_first(stored_diff)}")
    return problems


def watermark_problems(got: Snapshot, ref: Snapshot, now: int) -> list[str]:
    """Records whose flags or follow-ups are not yet right must be read again next cycle.

    The next cycle reads a complaint again when its SystemModstamp is not before the
    complaints watermark, when one of its customer updates is not before the related
    watermark, or when the state store has it due by ``now`` or last evaluated at a later
    instant. Anything else not yet right would never be fixed: the watermark went past it.
    """
    mark = got.watermarks["complaints"]
    related_mark = got.watermarks["related:customer_update"]
    problems: list[str] = []
    for case_id, flags in sorted(got.flags.items()):
        if flags == ref.flags[case_id] and got.tasks_of(case_id) == ref.tasks_of(case_id):
            continue
        if mark is None or got.modstamps[case_id] >= mark:
            continue
        stored = got.stored.get(case_id)
        if stored is not None and stored.next_check is not None and stored.next_check <= now:
            continue
        if stored is not None and (stored.evaluated_at is None or stored.evaluated_at > now):
            continue  # last evaluated at a later now (a replay): evaluated again next cycle
        update = got.updates_modstamp.get(case_id)
        if update is not None and (related_mark is None or update >= related_mark):
            continue
        problems.append(
            f"watermark {mark.isoformat()} passed case {case_id} (SystemModstamp "
            f"{got.modstamps[case_id].isoformat()}) whose flags or follow-ups are not yet right"
        )
    return problems[:5]


# ---------------------------------------------------------------------------- processes


def cli_env(data_dir: Path, charter: str, crash_at: str | None = None) -> dict[str, str]:
    """The environment of a child: this test's settings only, small write batches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update(
        CRMSYNC_DATA_DIR=str(data_dir),
        CRMSYNC_CHARTER=str(CHARTERS / f"{charter}.yaml"),
        CRMSYNC_MAPPING=str(MAPPING),
        CRMSYNC_WRITE_BATCH="20",
        CRMSYNC_LOG_FORMAT="json",
        # every follow-up since the seed's first complaint: enough writes for every crash point
        CRMSYNC_FOLLOW_UP_SINCE="2026-01-01T00:00:00Z",
    )
    if crash_at is not None:
        env["CRMSYNC_CRASH_AT"] = crash_at
    return env


def sync_command(now: str) -> list[str]:
    return [sys.executable, "-m", "crmsync", "sync", "--once", "--now", now, "--json"]


@dataclass
class Run:
    """A finished ``sync --once``: exit status, its ``--json`` summary, its log events."""

    returncode: int
    summary: dict[str, Any] | None
    events: list[dict[str, Any]]
    stderr: str

    def seconds_in_cycle(self) -> float:
        stamps = {
            e["event"]: datetime.fromisoformat(e["timestamp"])
            for e in self.events
            if e.get("event") in ("cycle_started", "cycle_finished")
        }
        return (stamps["cycle_finished"] - stamps["cycle_started"]).total_seconds()


def _events(stderr: str) -> list[dict[str, Any]]:
    events = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def sync_once(data_dir: Path, charter: str, now: str, crash_at: str | None = None) -> Run:
    """Run ``crmsync sync --once`` to its end (or to the crash it was told to have)."""
    done = subprocess.run(
        sync_command(now),
        env=cli_env(data_dir, charter, crash_at),
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    summary = json.loads(done.stdout) if done.returncode in (0, 3) and done.stdout else None
    return Run(done.returncode, summary, _events(done.stderr), done.stderr)


def sync_killed_after(data_dir: Path, charter: str, now: str, delay: float) -> int:
    """Start ``sync --once`` and SIGKILL it ``delay`` seconds after its cycle started; the
    exit status (``-SIGKILL`` when the kill landed, 0 when the cycle was done first)."""
    with subprocess.Popen(
        sync_command(now),
        env=cli_env(data_dir, charter),
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if '"cycle_started"' in line:
                break
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # our own child, not yet reaped: safe
        proc.stderr.read()
        return proc.wait(timeout=RUN_TIMEOUT_S)


# ---------------------------------------------------------------------------- preparation


def seed(data_dir: Path, charter: str, count: int, days: int) -> None:
    """A local CRM with ``count`` generated complaints received in the ``days`` to NOW1
    (recent enough that many clocks still run, so the later cycle has work)."""
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(MAPPING),
            charter,
            count=count,
            seed=11,
            start=SEED_NOW - timedelta(days=days),
            span_days=days,
            now=SEED_NOW,
        )


def staff_act(data_dir: Path, *, customer_updates: bool) -> None:
    """Between the cycles staff record decisions on 30 undecided complaints that have open
    follow-ups (so follow-ups get completed), acknowledgements on 6 more and, for the
    charters with interim updates, a customer update on 6 more."""
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        cases = {r.id: r.fields for r in crm.export_records("Case")}
        open_cases = sorted(
            {
                str(t.fields["WhatId"])
                for t in crm.export_records("Task")
                if t.fields.get(KEY_FIELD) and t.fields.get("Status") != "Completed"
            }
        )
        undecided = [c for c in open_cases if not cases[c].get("Decision_At__c")]
        decide, rest = undecided[:30], undecided[30:]
        acknowledge = [c for c in rest if not cases[c].get("Acknowledged_At__c")][:6]
        update = [c for c in rest if c not in acknowledge][:6] if customer_updates else []
        changes = [(c, {"Decision_At__c": CHANGED_AT}) for c in decide]
        changes += [(c, {"Acknowledged_At__c": CHANGED_AT}) for c in acknowledge]
        assert all(r.ok for r in crm.update_records("Case", changes))
        rows = [
            {
                "WhatId": c,
                "Type": "Customer Update",
                "Subject": "Progress update sent",
                "Status": "Completed",
                "CompletedDateTime": CHANGED_AT,
            }
            for c in update
        ]
        if rows:
            assert all(r.ok for r in crm.insert_records("Task", rows))


@dataclass(frozen=True)
class Phase:
    """A cycle to crash: where it starts, which charter, as of when, and how it must end."""

    name: str
    charter: str
    start: Path  # the data folder every scenario of this phase copies
    now: str
    reference: Snapshot
    first_run: Run  # the reference's uninterrupted run of this cycle
    second_run: Run  # the reference's extra cycle after it


def reference_phases(
    base: Path, charter: str, count: int, days: int, *, updates: bool
) -> list[Phase]:
    """Seed, then run the first cycle, let staff act, run a later cycle: never killed."""
    seeded = base / "seeded"
    seed(seeded, charter, count, days)
    ref1 = base / "reference-1"
    shutil.copytree(seeded, ref1)
    run1, extra1 = sync_once(ref1, charter, NOW1), sync_once(ref1, charter, NOW1)
    changed = base / "changed"
    shutil.copytree(ref1, changed)
    staff_act(changed, customer_updates=updates)
    ref2 = base / "reference-2"
    shutil.copytree(changed, ref2)
    run2, extra2 = sync_once(ref2, charter, NOW2), sync_once(ref2, charter, NOW2)
    replayed = base / "replayed"  # after the later cycle, the first instant replayed
    shutil.copytree(ref2, replayed)
    ref3 = base / "reference-3"
    shutil.copytree(ref2, ref3)
    run3, extra3 = sync_once(ref3, charter, NOW1), sync_once(ref3, charter, NOW1)
    for run in (run1, extra1, run2, extra2, run3, extra3):
        assert run.returncode == 0, run.stderr
    return [
        Phase(f"{charter}-first", charter, seeded, NOW1, read_snapshot(ref1), run1, extra1),
        Phase(f"{charter}-later", charter, changed, NOW2, read_snapshot(ref2), run2, extra2),
        Phase(f"{charter}-replay", charter, replayed, NOW1, read_snapshot(ref3), run3, extra3),
    ]


# ---------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    """What one scenario found; ``problems`` empty means crash safe."""

    exit_codes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_scenario(phase: Phase, work: Path, kills: list[str | float]) -> Outcome:
    """Copy the phase's start, kill a run at each of ``kills`` in turn (a step name for
    ``CRMSYNC_CRASH_AT`` or a delay in seconds), check the watermark after each kill, run
    again to the end and once more, and compare with the reference."""
    outcome = Outcome()
    shutil.copytree(phase.start, work)
    now = int(datetime.fromisoformat(phase.now).timestamp())
    for kill in kills:
        if isinstance(kill, str):
            code = sync_once(work, phase.charter, phase.now, crash_at=kill).returncode
            if code != -signal.SIGKILL:
                outcome.problems.append(f"the run told to crash at {kill} exited with {code}")
        else:
            code = sync_killed_after(work, phase.charter, phase.now, kill)
            if code not in (0, -signal.SIGKILL):
                outcome.problems.append(f"the run killed after {kill:.3f} s exited with {code}")
        outcome.exit_codes.append(code)
        outcome.problems += watermark_problems(read_snapshot(work), phase.reference, now)
    recovery = sync_once(work, phase.charter, phase.now)
    if recovery.returncode != 0 or recovery.summary is None:
        outcome.problems.append(f"the run after the crash failed: {recovery.stderr[-2000:]}")
        return outcome
    if recovery.summary["status"] != "ok":
        outcome.problems.append(f"the run after the crash ended {recovery.summary['status']}")
    final = sync_once(work, phase.charter, phase.now)
    if final.summary is None:
        outcome.problems.append(f"the extra cycle failed: {final.stderr[-2000:]}")
        return outcome
    writes = {k: final.summary[k] for k in ("flags_written", "tasks_created", "tasks_completed")}
    if any(writes.values()) or final.summary["errors"]:
        outcome.problems.append(f"the extra cycle still wrote: {writes} {final.summary['errors']}")
    outcome.problems += differences(read_snapshot(work), phase.reference)
    return outcome


# Write batches of 20 operations: each write call of the CRM carries up to 20 follow-ups to
# create, follow-ups to complete and flags, in that order. ``writes_sent:n`` kills after the
# n-th call returned and before anything of it was recorded (the CRM holds the writes, the
# ledger still has its follow-ups planned); ``writes_recorded:n`` after the ledger recorded
# it. The first Aston cycle creates about 130 follow-ups and writes 650 flags in one page:
# 6 calls of follow-ups, a 7th of the last follow-ups and the first flags, then flags. The
# later one completes about 30 follow-ups and flags about 30 complaints: its changed page
# makes a call of completions and one of completions and flags; then a page of due
# complaints plans its follow-ups (``tasks_planned``) and makes a call of follow-ups and one
# of follow-ups and flags. ``test_references_exercise_every_kind_of_write`` checks those
# counts; a step that is never reached shows as a run that was not killed. Every hook step
# is here at least once; each scenario costs three real processes, so steps that would
# repeat another scenario's situation exactly (the 2nd of 3 flag calls, say) are left out.
FIRST_CYCLE_STEPS = [
    "pulled_window",
    "tasks_planned",
    "writes_sent:1",
    "writes_recorded:1",
    "writes_sent:7",
    "writes_recorded:9",
    "state_written",
    "before_watermark",
    "done",
]
LATER_CYCLE_STEPS = [
    "writes_sent:1",
    "writes_recorded:2",
    "tasks_planned",
    "writes_sent:3",
    "writes_sent:4",
    "state_written:2",
    "before_watermark",
]
# A replay of NOW1 after the NOW2 cycles: every complaint evaluated again at the earlier
# instant, flags written back (staff's decisions of the 20th are after NOW1: not yet made).
REPLAY_STEPS = ["writes_sent:1", "state_written"]
SQUARE_MILE_STEPS = {
    "the-square-mile-first": ["writes_recorded:2"],
    "the-square-mile-later": ["writes_sent:2", "state_written:1"],
}
RANDOM_SEEDS = {
    "aston-first": [1],
    "aston-later": [2],
    "the-square-mile-later": [3],
}


def scenarios(phases: dict[str, Phase]) -> dict[str, tuple[Phase, list[str | float]]]:
    """Every scenario by id: one kill at each named step, two kills at random instants."""
    table: dict[str, tuple[Phase, list[str | float]]] = {}
    for step in FIRST_CYCLE_STEPS:
        table[f"aston-first/{step}"] = (phases["aston-first"], [step])
    for step in LATER_CYCLE_STEPS:
        table[f"aston-later/{step}"] = (phases["aston-later"], [step])
    for step in REPLAY_STEPS:
        table[f"aston-replay/{step}"] = (phases["aston-replay"], [step])
    for name, steps in SQUARE_MILE_STEPS.items():
        for step in steps:
            table[f"{name}/{step}"] = (phases[name], [step])
    for name, seeds in RANDOM_SEEDS.items():
        phase = phases[name]
        # the kills land while the cycle runs: the first uniform over the first half of the
        # reference cycle's duration (so it lands before the end even when the machine's load
        # makes this run twice as fast as the reference), the second over the whole of it
        span = phase.first_run.seconds_in_cycle()
        for s in seeds:
            rng = random.Random(s)
            kills: list[str | float] = [rng.uniform(0, span / 2), rng.uniform(0, span)]
            table[f"{name}/random-{s}"] = (phase, kills)
    return table


class Lab:
    """The reference phases and every scenario, started in the background."""

    def __init__(self, base: Path) -> None:
        self.pool = ThreadPoolExecutor(max_workers=WORKERS)
        built = [
            self.pool.submit(reference_phases, base / "aston", "aston", 650, 25, updates=False),
            self.pool.submit(
                reference_phases, base / "square-mile", "the-square-mile", 400, 30, updates=True
            ),
        ]
        self.phases = {p.name: p for f in built for p in f.result()}
        self.futures: dict[str, Future[Outcome]] = {}
        for n, (scenario, (phase, kills)) in enumerate(scenarios(self.phases).items()):
            work = base / "scenarios" / f"{n:02d}"
            self.futures[scenario] = self.pool.submit(run_scenario, phase, work, kills)

    def outcome(self, scenario: str) -> Outcome:
        return self.futures[scenario].result()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = Lab(tmp_path_factory.mktemp("crash"))
    yield started
    started.pool.shutdown(wait=True, cancel_futures=True)


def assert_crash_safe(outcome: Outcome) -> None:
    assert not outcome.problems, "\n".join(outcome.problems)


# ---------------------------------------------------------------------------- the tests


def test_references_exercise_every_kind_of_write(lab: Lab) -> None:
    """The uninterrupted runs create, complete and flag enough to reach every crash point
    above (write calls of 20 operations), and their extra cycles write nothing."""
    summary = {name: phase.first_run.summary or {} for name, phase in lab.phases.items()}

    def writes(name: str) -> int:
        return sum(summary[name][k] for k in ("tasks_created", "tasks_completed", "flags_written"))

    # the 7th call holds the last follow-ups and the first flags; 9 calls at least
    assert 6 * 20 < summary["aston-first"]["tasks_created"] < 7 * 20
    assert summary["aston-first"]["flags_written"] > 2 * 20
    assert summary["aston-later"]["tasks_completed"] > 20  # completions in 2 calls
    assert summary["aston-later"]["tasks_created"] > 20  # the due page: 2 calls
    assert writes("aston-later") > 3 * 20
    assert summary["the-square-mile-first"]["tasks_created"] > 20
    assert summary["the-square-mile-later"]["tasks_completed"] > 20
    assert summary["the-square-mile-later"]["flags_written"] > 40
    assert summary["aston-replay"]["flags_written"] > 0
    for phase in lab.phases.values():
        extra = phase.second_run.summary or {}
        writes = [extra.get(k) for k in ("flags_written", "tasks_created", "tasks_completed")]
        assert writes == [0, 0, 0], phase.name


@pytest.mark.parametrize("step", FIRST_CYCLE_STEPS)
def test_kill_during_the_first_cycle(lab: Lab, step: str) -> None:
    """SIGKILL at this step of the first cycle, then a re-run, ends as if never killed."""
    assert_crash_safe(lab.outcome(f"aston-first/{step}"))


@pytest.mark.parametrize("step", LATER_CYCLE_STEPS)
def test_kill_during_a_later_cycle_after_records_changed(lab: Lab, step: str) -> None:
    """SIGKILL at this step of a cycle that completes follow-ups ends as if never killed."""
    assert_crash_safe(lab.outcome(f"aston-later/{step}"))


@pytest.mark.parametrize("step", REPLAY_STEPS)
def test_kill_during_a_replay_of_an_earlier_now(lab: Lab, step: str) -> None:
    """SIGKILL while a cycle replays the first instant after the later cycle, then a re-run
    at that instant, ends as a replay never killed: flags of the earlier now, nothing lost."""
    assert_crash_safe(lab.outcome(f"aston-replay/{step}"))


@pytest.mark.parametrize(
    "scenario", [f"{name}/{step}" for name, steps in SQUARE_MILE_STEPS.items() for step in steps]
)
def test_kill_with_recurring_clocks_and_customer_updates(lab: Lab, scenario: str) -> None:
    """With interim-update cycles and customer-update Tasks, a SIGKILL changes nothing."""
    assert_crash_safe(lab.outcome(scenario))


@pytest.mark.parametrize(
    "scenario", [f"{name}/random-{s}" for name, seeds in RANDOM_SEEDS.items() for s in seeds]
)
def test_two_kills_at_random_instants(lab: Lab, scenario: str) -> None:
    """Two runs in a row killed at random instants of their cycle (at least one of them
    before it ended), then a re-run, end as if never killed."""
    outcome = lab.outcome(scenario)
    assert -signal.SIGKILL in outcome.exit_codes, outcome.exit_codes
    assert_crash_safe(outcome)
