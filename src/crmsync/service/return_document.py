"""A regulator's return as a document: the figures of ``domain.returns``, the definition
they implement, and what a charter cannot know (JSON, CSV lines and the page's words)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmsync.domain.charter import Charter
from crmsync.domain.instants import format_instant
from crmsync.domain.returns import ReturnKind, period_over
from crmsync.service.report_page import PageSource
from crmsync.service.report_stream import Partial, ReportRequest

TSM_URL = (
    "https://www.gov.uk/government/publications/tenant-satisfaction-measures-technical-requirements"
)
FCA_URL = "https://www.handbook.fca.org.uk/handbook/DISP/1/10.html"

DEFINITIONS: dict[ReturnKind, dict[str, Any]] = {
    ReturnKind.TSM: {
        "title": "Tenant Satisfaction Measures CH01 and CH02",
        "source": (
            "Regulator of Social Housing, Tenant Satisfaction Measures: Technical Requirements "
            "(updated 15 March 2024 to confirm how CH01 and CH02 reflect the Housing "
            "Ombudsman's Complaint Handling Code, in force from 1 April 2024, and 2 April "
            "2024), section 8 'Reporting year and year end dates' and section 13 'TSMs "
            "generated from management information': CH01 (complaints relative to the size "
            "of the landlord) and CH02 (complaints responded to within the Complaint Handling "
            "Code timescales). The draft TSM Direction (published 9 December 2025) makes "
            "these requirements its Part A (its paragraph 2): check the section numbers "
            "against the text in force when you file"
        ),
        "url": TSM_URL,
        "counted": [
            "CH01: stage one complaints received in the reporting year (the receipt that "
            "starts stage1-acknowledge) and stage two complaints received (the escalation "
            "that starts stage2-acknowledge), each per 1,000 homes (--homes).",
            "CH02: of the stage one (stage two) complaints responded to in the reporting year "
            "(the feedback that stops stage1-response; the decision that stops "
            "stage2-response), the share answered by the due instant of the timescales "
            "used (below). Both parts of CH01 and of CH02 are published and reported, with "
            "the timescales used for CH02: the regulator's letter on data requirements for "
            "2025-26, Annex B (11 March 2025), citing paragraphs 6-7 and 22-23 of the "
            "technical requirements.",
            "The Code's timescales, as the Housing Ombudsman states them ('Help if you are "
            "waiting for a final response', housing-ombudsman.org.uk): a stage one response "
            "within 10 working days of the acknowledgement, a stage two response within 20 "
            "working days of the escalation's acknowledgement; a landlord that extends "
            "either sets out its reasons and the date it will respond by in writing within "
            "those timescales. So an extension recorded by the due instant moves it (once, "
            "by at most 10 working days at stage one and 20 at stage two, the Code's 6.4 "
            "and its stage two counterpart) and a response by the extended date is within "
            "the timescale; an extension recorded after the due instant moves nothing.",
            "crmsync's reading, to check against CH01 and CH02 in section 13 of the "
            "requirements in force: the year is decided by the date of receipt (stage two: "
            "of the escalation) for CH01 and by the date of the response for CH02, each the "
            "local date in the charter's time zone, so a complaint received in one year and "
            "answered in the next counts in CH01 of the first and CH02 of the second; both "
            "figures are rounded half up to one decimal.",
        ],
        "cannot_know": [
            "The number of homes (--homes): the relevant social housing units owned at the "
            "year end, as sections 5 to 8 of the technical requirements define them "
            "(relevant social housing stock, dwelling units, ownership, year end dates).",
            "Whether each extension had a good reason and was explained to the resident "
            "with the Ombudsman's details, as the Code requires; the charter counts every "
            "recorded extension.",
            "Complaints never recorded in the CRM, and contacts recorded as complaints that "
            "the Code does not treat as complaints (service requests).",
            "Complaints withdrawn or not accepted: each recorded receipt counts in CH01, and "
            "in CH02 once a response stops its clock; leave out of the input those the "
            "technical requirements do not count.",
            "A stage one response to a complaint whose acknowledgement was never recorded: "
            "stage1-response starts at acknowledgement, so it is not counted in CH02.",
            "That --from..--to is the landlord's reporting year (1 April to 31 March for "
            "the Tenant Satisfaction Measures' years such as 2025/26).",
        ],
    },
    ReturnKind.FCA: {
        "title": "FCA complaints return: time to close",
        "source": (
            "FCA Handbook, DISP 1.10 Complaints reporting rules: DISP 1.10.1R (a complete "
            "report concerning complaints received from eligible complainants twice a year, "
            "or once a year for the firms of DISP 1.10.1R(2), in the format of DISP 1 Annex "
            "1R), DISP 1.10.2R and DISP 1 Annex 1R (complaints received, closed within three "
            "business days, after three business days and within eight weeks, and after "
            "eight weeks, and outstanding at the start of the reporting period), DISP 1.10.5 "
            "(reports are due within 30 business days of the end of the reporting period); "
            "DISP 1.5.1R (a complaint resolved by close of business on the third business "
            "day following the day on which it is received is spared only the time limit "
            "and forwarding rules, so it is reported) and DISP 1.5.2AR (it is resolved when "
            "the complainant has indicated acceptance of a response); DISP 1.10A for the "
            "complaints data a firm publishes"
        ),
        "url": FCA_URL,
        "counted": [
            "Complaints closed in the period, by the date of closing: the decision that stops "
            "summary-resolution (a final response under DISP 1.6.2R(1), or a response the "
            "complainant accepted, DISP 1.5.2AR, with its summary resolution communication). "
            "A holding response (DISP 1.6.2R(2)) closes nothing: it stops final-response but "
            "not the count.",
            "Within three business days: closed by summary-resolution's due instant, the "
            "close of the third business day of the charter's calendar following the day of "
            "receipt; a complaint received on a day the charter is closed, or after its "
            "closing time, is counted from the next business day, one business day later "
            "than DISP 1.5.1R's words. Within eight weeks: closed later but by "
            "final-response's due instant (eight weeks from receipt, DISP 1.6.2R). After "
            "eight weeks: the rest. Shares are of the complaints closed, one decimal, half "
            "up.",
            "Complaints received in the period (by the date of receipt) and complaints "
            "outstanding at its start (received before it, not closed before it).",
        ],
        "cannot_know": [
            "The product or service and the cause of each complaint, the complaints upheld "
            "and the redress paid (the return's other tables).",
            "Complaints never recorded in the CRM, and complaints forwarded in their "
            "entirety to another firm, which the report leaves out (DISP 1.10.1AR).",
            "Complaints received on a weekend, a bank holiday or after closing time and "
            "closed on the last business day the charter allows: DISP 1.5.1R counts the "
            "three business days from the day of receipt, the charter from the next "
            "business day, so check those counted within three business days.",
            "That --from..--to is the firm's reporting period: the six months to its "
            "accounting reference date or the six months after it (a year for a firm that "
            "reports once a year).",
            "The context the return asks for (such as the number of accounts).",
        ],
    },
}

TIMED_CLOCKS = {
    ReturnKind.TSM: ("stage1-response", "stage2-response"),
    ReturnKind.FCA: ("summary-resolution", "final-response"),
}
"""The clocks whose targets are the return's timescales (listed on the page and in JSON)."""


def timescales(kind: ReturnKind, charter: Charter) -> dict[str, str]:
    """Per clock of ``TIMED_CLOCKS``: its target in words, from which event, and the
    extension the charter allows (``10 working days from acknowledged; extended at most
    once by 10 working days on extended``)."""
    from crmsync.service.report_html import duration_words  # noqa: PLC0415 - one wording

    out: dict[str, str] = {}
    for clock_id in TIMED_CLOCKS[kind]:
        clock = charter.clock(clock_id)
        target = clock.measure
        words = "a date the CRM records" if target is None else duration_words(target)
        line = f"{words} from {clock.start}"
        extend = getattr(clock, "extend", None)
        if extend is not None:
            times = "once" if extend.max == 1 else f"{extend.max} times"
            line += f"; extended at most {times} by {duration_words(extend.by)} on {extend.on}"
        out[clock_id] = line
    return out


def return_document(request: ReportRequest, partial: Partial, homes: int | None) -> dict[str, Any]:
    """The JSON document of a return: what, over which dates, as of when, its figures,
    the definition it implements and what the organisation must add."""
    assert request.returns is not None and partial.returns is not None
    kind = request.returns
    definition = DEFINITIONS[kind]
    return {
        "return": kind.value,
        "title": definition["title"],
        "charter": request.charter.name,
        "from": request.first.isoformat(),
        "to": request.last.isoformat(),
        "now": format_instant(request.now),
        "provisional": not period_over(request.last, request.charter.calendar.zone, request.now),
        "figures": partial.returns.figures(homes),
        "definition": {
            "source": definition["source"],
            "url": definition["url"],
            "counted": definition["counted"],
        },
        "timescales": timescales(kind, request.charter),
        "organisation_must_add": definition["cannot_know"],
    }


def return_csv_lines(document: dict[str, Any]) -> Iterator[list[object]]:
    """The CSV of a return: one line per figure (``figure,value``), nested names joined
    with a dot (``stage1.received``); an empty value is a share of nothing."""
    yield ["figure", "value"]
    for key in ("return", "charter", "from", "to", "now", "provisional"):
        value = document[key]
        yield [key, str(value).lower() if isinstance(value, bool) else value]

    def flat(prefix: str, value: Any) -> Iterator[list[object]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from flat(f"{prefix}.{k}" if prefix else k, v)
        else:
            yield [prefix, "" if value is None else value]

    yield from flat("", document["figures"])


def render_return_html(document: dict[str, Any], page: PageSource) -> str:
    """The printable page of a return: its figures, the definition, what to add."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415 - on use

    env = Environment(
        loader=PackageLoader("crmsync.service", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f} %"

    return env.get_template("return.html.j2").render(
        doc=document, charter=page.charter, source=page.source, pct=pct
    )
