"""The sample complaint generator (``crmsync.demo.sample_complaints``) and the demo file.

The generator is pure: its output is checked against the contract (semantics section 1),
against what a real CRM would hold (ids, causal order, office hours) and against the
shares it is designed to produce. Shares are checked on thousands of complaints with
tolerances well above their sampling error (about 0.004 at n = 20,000).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmsync.adapters.crm.salesforce_values import demo_record_id
from crmsync.demo.bundled_charters import CHARTERS, demo_charter
from crmsync.demo.sample_complaints import generate_complaints
from crmsync.domain.clock_json import result_line
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import State, evaluate
from crmsync.mapping.charter_file import load_charter
from crmsync.service import evaluate_stream as evaluate_stream_module
from crmsync.service.evaluate_stream import evaluate_stream

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 1, tzinfo=UTC)
ZONES = {
    "aston": "Europe/London",
    "the-square-mile": "Europe/Amsterdam",
    "studijob": "Europe/Amsterdam",
    "kilkenny": "Europe/Dublin",
    "fca-disp": "Europe/London",
    "housing-ombudsman": "Europe/London",
    "cbi-cpc": "Europe/Dublin",
}
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
N = 10000  # complaints per charter for the share tests
CHANNELS = {"email", "phone", "web", "letter", "in_person"}

# (earlier, later): when a complaint has both events, the first happened first
CAUSAL_ORDER: dict[str, list[tuple[str, str]]] = {
    "aston": [
        ("callback_requested", "callback"),
        ("acknowledged", "decision"),
        ("feedback", "decision"),
        ("acknowledged", "escalated_l2"),
        ("escalated_l2", "manager_contact"),
        ("manager_contact", "escalated_l3"),
        ("manager_contact", "decision"),
        ("escalated_l3", "director_contact"),
        ("director_contact", "escalated_l4"),
        ("director_contact", "decision"),
        ("escalated_l4", "mediation_requested"),
        ("mediation_requested", "mediation_decided"),
        ("mediation_decided", "decision"),
        ("decision", "closed"),
    ],
    "the-square-mile": [
        ("acknowledged", "customer_update"),
        ("acknowledged", "decision"),
        ("customer_update", "decision"),
        ("decision", "mediation_requested"),
        ("mediation_requested", "mediation_decided"),
        ("mediation_decided", "closed"),
        ("decision", "closed"),
    ],
    "studijob": [("feedback", "decision"), ("decision", "closed")],
    "kilkenny": [
        ("callback_requested", "callback"),
        ("acknowledged", "customer_update"),
        ("acknowledged", "decision"),
        ("customer_update", "decision"),
        ("decision", "closed"),
    ],
    "fca-disp": [
        ("acknowledged", "decision"),
        ("acknowledged", "holding_response"),
        ("holding_response", "decision"),
        ("decision", "closed"),
    ],
    "housing-ombudsman": [
        ("acknowledged", "extended"),
        ("acknowledged", "feedback"),
        ("extended", "feedback"),
        ("feedback", "escalated_l2"),
        ("escalated_l2", "escalation_acknowledged"),
        ("escalation_acknowledged", "escalation_extended"),
        ("escalation_acknowledged", "decision"),
        ("escalation_extended", "decision"),
        ("feedback", "closed"),
        ("decision", "closed"),
    ],
    "cbi-cpc": [
        ("acknowledged", "customer_update"),
        ("customer_update", "holding_response"),
        ("customer_update", "investigation_completed"),
        ("holding_response", "investigation_completed"),
        ("investigation_completed", "decision"),
        ("decision", "closed"),
    ],
}


@cache
def _sample(charter: str, count: int, seed: int, span_days: int) -> tuple[dict[str, Any], ...]:
    loaded = demo_charter(charter)
    return tuple(
        generate_complaints(
            loaded, count, seed=seed, start=START, span_days=span_days, ids=demo_record_id
        )
    )


def sample(
    charter: str, count: int = N, seed: int = 1, span_days: int = 61
) -> list[dict[str, Any]]:
    """``count`` complaints received in March-April 2026, generated once per argument set
    (the tests only read them)."""
    return list(_sample(charter, count, seed, span_days))


def instants(value: str | list[str]) -> list[datetime]:
    return [datetime.fromisoformat(v) for v in ([value] if isinstance(value, str) else value)]


def share(items: Iterable[bool]) -> float:
    flags = list(items)
    return sum(flags) / len(flags)


def salesforce_suffix(id15: str) -> str:
    """The documented case-check suffix: per 5-character block, a bit for each capital."""
    suffix = ""
    for block in range(3):
        bits = sum(1 << i for i, ch in enumerate(id15[block * 5 : block * 5 + 5]) if ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return suffix


def test_salesforce_suffix_helper_matches_the_documented_example() -> None:
    """The test's own suffix helper gives Salesforce's documented 00D000000000062 -> ...EAA."""
    # "00D00": the capital D is the third character -> bit 2 -> 4 -> "E"; no capitals -> "A"
    assert salesforce_suffix("00D000000000062") == "EAA"


@pytest.mark.parametrize("charter", CHARTERS)
def test_same_seed_gives_the_same_complaints(charter: str) -> None:
    """Two runs with one seed are identical; another seed gives other complaints."""
    again = generate_complaints(
        demo_charter(charter), 300, seed=7, start=START, span_days=61, ids=demo_record_id
    )
    assert list(again) == sample(charter, 300, seed=7)
    assert sample(charter, 300, seed=7) != sample(charter, 300, seed=8)


def test_the_bundled_charters_are_known() -> None:
    """The generator knows exactly the four bundled charters."""
    assert set(CHARTERS) == {
        "aston",
        "the-square-mile",
        "studijob",
        "kilkenny",
        "fca-disp",
        "housing-ombudsman",
        "cbi-cpc",
    }
    assert set(CHARTERS) == {p.stem for p in (ROOT / "mappings" / "charters").glob("*.yaml")}


@pytest.mark.parametrize("charter", CHARTERS)
def test_every_complaint_is_canonical_and_evaluates(charter: str) -> None:
    """Every complaint parses with complaint_from_json and evaluates with its bundled charter."""
    loaded = load_charter(ROOT / "mappings" / "charters" / f"{charter}.yaml")
    now = int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp())
    for data in sample(charter)[:1500]:
        assert set(data) == {"id", "events", "attributes"}
        for name, value in data["events"].items():
            for text in [value] if isinstance(value, str) else value:
                assert INSTANT.match(text), (name, text)
        assert data["attributes"]["channel"] in CHANNELS
        complaint = complaint_from_json(data, loaded.calendar.zone, "sample")
        assert evaluate(loaded, complaint, now)


@pytest.mark.parametrize("charter", CHARTERS)
def test_events_happen_in_causal_order(charter: str) -> None:
    """Nothing happens before its complaint is received, and each step follows its cause."""
    for data in sample(charter):
        events = {name: instants(value) for name, value in data["events"].items()}
        (received,) = events["received"]
        for name, values in events.items():
            assert all(v > received for v in values) or name == "received", (data["id"], name)
        for earlier, later in CAUSAL_ORDER[charter]:
            if earlier in events and later in events:
                assert max(events[earlier]) < min(events[later]), (data["id"], earlier, later)


@pytest.mark.parametrize("charter", CHARTERS)
def test_ids_are_unique_salesforce_ids(charter: str) -> None:
    """Complaint ids are unique 18-character Case ids; owners are 18-character User ids."""
    complaints = sample(charter)
    ids = [c["id"] for c in complaints]
    assert len(set(ids)) == len(ids)
    for data in complaints:
        for value, prefix in ((data["id"], "500"), (data["attributes"]["owner"], "005")):
            assert re.fullmatch(r"[0-9A-Za-z]{18}", value)
            assert value.startswith(prefix)
            assert value[15:] == salesforce_suffix(value[:15])


@pytest.mark.parametrize("charter", CHARTERS)
def test_local_offsets_are_the_charter_zone_offsets(charter: str) -> None:
    """An instant written with an offset carries the charter zone's offset at that instant."""
    zone = ZoneInfo(ZONES[charter])
    offsets: set[timedelta | None] = set()
    for data in sample(charter)[:1500]:
        for value in data["events"].values():
            for text in [value] if isinstance(value, str) else value:
                if text.endswith("Z"):
                    continue
                moment = datetime.fromisoformat(text)
                assert moment.utcoffset() == moment.astimezone(zone).utcoffset(), text
                offsets.add(moment.utcoffset())
    assert len(offsets) == 2  # some sources write local time: winter and summer offsets


@pytest.mark.parametrize("charter", CHARTERS)
def test_received_within_the_span_mostly_in_office_hours(charter: str) -> None:
    """Received instants lie in the span; most fall in office hours, a few on weekends."""
    zone = ZoneInfo(ZONES[charter])
    complaints = sample(charter)
    received = [instants(c["events"]["received"])[0].astimezone(zone) for c in complaints]
    assert all(START <= r < START + timedelta(days=62) for r in received)
    weekend = share(r.weekday() >= 5 for r in received)
    # weekend days weigh 0.2 against 1 for a working day: 0.4 / 5.4 = 7.4 % (holidays aside)
    assert 0.05 < weekend < 0.11
    opening = (8 * 60 + 30) if charter == "aston" else 9 * 60
    office = share(
        r.weekday() < 5 and opening <= r.hour * 60 + r.minute < 17 * 60 for r in received
    )
    # ~92 % on working days; email and web (50-70 %) arrive outside hours 18 % of the time
    assert 0.75 < office < 0.92
    off_hours_channels = {
        c["attributes"]["channel"]
        for c, r in zip(complaints, received, strict=True)
        if r.weekday() >= 5
    }
    assert off_hours_channels <= {"email", "web"}


@pytest.mark.parametrize(
    ("charter", "designed"),
    [
        ("aston", {"email": 0.40, "phone": 0.30, "web": 0.15, "in_person": 0.10, "letter": 0.05}),
        (
            "kilkenny",
            {"email": 0.35, "phone": 0.30, "web": 0.20, "letter": 0.08, "in_person": 0.07},
        ),
    ],
)
def test_channel_shares_are_roughly_as_designed(charter: str, designed: dict[str, float]) -> None:
    """Channel shares are within 4 points of the designed mix.

    Weekend complaints (7.4 %) only come by email or web, which moves up to ~3 points
    from phone, letter and in-person to email and web.
    """
    counts = Counter(c["attributes"]["channel"] for c in sample(charter))
    for channel, expected in designed.items():
        assert abs(counts[channel] / N - expected) < 0.04, channel


def test_aston_levels_follow_the_escalation_paths() -> None:
    """Aston levels 1-4: 62 % stay at level 1, ~33 % end at 2, ~5 % reach 3, a few reach 4."""
    complaints = sample("aston")
    levels = Counter(c["attributes"]["level"] for c in complaints)
    # level >= 2 for 38 %; of those 12 % go to level 3 (4.6 %), of those 12 % to level 4 (0.55 %)
    assert abs(levels[1] / N - 0.62) < 0.02
    assert abs(levels[2] / N - 0.334) < 0.02
    assert abs((levels[3] + levels[4]) / N - 0.046) < 0.01
    assert 0 < levels[4] < 0.015 * N
    for data in complaints:
        events, level = data["events"], data["attributes"]["level"]
        assert ("escalated_l2" in events) == (level >= 2)
        assert ("escalated_l3" in events) == (level >= 3)
        assert ("escalated_l4" in events) == (level == 4)
        assert ("manager" in data["attributes"]) == (level >= 2)


def test_aston_has_on_time_late_and_open_complaints() -> None:
    """Most level-1 decisions come within a working day; some later; some never."""
    complaints = sample("aston")
    decided = share("decision" in c["events"] for c in complaints)
    closed = share("closed" in c["events"] for c in complaints)
    callbacks = [c for c in complaints if "callback_requested" in c["events"]]
    assert 0.80 < decided < 0.95  # ~5 % nobody picked up, plus stalled escalations
    assert 0.70 < closed < decided
    assert callbacks
    assert all(c["attributes"]["channel"] == "phone" for c in callbacks)


def test_square_mile_long_complaints_carry_updates_and_a_promised_date() -> None:
    """~22 % take longer: interim updates about two weeks apart and an expected date."""
    complaints = sample("the-square-mile")
    long = [c for c in complaints if "customer_update" in c["events"]]
    assert abs(len(long) / N - 0.22) < 0.03
    for data in long:
        assert isinstance(data["events"]["customer_update"], list)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["attributes"]["expected_decision"])
        updates = instants(data["events"]["customer_update"])
        gaps = [(b - a).days for a, b in pairwise(updates)]
        assert all(10 <= gap <= 23 for gap in gaps), gaps
    assert any(len(c["events"]["customer_update"]) >= 2 for c in long)
    assert any("mediation_decided" in c["events"] for c in complaints)


def test_studijob_registration_is_sometimes_incomplete() -> None:
    """One complaint in five misses one or two registration fields (absent or blank)."""
    required = ("registered_by", "complainant_type", "complainant_name", "description", "involved")
    complaints = sample("studijob")

    def incomplete(attributes: dict[str, Any]) -> bool:
        return any(not str(attributes.get(name) or "").strip() for name in required)

    assert abs(share(incomplete(c["attributes"]) for c in complaints) - 0.20) < 0.02
    closed = [c for c in complaints if "closed" in c["events"]]
    with_cause = share("root_cause" in c["attributes"] for c in closed)
    assert 0.75 < with_cause < 0.95  # 70 % both fields, 15 % only the root cause


def test_kilkenny_languages_and_promised_callbacks() -> None:
    """Language is en (80 %), ga (8 %) or missing (12 %); call-backs carry a promised time."""
    complaints = sample("kilkenny")
    languages = Counter(c["attributes"].get("language") for c in complaints)
    assert abs(languages["en"] / N - 0.80) < 0.02
    assert abs(languages["ga"] / N - 0.08) < 0.015
    assert abs(languages[None] / N - 0.12) < 0.015
    requested = [c for c in complaints if "callback_requested" in c["events"]]
    # phone or in person (~34 % after weekend re-draws) x 35 % ask for a call back: ~12 %
    assert 0.09 < len(requested) / N < 0.15
    promised = [c for c in requested if "callback_promised" in c["attributes"]]
    assert 0.92 < len(promised) / len(requested) < 0.98
    for data in promised:
        (asked,) = instants(data["events"]["callback_requested"])
        (due,) = instants(data["attributes"]["callback_promised"])
        assert due > asked


def _states(charter: str, now: datetime) -> Counter[tuple[str, State]]:
    loaded = load_charter(ROOT / "mappings" / "charters" / f"{charter}.yaml")
    instant = int(now.timestamp())
    states: Counter[tuple[str, State]] = Counter()
    for data in sample(charter, 3000):
        complaint = complaint_from_json(data, loaded.calendar.zone, "sample")
        states.update((r.clock, r.state) for r in evaluate(loaded, complaint, instant))
    return states


def test_fca_complaints_are_settled_quickly_or_answered_within_eight_weeks() -> None:
    """Over 40 % are resolved by the third business day; some carry a holding response."""
    complaints = sample("fca-disp", 3000)
    holding = [c for c in complaints if "holding_response" in c["events"]]
    assert 0.05 < len(holding) / 3000 < 0.2
    states = _states("fca-disp", datetime(2026, 9, 1, tzinfo=UTC))
    assert 0.4 < states["summary-resolution", State.MET] / 3000 < 0.55
    assert states["final-response", State.MET] > states["final-response", State.MET_LATE] > 0


def test_housing_ombudsman_complaints_carry_notified_extensions_at_both_stages() -> None:
    """Stage 1 and stage 2 extensions are notified, most in time; a fifth reach stage 2."""
    complaints = sample("housing-ombudsman", 3000)
    stage2 = [c for c in complaints if "escalated_l2" in c["events"]]
    assert 0.1 < len(stage2) / 3000 < 0.25
    assert all(c["attributes"]["level"] == 2 for c in stage2)
    assert sum("extended" in c["events"] for c in complaints) > 300
    assert sum("escalation_extended" in c["events"] for c in complaints) > 40
    loaded = load_charter(ROOT / "mappings" / "charters" / "housing-ombudsman.yaml")
    now = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())
    applied: Counter[str] = Counter()
    for data in complaints:
        complaint = complaint_from_json(data, loaded.calendar.zone, "sample")
        applied.update(r.clock for r in evaluate(loaded, complaint, now) if r.extensions)
    assert applied["stage1-response"] > 250  # most notices come by the due instant
    assert applied["stage2-response"] > 30


def test_cbi_complaints_carry_updates_holding_responses_and_irish() -> None:
    """Long investigations carry 20-day updates and holding responses; 10 % are in Irish."""
    complaints = sample("cbi-cpc", 3000)
    languages = Counter(c["attributes"].get("language") for c in complaints)
    assert abs(languages["ga"] / 3000 - 0.10) < 0.02
    assert sum("customer_update" in c["events"] for c in complaints) > 900
    assert sum("holding_response" in c["events"] for c in complaints) > 150
    assert sum("investigation_completed" in c["events"] for c in complaints) > 2400
    states = _states("cbi-cpc", datetime(2026, 9, 1, tzinfo=UTC))
    assert states["updates", State.MET] > states["updates", State.MET_LATE] > 0
    assert states["outcome", State.MET] > states["outcome", State.MET_LATE] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"charter_name": "acme"}, "unknown charter 'acme'"),
        ({"count": -1}, "count must be >= 0"),
        ({"span_days": 0}, "span_days must be >= 1"),
        ({"start": datetime(2026, 3, 1)}, "timezone-aware"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Unknown charters, negative counts, empty spans and naive starts raise ValueError."""
    arguments: dict[str, Any] = {
        "charter_name": "aston",
        "count": 1,
        "seed": 1,
        "start": START,
        "span_days": 10,
    }
    arguments.update(kwargs)
    name = arguments.pop("charter_name")
    count = arguments.pop("count")
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_complaints(demo_charter(name), count, **arguments)


def test_demo_file_shows_every_state() -> None:
    """samples/aston-complaints.jsonl: 300 complaints of March-April 2026 that, as of the
    demo's now, show every state at least once."""
    loaded = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")
    now = int(datetime(2026, 4, 8, 12, tzinfo=UTC).timestamp())
    lines = (ROOT / "samples" / "aston-complaints.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    states: Counter[State] = Counter()
    for number, line in enumerate(lines, start=1):
        complaint = complaint_from_json(json.loads(line), loaded.calendar.zone, f"line {number}")
        received = complaint.events["received"][0]
        assert datetime(2026, 3, 1, tzinfo=UTC).timestamp() <= received
        assert received < datetime(2026, 5, 1, tzinfo=UTC).timestamp()
        states.update(r.state for r in evaluate(loaded, complaint, now))
    # every state but paused: Aston's clocks do not pause (semantics 4.5)
    assert not any(getattr(c, "pause", None) for c in loaded.clocks)
    assert set(states) == set(State) - {State.PAUSED}


@pytest.mark.parametrize("charter", CHARTERS)
def test_stream_writes_exactly_the_domain_results(charter: str) -> None:
    """evaluate_stream's fast paths (blocks of text, cached formatting) write, line for line,
    what complaint_from_json + evaluate + result_line give for each complaint."""
    loaded = load_charter(ROOT / "mappings" / "charters" / f"{charter}.yaml")
    now = int(datetime(2026, 4, 8, 12, tzinfo=UTC).timestamp())
    lines = [json.dumps(c, ensure_ascii=False) for c in sample(charter)[:400]]
    expected = []
    for number, line in enumerate(lines, start=1):
        complaint = complaint_from_json(json.loads(line), loaded.calendar.zone, f"line {number}")
        expected.extend(result_line(complaint.id, r) for r in evaluate(loaded, complaint, now))
    for source in (io.StringIO("\n".join(lines) + "\n"), [line + "\n" for line in lines]):
        sink = io.StringIO()
        chunks = list(evaluate_stream(loaded, source, sink, now, workers=1))
        assert sink.getvalue().splitlines() == expected
        assert sum(c.complaints for c in chunks) == 400
        assert sum(c.clocks for c in chunks) == len(expected)


def test_stream_reports_bad_lines_by_number_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of text keep line numbers and json.loads's own messages, chunk after chunk."""
    monkeypatch.setattr(evaluate_stream_module, "CHUNK_CHARS", 40)  # a block every line or two
    loaded = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")
    good = '{"id": "C-%d", "events": {"received": "2026-03-02T09:15:00Z"}}'
    lines = [good % 1, "", good % 3, '{"id": "a"', "   ", good % 6, '{"id": "b"} x', good % 8]
    sink = io.StringIO()
    chunks = list(evaluate_stream(loaded, io.StringIO("\n".join(lines)), sink, 0, workers=1))
    assert len(chunks) >= 4
    errors = [str(e) for c in chunks for e in c.errors]
    # line 4 is '{"id": "a"' plus its newline: the object is still open at the end of
    # that text, char 11, which is line 2 column 1; in line 7 the object ends after char 10
    # and the extra "x" is char 12 (column 13), after one space
    assert errors == [
        "line 4: not valid JSON: Expecting ',' delimiter: line 2 column 1 (char 11)",
        "line 7: not valid JSON: Extra data: line 1 column 13 (char 12)",
    ]
    ids = [json.loads(line)["complaint_id"] for line in sink.getvalue().splitlines()]
    # now = 0 is before every event: each complaint reports every clock that applies
    assert sorted(set(ids)) == ["C-1", "C-3", "C-6", "C-8"]


def test_neutral_ids_are_unique_and_complaints_come_in_id_order() -> None:
    """Without a CRM's id maker, ids are neutral (``serial_ids``): unique, complaints'
    increasing in the order they are received, and the same complaints otherwise."""
    loaded = demo_charter("aston")
    neutral = list(generate_complaints(loaded, 300, seed=7, start=START, span_days=61))
    ids = [c["id"] for c in neutral]
    assert all(i.startswith("complaint-") for i in ids)
    assert ids == sorted(set(ids))
    assert all(c["attributes"]["owner"].startswith("user-") for c in neutral)
    made = sample("aston", 300, seed=7)

    def without_ids(c: dict[str, Any]) -> dict[str, Any]:
        people = {k: "" for k in ("owner", "manager") if k in c["attributes"]}
        return {**c, "id": "", "attributes": {**c["attributes"], **people}}

    assert [without_ids(c) for c in neutral] == [without_ids(c) for c in made]
