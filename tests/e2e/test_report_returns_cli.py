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
# due at the close of Tue 20 Jan (17:00); one extension of 10 working days -> Tue 3 Feb 17:00.
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
    # days later (Tue 17 Feb 17:00), decided Mon 2 Mar -> stage two not within
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
    source = document["definition"]["source"]
    assert "Technical Requirements" in source
    assert "section 8 'Reporting year and year end dates'" in source
    assert "section 13 'TSMs generated from management information'" in source
    counted = " ".join(document["definition"]["counted"])
    # the Code's timescales as the Housing Ombudsman states them, and what is only a reading
    assert "within 10 working days of the acknowledgement" in counted
    assert "an extension recorded after the due instant moves nothing" in counted
    assert "crmsync's reading" in counted and "paragraphs 6-7 and 22-23" in counted
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
    assert "DISP 1.5.1R" in page and "DISP 1.6.2R(2)" in page
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


# ---------------------------------------------------------------- boundaries, counted by hand
# stage1-response, acknowledged Tue 6 Jan 2026 10:00 (GMT): day0 is 6 Jan, the 10th working
# day after it is Tue 20 Jan -> due 2026-01-20T17:00:00Z (close of business). One extension
# of 10 working days counted from that instant -> Tue 3 Feb 17:00 (2026-02-03T17:00:00Z).
# stage2-response, escalation acknowledged Tue 20 Jan 10:00: 20 working days -> Tue 17 Feb
# 17:00; extended by 20 working days -> Tue 17 Mar 17:00 (GMT until 29 March).
# The year 2025-04-01..2026-03-31 is local: 1 April 2025 begins at 2025-03-31T23:00:00Z
# (BST from 30 March 2025) and 1 April 2026 at 2026-03-31T23:00:00Z (BST from 29 March 2026).
def acknowledged_6_jan(cid: str, **events: str) -> dict[str, Any]:
    return complaint(
        cid, received="2026-01-05T10:00:00Z", acknowledged="2026-01-06T10:00:00Z", **events
    )


def escalated_19_jan(cid: str, **events: str) -> dict[str, Any]:
    return acknowledged_6_jan(
        cid,
        feedback="2026-01-13T10:00:00Z",
        escalated_l2="2026-01-19T10:00:00Z",
        escalation_acknowledged="2026-01-20T10:00:00Z",
        escalation_extended="2026-02-10T10:00:00Z",
        **events,
    )


TSM_EDGES = [
    acknowledged_6_jan("B-01", feedback="2026-01-20T17:00:00Z"),  # exactly at due: within
    acknowledged_6_jan("B-02", feedback="2026-01-20T17:00:01Z"),  # one second over: not
    # extended exactly at the due instant (applies), answered exactly at the extended one
    acknowledged_6_jan("B-03", extended="2026-01-20T17:00:00Z", feedback="2026-02-03T17:00:00Z"),
    # extended in time, answered one second after the extended due instant: not within
    acknowledged_6_jan("B-04", extended="2026-01-12T10:00:00Z", feedback="2026-02-03T17:00:01Z"),
    # extended one second after the due instant: too late, applies nothing; answered 26 Jan
    acknowledged_6_jan("B-05", extended="2026-01-20T17:00:01Z", feedback="2026-01-26T10:00:00Z"),
    # received at 00:00 BST on 1 April 2025: in the year; answered the next day (within)
    complaint(
        "B-06",
        received="2025-03-31T23:00:00Z",
        acknowledged="2025-04-01T09:00:00Z",
        feedback="2025-04-02T09:00:00Z",
    ),
    # received at 23:59:59 BST on 31 March 2025: the year before; answered in the year, within
    complaint(
        "B-07",
        received="2025-03-31T22:59:59Z",
        acknowledged="2025-04-01T09:00:00Z",
        feedback="2025-04-03T09:00:00Z",
    ),
    # answered at 00:00 BST on 1 April 2026: received in the year, responded in the next
    complaint(
        "B-08",
        received="2026-03-02T10:00:00Z",
        acknowledged="2026-03-03T10:00:00Z",
        feedback="2026-03-31T23:00:00Z",
    ),
    # answered at 23:59:59 BST on 31 March 2026: in the year, late (due Tue 17 Mar 17:00)
    complaint(
        "B-09",
        received="2026-03-02T10:00:00Z",
        acknowledged="2026-03-03T10:00:00Z",
        feedback="2026-03-31T22:59:59Z",
    ),
    # stage two extended on 10 Feb: decided exactly at the extended due instant, and a second after
    escalated_19_jan("B-10", decision="2026-03-17T17:00:00Z"),
    escalated_19_jan("B-11", decision="2026-03-17T17:00:01Z"),
]


def test_tsm_boundaries_counted_by_hand() -> None:
    """Stage one received in the year: B-01..05, B-06, B-08, B-09, B-10, B-11 = 10 (not B-07,
    received the day before) -> 10 x 1000 / 3000 = 3.33 -> 3.3. Responded in the year: B-01..07,
    B-09, B-10, B-11 = 10 (not B-08, answered on 1 April local); within: B-01, B-03, B-06, B-07,
    B-10, B-11 = 6 -> 60.0 %. Stage two received and responded: B-10, B-11 = 2 -> 2000 / 3000
    = 0.67 -> 0.7; within: B-10 -> 50.0 %."""
    result = run(
        ["report", "--charter", HOUSING, "--input", "-", "--from", "2025-04-01", "--to",
         "2026-03-31", "--now", "2026-06-01T00:00:00Z", "--return", "tsm", "--homes", "3000",
         "--format", "json"],
        stdin=jsonl(*TSM_EDGES),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["figures"]
    assert figures["stage1"] == {
        "received": 10,
        "per_1000_homes": 3.3,
        "responded": 10,
        "within_timescale": 6,
        "within_timescale_pct": 60.0,
    }
    assert figures["stage2"] == {
        "received": 2,
        "per_1000_homes": 0.7,
        "responded": 2,
        "within_timescale": 1,
        "within_timescale_pct": 50.0,
    }


# summary-resolution, received Mon 5 Jan 2026 10:00 (GMT): day0 is 5 Jan, the 3rd working day
# after it is Thu 8 Jan -> due 2026-01-08T17:00:00Z. final-response: 8 weeks -> Mon 2 Mar
# 10:00 (2026-03-02T10:00:00Z). The half 2026-01-01..06-30 ends at 2026-06-30T23:00:00Z (BST).
FCA_EDGES = [
    complaint("G-01", received="2026-01-05T10:00:00Z", decision="2026-01-08T17:00:00Z"),
    complaint("G-02", received="2026-01-05T10:00:00Z", decision="2026-01-08T17:00:01Z"),
    complaint("G-03", received="2026-01-05T10:00:00Z", decision="2026-03-02T10:00:00Z"),
    complaint("G-04", received="2026-01-05T10:00:00Z", decision="2026-03-02T10:00:01Z"),
    # received at 23:59:59 BST on 30 June: in the half, still open
    complaint("G-05", received="2026-06-30T22:59:59Z"),
    # received at 00:00 BST on 1 July: not in the half
    complaint("G-06", received="2026-06-30T23:00:00Z"),
    # received 23:59:59 on 31 Dec 2025 (after closing; 1 Jan a bank holiday: day0 is Fri 2
    # Jan, due Wed 7 Jan 17:00), closed at 00:00 on 1 Jan: outstanding at the start, closed
    # in the half within three business days
    complaint("G-07", received="2025-12-31T23:59:59Z", decision="2026-01-01T00:00:00Z"),
    # received in June, closed at 00:00 BST on 1 July: received only
    complaint("G-08", received="2026-06-01T09:00:00Z", decision="2026-06-30T23:00:00Z"),
    # closed at 23:59:59 on 31 Dec 2025: neither outstanding at the start nor closed in it
    complaint("G-09", received="2025-12-01T10:00:00Z", decision="2025-12-31T23:59:59Z"),
    # received Tue 2 Jun, closed at 23:59:59 BST on 30 June: after three business days (Fri
    # 5 Jun 17:00), within eight weeks (28 Jul)
    complaint("G-10", received="2026-06-02T09:00:00Z", decision="2026-06-30T22:59:59Z"),
]


def test_fca_boundaries_counted_by_hand() -> None:
    """Received: G-01..04, G-05, G-08, G-10 = 7; outstanding at the start: G-07 = 1; closed:
    G-01..04, G-07, G-10 = 6: within three business days G-01 and G-07 (2 of 6 = 33.3 %),
    within eight weeks G-02, G-03, G-10 (50.0 %), after eight weeks G-04 (16.7 %)."""
    result = run(
        ["report", "--charter", FCA, "--input", "-", "--from", "2026-01-01", "--to",
         "2026-06-30", "--now", "2026-07-15T00:00:00Z", "--return", "fca", "--format", "json"],
        stdin=jsonl(*FCA_EDGES),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["figures"] == {
        "received": 7,
        "outstanding_at_start": 1,
        "closed": 6,
        "closed_within_3_business_days": 2,
        "closed_after_3_business_days_within_8_weeks": 3,
        "closed_after_8_weeks": 1,
        "closed_within_3_business_days_pct": 33.3,
        "closed_after_3_business_days_within_8_weeks_pct": 50.0,
        "closed_after_8_weeks_pct": 16.7,
    }


# received out of hours (GMT, local = UTC): DISP 1.5.1R counts "the third business day
# following the day on which it is received"; the charter's business_days count from the next
# business day for a receipt on a closed day or after closing (documented on the page).
# O-1, O-2: received Sat 10 Jan 11:00 -> day0 Mon 12 Jan -> due Thu 15 Jan 17:00 (the rule's
# words: Wed 14 Jan). O-3: received Mon 12 Jan 18:00, after closing -> day0 Tue 13 Jan -> due
# Fri 16 Jan 17:00 (the rule's words: Thu 15 Jan). O-4: received Mon 12 Jan 08:00, before
# opening -> day0 Mon 12 Jan -> due Thu 15 Jan 17:00, as the rule's words.
FCA_OUT_OF_HOURS = [
    complaint("O-1", received="2026-01-10T11:00:00Z", decision="2026-01-15T16:00:00Z"),
    complaint("O-2", received="2026-01-10T11:00:00Z", decision="2026-01-15T17:00:01Z"),
    complaint("O-3", received="2026-01-12T18:00:00Z", decision="2026-01-16T12:00:00Z"),
    complaint("O-4", received="2026-01-12T08:00:00Z", decision="2026-01-16T09:00:00Z"),
]


def test_fca_three_business_days_of_an_out_of_hours_receipt_start_the_next_business_day() -> None:
    """Received: 4; closed: 4; within three business days O-1 (Thu 16:00, due Thu 17:00) and
    O-3 (Fri 12:00, due Fri 17:00) = 2 of 4 = 50.0 %; after three business days within eight
    weeks O-2 and O-4 = 50.0 %. The page says the charter counts such receipts from the next
    business day and names DISP 1.5.1R."""
    args = ["report", "--charter", FCA, "--input", "-", "--from", "2026-01-01", "--to",
            "2026-06-30", "--now", "2026-07-15T00:00:00Z", "--return", "fca"]  # fmt: skip
    result = run([*args, "--format", "json"], stdin=jsonl(*FCA_OUT_OF_HOURS))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["figures"] == {
        "received": 4,
        "outstanding_at_start": 0,
        "closed": 4,
        "closed_within_3_business_days": 2,
        "closed_after_3_business_days_within_8_weeks": 2,
        "closed_after_8_weeks": 0,
        "closed_within_3_business_days_pct": 50.0,
        "closed_after_3_business_days_within_8_weeks_pct": 50.0,
        "closed_after_8_weeks_pct": 0.0,
    }
    assert any("from the next business day" in line for line in document["definition"]["counted"])
    assert any("DISP 1.5.1R" in line for line in document["organisation_must_add"])
