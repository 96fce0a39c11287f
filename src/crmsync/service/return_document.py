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
            "(updated 15 March 2024 for the Housing Ombudsman's Complaint Handling Code, in "
            "force from 1 April 2024, and 2 April 2024), sections 'Reporting year and year "
            "end dates' and 'TSMs generated from management information': CH01 (complaints "
            "relative to the size of the landlord) and CH02 (complaints responded to within "
            "the Complaint Handling Code timescales)"
        ),
        "url": TSM_URL,
        "counted": [
            "CH01: stage one complaints received in the reporting year (the receipt that "
            "starts stage1-acknowledge) and stage two complaints received (the escalation "
            "that starts stage2-acknowledge), each per 1,000 homes, one decimal, half up.",
            "CH02: of the stage one (stage two) complaints responded to in the reporting year "
            "(the feedback that stops stage1-response; the decision that stops "
            "stage2-response), the share answered by the due instant of the timescales "
            "used (below). Both parts of CH01 and of CH02 are published and reported, with "
            "the timescales used for CH02 (the regulator's letter on data requirements for "
            "2025-26, Annex B, 11 March 2025).",
            "Our reading of the definitions, to check against the requirements in force: the "
            "year is decided by the date of receipt for CH01 and by the date of the response "
            "for CH02, each the local date in the charter's time zone; a complaint received "
            "in one year and answered in the next counts in CH01 of the first and CH02 of "
            "the second.",
            "Our reading of the Code: an extension counts as it allows one, of up to 10 "
            "working days at stage one and 20 at stage two; a response by the extended date "
            "is within the timescale, a response after it is not.",
        ],
        "cannot_know": [
            "The number of homes (--homes): the relevant social housing units owned at the "
            "year end, as the technical requirements define them.",
            "Whether each extension had a good reason and was explained to the resident "
            "with the Ombudsman's details, as the Code requires; the charter counts every "
            "recorded extension.",
            "Complaints never recorded in the CRM, and contacts recorded as complaints that "
            "the Code does not treat as complaints (service requests).",
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
            "report twice a year, or once a year for the firms of DISP 1.10.1R(2)), DISP "
            "1.10.2R and the return's format in DISP 1 Annex 1R (complaints received, closed "
            "within three business days, after three business days and within eight weeks, "
            "and after eight weeks, and outstanding at the start of the reporting period), "
            "DISP 1.10.5 (reports are due within 30 business days of the end of the "
            "reporting period); DISP 1.10A for the complaints data a firm publishes"
        ),
        "url": FCA_URL,
        "counted": [
            "Complaints closed in the period, by the date of closing: the decision that stops "
            "summary-resolution (a final response or a summary resolution communication). A "
            "holding response closes nothing: it stops final-response but not the count.",
            "Within three business days: closed by summary-resolution's due instant (three "
            "business days of the charter's calendar from receipt). Within eight weeks: "
            "closed later but by final-response's due instant (eight weeks from receipt). "
            "After eight weeks: the rest. Shares are of the complaints closed, one decimal, "
            "half up.",
            "Complaints received in the period (by the date of receipt) and complaints "
            "outstanding at its start (received before it, not closed before it).",
        ],
        "cannot_know": [
            "The product or service and the cause of each complaint, the complaints upheld "
            "and the redress paid (the return's other tables).",
            "Complaints never recorded in the CRM, and whether a complaint received after "
            "close of business was treated as received the next business day.",
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
