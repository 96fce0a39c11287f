"""`crmsync report --return tsm|fca`: the regulators' returns, every figure counted by hand.

Both charters: Europe/London, Mon-Fri 09:00-17:00, England's bank holidays. January and
February are GMT (local = UTC); British Summer Time from 29 March 2026 and 30 March 2025.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.e2e.test_evaluate_cli import CHARTERS, jsonl, run

HOUSING = CHARTERS / "housing-ombudsman.yaml"
FCA = CHARTERS / "fca-disp.yaml"


def complaint(cid: str, **events: str) -> dict[str, Any]:
    return {"id": cid, "events": events, "attributes": {"owner": "u"}}


# ---------------------------------------------------------------- TSM, year 2025-04-01..2026-03-31
# stage1-response: 10 working days from acknowledgement; acknowledged Tue 6 Jan 10:00 ->
# due Tue 20 Jan 10:00; one extension of 10 working days -> Tue 3 Feb 10:00.
TSM = [
    # received and answered in the year, in time
    complaint(
        "H-1",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        feedback="2026-01-13T10:00:00Z",
    ),
    # answered Mon 2 Feb, no extension: after 20 Jan -> not within
    complaint(
        "H-2",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        feedback="2026-02-02T10:00:00Z",
    ),
    # extended on 12 Jan, answered Mon 26 Jan: by 3 Feb -> within
    complaint(
        "H-3",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        extended="2026-01-12T10:00:00Z",
        feedback="2026-01-26T10:00:00Z",
    ),
    # extended, answered Mon 9 Feb: after 3 Feb -> not within
    complaint(
        "H-4",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        extended="2026-01-12T10:00:00Z",
        feedback="2026-02-09T10:00:00Z",
    ),
    # received in the year, answered after it (2 Apr): CH01 only
    complaint(
        "H-5",
        received="2026-03-02T10:00:00Z",
        acknowledged="2026-03-03T10:00:00Z",
        feedback="2026-04-02T09:00:00Z",
    ),
    # received before the year (3 Mar 2025), answered in it (7 Apr 2025, due 18 Mar: late);
    # escalated 15 Apr 2025 (stage two received in the year), acknowledged 16 Apr, decided
    # 30 Apr: 20 working days from 16 Apr is mid-May -> stage two within
    complaint(
        "H-6",
        received="2025-03-03T10:00:00Z",
        acknowledged="2025-03-04T10:00:00Z",
        feedback="2025-04-07T09:00:00Z",
        escalated_l2="2025-04-15T09:00:00Z",
        escalation_acknowledged="2025-04-16T09:00:00Z",
        decision="2025-04-30T09:00:00Z",
    ),
    # stage one in time; escalated 19 Jan, acknowledged Tue 20 Jan 10:00, due 20 working
    # days later (Tue 17 Feb 10:00), decided Mon 2 Mar -> stage two not within
    complaint(
        "H-7",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        feedback="2026-01-13T10:00:00Z",
        escalated_l2="2026-01-19T10:00:00Z",
        escalation_acknowledged="2026-01-20T10:00:00Z",
        decision="2026-03-02T10:00:00Z",
    ),
    # answered the next day -> within
    complaint(
        "H-8",
        received="2026-01-05T10:00:00Z",
        acknowledged="2026-01-06T10:00:00Z",
        feedback="2026-01-07T10:00:00Z",
    ),
]


def tsm(fmt: str, *extra: str) -> Any:
    return run(
        [
            "report",
            "--charter",
            HOUSING,
            "--input",
            "-",
            "--from",
            "2025-04-01",
            "--to",
            "2026-03-31",
            "--now",
            "2026-06-01T00:00:00Z",
            "--return",
            "tsm",
            "--homes",
            "2300",
            "--format",
            fmt,
            *extra,
        ],
        stdin=jsonl(*TSM),
    )


def test_tsm_ch01_and_ch02_counted_by_hand() -> None:
    """Stage one received in the year: H-1, 2, 3, 4, 5, 7, 8 = 7 -> 7000 / 2300 = 3.04 -> 3.0;
    stage two received: H-6 (15 Apr 2025), H-7 = 2 -> 2000 / 2300 = 0.87 -> 0.9.
    Stage one responded in the year: H-1, 2, 3, 4, 6, 7, 8 = 7 (not H-5: April 2026);
    within: H-1, H-3 (extended), H-7, H-8 = 4 -> 57.1 %. Stage two responded: H-6, H-7;
    within: H-6 -> 50.0 %."""
    result = tsm("json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["return"], document["from"], document["to"]) == (
        "tsm",
        "2025-04-01",
        "2026-03-31",
    )
    figures = document["figures"]
    assert figures["homes"] == 2300
    assert figures["CH01"] == {"stage1_per_1000_homes": 3.0, "stage2_per_1000_homes": 0.9}
    assert figures["CH02"] == {
        "stage1_within_timescale_pct": 57.1,
        "stage2_within_timescale_pct": 50.0,
    }
    assert figures["stage1"] == {
        "received": 7,
        "per_1000_homes": 3.0,
        "responded": 7,
        "within_timescale": 4,
        "within_timescale_pct": 57.1,
    }
    assert figures["stage2"]["received"] == 2
    assert (figures["stage2"]["responded"], figures["stage2"]["within_timescale"]) == (2, 1)
    assert "Technical Requirements" in document["definition"]["source"]
    assert "'Reporting year and year end dates'" in document["definition"]["source"]
    assert document["definition"]["url"] == (
        "https://www.gov.uk/government/publications/tenant-satisfaction-measures-technical-requirements"
    )
    # the timescales used for CH02, which landlords publish with it: the charter's own
    assert document["timescales"] == {
        "stage1-response": "10 working days from acknowledged; extended at most once by "
        "10 working days on extended",
        "stage2-response": "20 working days from escalation_acknowledged; extended at most "
        "once by 20 working days on escalation_extended",
    }
    assert any("number of homes" in line for line in document["organisation_must_add"])


def test_tsm_csv_and_page() -> None:
    """The CSV has one line per figure; the page shows the figures, cites the definition and
    says what the organisation must add."""
    lines = list(csv.reader(io.StringIO(tsm("csv").stdout)))
    assert lines[0] == ["figure", "value"]
    values = dict(lines[1:])
    assert values["CH01.stage1_per_1000_homes"] == "3.0"
    assert values["CH02.stage1_within_timescale_pct"] == "57.1"
    assert values["stage2.within_timescale"] == "1"
    page = tsm("html").stdout
    assert "57.1 %" in page and "3.0" in page and "2,300" in page
    assert "Tenant Satisfaction Measures: Technical Requirements" in page
    assert "What the charter cannot know" in page


# ---------------------------------------------------------------- FCA, half year 2026-01-01..06-30
FCA_SET = [
    # closed the next day: within three business days
    complaint("F-1", received="2026-01-05T10:00:00Z", decision="2026-01-06T11:00:00Z"),
    # closed a week later: within eight weeks
    complaint("F-2", received="2026-01-05T10:00:00Z", decision="2026-01-12T10:00:00Z"),
    # a holding response at seven weeks closes nothing; decided 2 Apr: after eight weeks
    complaint(
        "F-3",
        received="2026-01-05T10:00:00Z",
        holding_response="2026-02-20T10:00:00Z",
        decision="2026-04-02T09:00:00Z",
    ),
    # received 15 Dec 2025, decided 14 Jan: outstanding at the start; within eight weeks
    complaint("F-4", received="2025-12-15T10:00:00Z", decision="2026-01-14T10:00:00Z"),
    # received and closed before the half: nothing
    complaint("F-5", received="2025-12-01T10:00:00Z", decision="2025-12-10T10:00:00Z"),
    # received in June, still open: received only
    complaint("F-6", received="2026-06-01T09:00:00Z"),
    # received in December, still open: outstanding at the start only
    complaint("F-7", received="2025-12-18T10:00:00Z"),
    # received in June, decided in July: received only
    complaint("F-8", received="2026-06-22T09:00:00Z", decision="2026-07-06T09:00:00Z"),
]


def fca(fmt: str, *extra: str | Path) -> Any:
    return run(
        [
            "report",
            "--charter",
            FCA,
            "--input",
            "-",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--now",
            "2026-07-15T00:00:00Z",
            "--return",
            "fca",
            "--format",
            fmt,
            *extra,
        ],
        stdin=jsonl(*FCA_SET),
    )


def test_fca_time_to_close_counted_by_hand() -> None:
    """Received: F-1, 2, 3, 6, 8 = 5; outstanding at the start: F-4, F-7 = 2; closed in the
    half: F-1, 2, 3, 4 = 4: within three business days F-1 (25.0 %), within eight weeks
    F-2, F-4 (50.0 %), after eight weeks F-3 (25.0 %)."""
    result = fca("json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["figures"] == {
        "received": 5,
        "outstanding_at_start": 2,
        "closed": 4,
        "closed_within_3_business_days": 1,
        "closed_after_3_business_days_within_8_weeks": 2,
        "closed_after_8_weeks": 1,
        "closed_within_3_business_days_pct": 25.0,
        "closed_after_3_business_days_within_8_weeks_pct": 50.0,
        "closed_after_8_weeks_pct": 25.0,
    }


def test_fca_page_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "fca.html"
    result = fca("html", "--output", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "DISP 1 Annex 1R" in page and "closed after eight weeks" in page
    assert "DISP 1.10.1R" in page and "within 30 business days" in page
    assert 'href="https://www.handbook.fca.org.uk/handbook/DISP/1/10.html"' in page
    assert "3 working days from received" in page and "8 weeks from received" in page
    assert "25.0 %" in page and "50.0 %" in page
    assert out.stat().st_mode & 0o777 == 0o600


def test_return_arguments_are_checked() -> None:
    """tsm without --homes, --homes for fca, --by or --period with a return, the wrong
    charter: exit 2."""
    no_homes = run(
        ["report", "--charter", HOUSING, "--input", "-", "--from", "2026-01-01", "--to",
         "2026-12-31", "--return", "tsm", "--format", "json"],
        stdin="",
    )  # fmt: skip
    assert no_homes.returncode == 2 and "--homes" in no_homes.stderr
    homes_for_fca = fca("json", "--homes", "10")
    assert homes_for_fca.returncode == 2 and "--homes is for --return tsm" in homes_for_fca.stderr
    grouped = fca("json", "--by", "channel")
    assert grouped.returncode == 2 and "--by" in grouped.stderr
    per_month = fca("json", "--period", "month")
    assert per_month.returncode == 2
    assert "counts the whole range --from..--to; it takes no --period" in per_month.stderr
    wrong = run(
        ["report", "--charter", FCA, "--input", "-", "--from", "2026-01-01", "--to",
         "2026-12-31", "--return", "tsm", "--homes", "10", "--format", "json"],
        stdin="",
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "has no clock stage1-acknowledge" in wrong.stderr
    assert "housing-ombudsman" in wrong.stderr


def test_a_return_for_a_period_it_is_not_filed_for_is_refused() -> None:
    """A TSM return is a year's, the FCA's a half year's (or a year's): another range is
    refused with one line saying what is accepted, exit 2, nothing on standard output."""
    quarter = run(
        ["report", "--charter", FCA, "--input", "-", "--from", "2026-01-01", "--to",
         "2026-03-31", "--return", "fca", "--format", "json"],
        stdin=jsonl(*FCA_SET),
    )  # fmt: skip
    assert quarter.returncode == 2 and quarter.stdout == ""
    assert "--return fca counts one reporting period" in quarter.stderr
    assert "--to 2026-06-30 for a half year" in quarter.stderr
    assert "Traceback" not in quarter.stderr and len(quarter.stderr.strip().splitlines()) == 1
    short_year = run(
        ["report", "--charter", HOUSING, "--input", "-", "--from", "2025-04-01", "--to",
         "2026-03-30", "--return", "tsm", "--homes", "2300", "--format", "json"],
        stdin=jsonl(*TSM),
    )  # fmt: skip
    assert short_year.returncode == 2 and short_year.stdout == ""
    assert "--return tsm counts one reporting year" in short_year.stderr
    assert "the year ends 2026-03-31" in short_year.stderr


def test_a_return_counted_before_its_period_ends_says_it_is_provisional() -> None:
    """As of 1 March 2026 the year to 31 March 2026 is not over: the JSON, the CSV and the
    page say the figures are provisional; counted after the year (``tsm()``), they are not."""
    args = [
        "report", "--charter", HOUSING, "--input", "-", "--from", "2025-04-01", "--to",
        "2026-03-31", "--now", "2026-03-01T00:00:00Z", "--return", "tsm", "--homes", "2300",
    ]  # fmt: skip
    document = json.loads(run([*args, "--format", "json"], stdin=jsonl(*TSM)).stdout)
    assert document["provisional"] is True
    values = dict(
        csv.reader(io.StringIO(run([*args, "--format", "csv"], stdin=jsonl(*TSM)).stdout))
    )
    assert values["provisional"] == "true"
    page = run([*args, "--format", "html"], stdin=jsonl(*TSM)).stdout
    assert "Provisional:" in page and "the figures will change" in page
    assert json.loads(tsm("json").stdout)["provisional"] is False
    assert "Provisional:" not in tsm("html").stdout
