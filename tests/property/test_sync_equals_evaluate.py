"""Sync equals evaluate at every instant (issue 10 point 1, reference-org.md).

Random complaints of the four bundled charters and the service-desk example (whose clocks
pause while waiting on the customer, read from the case's Status history) (the sample
generator, every event kept, so many are dated after some cycle's ``now``) go into a CRM;
random sequences of cycle instants (later, equal and earlier than the one before: ``--now``
replays) run sync cycles on it. After each cycle the CRM is held against ``crmsync
evaluate``'s rows at that ``now`` (``evaluate_stream``, the command's own code path)
through a small reference written here, never the planner under test:

- flags: the worst state of started clocks (met < paused < on_track < at_risk < breached,
  met_late as breached, pending as on_track; on_track when none started), the sorted
  breached and met_late clock ids, the earliest due of on_track/at_risk clocks;
- clock follow-ups, by key ``crmsync:{case}:{clock}:{occurrence}:{state}``: one is due for
  each row at_risk or breached unless the instant that made it (warn_at, due_at) is before
  the horizon (the first cycle's now minus 7 days, or CRMSYNC_FOLLOW_UP_SINCE), or the
  complaint is closed at ``now`` and the row started before the closing. A due key that
  does not exist is created open, once. An open one is completed when its clock's row has
  a later occurrence or, for its occurrence, is met/met_late, or no longer holds its state
  (breached needs breached, at_risk at_risk or breached) at a ``now`` not before the cycle
  that made it; a completed task is never reopened, no task is ever deleted.

Runs on the embedded local CRM, on the HTTP-level Salesforce fake and on the HTTP-level
Dataverse fake (with ``mappings/dynamics365.yaml``: the same complaints under GUIDs).
"""

from __future__ import annotations

import io
import json
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.adapters.crm.dynamics365 import write_value
from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.salesforce_values import demo_record_id, parse_sf_datetime
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.demo.seeding import seed_rows
from crmsync.domain.charter import Charter
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import FieldMapping, instant_text_of, load_mapping
from crmsync.ports import CrmPort, Record, StateStore
from crmsync.service.evaluate_stream import evaluate_stream
from crmsync.service.sync_cycle import SyncCycle
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client
from fakes.salesforce_fake import FakeOrg, fake_salesforce, session_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
DATAVERSE_MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
CHARTERS = {
    name: load_charter(ROOT / "mappings" / "charters" / f"{name}.yaml")
    for name in ("aston", "the-square-mile", "studijob", "kilkenny")
}
START = datetime(2026, 3, 2, tzinfo=UTC)  # complaints received over the 20 days from here
SPAN_DAYS = 20
STEP = 5 * 3600 + 17 * 60 + 13  # cycle instants on an odd grid: not only on the hour
GRID = [int(START.timestamp()) + i * STEP for i in range(60 * 86400 // STEP)]
WEEK = 7 * 86400
CHARTERS["service-desk"] = load_charter(
    ROOT / "mappings" / "charters" / "examples" / "service-desk.yaml"
)  # its clocks pause while waiting on the customer (the case's Status history)
RANK = {"met": 0, "paused": 1, "on_track": 2, "at_risk": 3, "breached": 4}

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


# ---------------------------------------------------------------------------- the reference


def iso(instant: int | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str | None) -> int | None:
    return None if text is None else int(datetime.fromisoformat(text).timestamp())


def expected_flags(rows: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    """(status, breaches, next_due) from one complaint's evaluate rows."""
    started = [r for r in rows if r["started_at"] is not None]
    states = [
        {"met_late": "breached", "pending": "on_track"}.get(r["state"], r["state"]) for r in started
    ]
    status = max(states, key=RANK.__getitem__) if states else "on_track"
    breaches = ";".join(
        sorted(r["clock"] for r in started if r["state"] in ("breached", "met_late"))
    )
    dues = [r["due_at"] for r in started if r["state"] in ("on_track", "at_risk") and r["due_at"]]
    return status, breaches, min(dues) if dues else None


@dataclass
class Task:
    """A follow-up as the reference expects it."""

    open: bool
    made_at: int


@dataclass
class Reference:
    """The follow-ups the rules call for, cycle after cycle."""

    horizon: int
    tasks: dict[str, Task] = field(default_factory=dict)

    def cycle(
        self, now: int, rows: dict[str, list[dict[str, Any]]], closed: dict[str, int]
    ) -> None:
        """Apply one cycle at ``now``: complete what the rules complete, then create."""
        for key, task in self.tasks.items():
            if not task.open:
                continue
            _, case, clock, occurrence, state = key.split(":")
            row = next((r for r in rows.get(case, []) if r["clock"] == clock), None)
            if row is None or row["occurrence"] < int(occurrence):
                continue
            if row["occurrence"] > int(occurrence) or row["state"] in ("met", "met_late"):
                task.open = False
                continue
            holds = row["state"] == "breached" or (state == "at_risk" and row["state"] == "at_risk")
            if not holds and now >= task.made_at:
                task.open = False
        for case, case_rows in rows.items():
            closing = closed.get(case)
            for r in case_rows:
                if r["state"] not in ("at_risk", "breached"):
                    continue
                making = epoch(r["warn_at"] if r["state"] == "at_risk" else r["due_at"])
                if making is None or making < self.horizon:
                    continue
                started = epoch(r["started_at"])
                if (
                    closing is not None
                    and closing <= now
                    and started is not None
                    and started < closing
                ):
                    continue
                key = f"crmsync:{case}:{r['clock']}:{r['occurrence']}:{r['state']}"
                self.tasks.setdefault(key, Task(True, now))


def evaluate_rows(
    charter: Charter, complaints: list[dict[str, Any]], now: int
) -> dict[str, list[dict[str, Any]]]:
    """``crmsync evaluate``'s output rows at ``now``, by complaint id."""
    source = io.StringIO("".join(json.dumps(c) + "\n" for c in complaints))
    sink = io.StringIO()
    for chunk in evaluate_stream(charter, source, sink, now, workers=1):
        assert not chunk.errors, chunk.errors
    rows: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in complaints}
    for line in sink.getvalue().splitlines():
        row = json.loads(line)
        rows[row["complaint_id"]].append(row)
    return rows


# ---------------------------------------------------------------------------- the CRMs


class World(Protocol):
    """A CRM holding the seeded complaints, as the test reads it."""

    crm: CrmPort

    def seed(self, object: str, rows: list[dict[str, Any]]) -> None: ...

    def records(self, object: str) -> list[Record]: ...

    def tick(self) -> None: ...


class LocalWorld:
    def __init__(self, folder: Path) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)
        self.crm = LocalCrm(folder / "crm.sqlite3", clock=lambda: self.now)

    def seed(self, object: str, rows: list[dict[str, Any]]) -> None:
        assert all(r.ok for r in self.crm.insert_records(object, rows))

    def records(self, object: str) -> list[Record]:
        return list(self.crm.export_records(object))

    def tick(self) -> None:
        self.now += timedelta(minutes=1)


class SalesforceWorld:
    def __init__(self, org: FakeOrg, clock: dict[str, datetime]) -> None:
        self.org = org
        self.clock = clock
        self.crm = session_client(org)

    def seed(self, object: str, rows: list[dict[str, Any]]) -> None:
        self.org.seed(object, rows)

    def records(self, object: str) -> list[Record]:
        return [Record(object, r["Id"], r) for r in self.org.all(object)]

    def tick(self) -> None:
        self.clock["now"] += timedelta(minutes=1)


class DataverseWorld:
    """The Dataverse fake; the generated complaints' and users' ids become GUIDs (uuid5 of
    the id), and so do the references to them; datetimes become Dataverse's UTC ``Z`` text,
    kept with a fraction of a second (0-999 ms, from the text), which the org answers
    truncated: the cycles see whole seconds, evaluate reads what is kept; choices
    (generated as the mapping's text keys) become the numbers the org keeps."""

    mapping = DATAVERSE_MAPPING

    def __init__(self, org: FakeDataverse, clock: dict[str, datetime]) -> None:
        self.org = org
        self.clock = clock
        self.crm = dataverse_client(org)

    def seed(self, object: str, rows: list[dict[str, Any]]) -> None:
        table = self.org.tables[object]
        converted = []
        for seeded in rows:
            row = dict(seeded)
            if "Id" in row:
                row[table.primary] = self._guid(row.pop("Id"))
            converted.append(
                {k: self._typed(table.columns.get(k), self._guid(v)) for k, v in row.items()}
            )
        self.org.seed(object, converted)

    @staticmethod
    def _typed(kind: str | None, value: Any) -> Any:
        if kind in {"Picklist", "State", "Status", "Integer"} and isinstance(value, str):
            return int(value)
        written = write_value(value)
        if kind == "DateTime" and isinstance(written, str) and len(written) == 20:
            return f"{written[:19]}.{zlib.crc32(written.encode()) % 1000:03d}Z"
        return written

    def _guid(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) == 18 and value[:3] in {"500", "005"}:
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"crmsync-test:{value}"))
        return value

    def records(self, object: str) -> list[Record]:
        primary = self.org.tables[object].primary
        return [Record(object, r[primary], r) for r in self.org.all(object)]

    def tick(self) -> None:
        self.clock["now"] += timedelta(minutes=1)


@contextmanager
def local_world() -> Iterator[World]:
    with tempfile.TemporaryDirectory() as folder:
        world = LocalWorld(Path(folder))
        try:
            yield world
        finally:
            world.crm.close()


@contextmanager
def salesforce_world() -> Iterator[World]:
    clock = {"now": datetime(2026, 6, 1, tzinfo=UTC)}
    with fake_salesforce(lambda: clock["now"]) as fake:
        yield SalesforceWorld(fake.org, clock)


@contextmanager
def dataverse_world() -> Iterator[World]:
    clock = {"now": datetime(2026, 6, 1, tzinfo=UTC)}
    with FakeDataverseServer(lambda: clock["now"]) as server:
        world = DataverseWorld(server.org, clock)
        try:
            yield world
        finally:
            world.crm.close()


def mapping_of(world: World) -> FieldMapping:
    found: FieldMapping = getattr(world, "mapping", MAPPING)
    return found


def canonical_complaints(world: World, mapping: FieldMapping) -> list[dict[str, Any]]:
    """The complaints as the CRM holds them, in canonical form (what an export would give
    ``crmsync evaluate``)."""
    related: dict[str, dict[str, list[Record]]] = {}
    for name, rel in mapping.related_specs().items():
        for child in world.records(rel.object):
            if all(f.to_filter().matches(child.fields) for f in rel.where):
                parent = str(child.fields.get(rel.parent_field))
                related.setdefault(parent, {}).setdefault(name, []).append(child)
    cases = [
        r
        for r in world.records(mapping.complaint_object)
        if all(f.matches(r.fields) for f in mapping.complaint_filters)
    ]
    return [mapping.to_canonical(r, related.get(r.id, {})) for r in cases]


def crm_flags(world: World) -> dict[str, tuple[Any, str, str | None]]:
    """Flags on the CRM (the status as its canonical name, through the mapping)."""
    wb = mapping_of(world).spec.write_back
    out = {}
    for case in world.records(mapping_of(world).complaint_object):
        f = case.fields
        due = f.get(wb.next_due)
        due_text = None if not due else iso(int(parse_sf_datetime(due).timestamp()))
        status = wb.status_of(f.get(wb.status))
        out[case.id] = (status, f.get(wb.breaches) or "", due_text)
    return out


def crm_tasks(world: World) -> dict[str, bool]:
    """Clock follow-ups on the CRM: key -> open (not in the completed status)."""
    fu = mapping_of(world).spec.follow_ups
    out: dict[str, bool] = {}
    for task in world.records(fu.object):
        key = task.fields.get(fu.key_field)
        if isinstance(key, str) and key.startswith("crmsync:"):
            assert key not in out, f"two tasks hold {key}"
            out[key] = task.fields.get(fu.status) != fu.completed_status
    return out


# ---------------------------------------------------------------------------- the property


@st.composite
def instants(draw: Callable[..., Any]) -> list[int]:
    """3 to 6 cycle instants: each a new grid point (later or earlier) or a repeat."""
    out: list[int] = []
    for _ in range(draw(st.integers(3, 6))):
        if out and draw(st.booleans()) and draw(st.booleans()):
            out.append(draw(st.sampled_from(out)))  # the same now again
        else:
            out.append(draw(st.sampled_from(GRID)))
    return out


def check(
    world_of: Callable[[], Any],
    state_of: Callable[[Path], StateStore],
    *,
    charter_name: str,
    seed: int,
    count: int,
    nows: list[int],
    since: int | None,
) -> None:
    charter = CHARTERS[charter_name]
    with world_of() as world, tempfile.TemporaryDirectory() as folder:
        mapping = mapping_of(world)
        cases: list[dict[str, Any]] = []
        related_rows: dict[str, list[dict[str, Any]]] = {}
        for fields, related in seed_rows(
            mapping,
            charter,
            count=count,
            seed=seed,
            start=START,
            span_days=SPAN_DAYS,
            now=datetime(2100, 1, 1, tzinfo=UTC),  # every event, the future ones too
            ids=demo_record_id,
            instant_text=instant_text_of(world.crm),
        ):
            cases.append(fields)
            for object, rows in related.items():
                related_rows.setdefault(object, []).extend(rows)
        world.seed(mapping.complaint_object, cases)
        for object, rows in related_rows.items():
            world.seed(object, rows)
        world.tick()
        complaints = canonical_complaints(world, mapping)
        closed = {
            c["id"]: min(epoch(x) or 0 for x in (v if isinstance(v, list) else [v]))
            for c in complaints
            if (v := c["events"].get("closed"))
        }
        state = state_of(Path(folder))
        state.migrate()
        cycle = SyncCycle(
            crm=world.crm,
            state=state,
            charter=charter,
            mapping=mapping,
            profile="p",
            follow_up_since=since,
        )
        reference = Reference(horizon=since if since is not None else nows[0] - WEEK)
        for number, now in enumerate(nows, start=1):
            report = cycle.run(now=now)
            assert report.status == "ok", report.errors
            rows = evaluate_rows(charter, complaints, now)
            reference.cycle(now, rows, closed)
            got = crm_flags(world)
            where = f"cycle {number} of {[iso(n) for n in nows]} ({charter_name}, seed {seed})"
            for cid, case_rows in rows.items():
                want = expected_flags(case_rows)
                assert got[cid] == (want[0], want[1], iso(epoch(want[2]))), f"{where}: {cid}"
            want_tasks = {k: t.open for k, t in reference.tasks.items()}
            assert crm_tasks(world) == want_tasks, where
            world.tick()
        state.close()


def sqlite_state(folder: Path) -> StateStore:
    return SqliteStateStore(folder / "state.sqlite3")


def memory_state(_folder: Path) -> StateStore:
    return MemoryStateStore()


@SETTINGS
@given(
    charter=st.sampled_from(sorted(CHARTERS)),
    seed=st.integers(0, 10_000),
    count=st.integers(1, 12),
    nows=instants(),
    since=st.none() | st.sampled_from(GRID[:40]),
)
def test_local_crm_equals_evaluate_after_every_cycle(
    charter: str, seed: int, count: int, nows: list[int], since: int | None
) -> None:
    """On the local CRM (SQLite state), after every cycle of a random sequence of instants,
    the flags and clock follow-ups are exactly those evaluate and the rules give."""
    check(
        local_world,
        sqlite_state,
        charter_name=charter,
        seed=seed,
        count=count,
        nows=nows,
        since=since,
    )


@settings(SETTINGS, max_examples=15)
@given(
    charter=st.sampled_from(sorted(CHARTERS)),
    seed=st.integers(0, 10_000),
    count=st.integers(1, 10),
    nows=instants(),
)
def test_salesforce_equals_evaluate_after_every_cycle(
    charter: str, seed: int, count: int, nows: list[int]
) -> None:
    """Through the Salesforce adapter against the HTTP fake org (memory state), the same."""
    check(
        salesforce_world,
        memory_state,
        charter_name=charter,
        seed=seed,
        count=count,
        nows=nows,
        since=None,
    )


@settings(SETTINGS, max_examples=12)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 12),
    nows=instants(),
    world=st.sampled_from(["local", "salesforce"]),
)
def test_paused_clocks_sync_equals_evaluate_after_every_cycle(
    seed: int, count: int, nows: list[int], world: str
) -> None:
    """The service-desk example (pauses from the Status history), on both CRMs: after every
    cycle the flags (paused among them) and follow-ups are those evaluate and the rules give."""
    check(
        local_world if world == "local" else salesforce_world,
        sqlite_state if world == "local" else memory_state,
        charter_name="service-desk",
        seed=seed,
        count=count,
        nows=nows,
        since=None,
    )


@settings(SETTINGS, max_examples=10)
@given(
    charter=st.sampled_from(sorted(CHARTERS)),
    seed=st.integers(0, 10_000),
    count=st.integers(1, 10),
    nows=instants(),
)
def test_dataverse_equals_evaluate_after_every_cycle(
    charter: str, seed: int, count: int, nows: list[int]
) -> None:
    """Through the Dataverse adapter against its HTTP fake org (memory state), with
    mappings/dynamics365.yaml (the service-desk pauses from the status-change rows too):
    after every cycle the flags and follow-ups are exactly those evaluate and the rules give."""
    check(
        dataverse_world,
        memory_state,
        charter_name=charter,
        seed=seed,
        count=count,
        nows=nows,
        since=None,
    )
