"""A regulator's return as a document: the figures of ``domain.returns``, the definition
they implement, and what a charter cannot know (JSON, CSV lines and the page's words)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmsync.domain.instants import format_instant
from crmsync.domain.returns import ReturnKind
from crmsync.service.report_page import PageSource
from crmsync.service.report_stream import Partial, ReportRequest

DEFINITIONS: dict[ReturnKind, dict[str, Any]] = {
    ReturnKind.TSM: {
        "title": "Tenant Satisfaction Measures CH01 and CH02",
        "source": (
            "Regulator of Social Housing, Tenant Satisfaction Measures: Technical Requirements "
            "(updated March and April 2024 for the Housing Ombudsman's Complaint Handling Code "
            "2024), CH01 (complaints relative to the size of the landlord) and CH02 "
            "(complaints responded to within the Complaint Handling Code timescales)"
        ),
        "counted": [
            "CH01: stage one complaints received in the reporting year (the receipt that "
            "starts stage1-acknowledge) and stage two complaints received (the escalation "
            "that starts stage2-acknowledge), each per 1,000 homes, one decimal, half up.",
            "CH02: of the stage one (stage two) complaints responded to in the reporting year "
            "(the feedback that stops stage1-response; the decision that stops "
            "stage2-response), the share answered by the due instant: 10 working days from "
            "acknowledgement at stage one, 20 at stage two.",
            "The year is decided by the date of receipt for CH01 and by the date of the "
            "response for CH02, each the local date in the charter's time zone.",
            "An extension counts as the Code allows it: one, of up to 10 working days at "
            "stage one and 20 at stage two; a response by the extended date is within the "
            "timescale, a response after it is not.",
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
            "The landlord's reporting year (most use 1 April to 31 March): give it with "
            "--from and --to.",
        ],
    },
    ReturnKind.FCA: {
        "title": "FCA complaints return: time to close",
        "source": (
            "FCA Handbook, DISP 1.10 (complaints reporting: a report for each six-month "
            "reporting period) and DISP 1 Annex 1R (the complaints return: complaints closed "
            "within three business days, after three business days and within eight weeks, "
            "and after eight weeks); DISP 1.10A (the complaints data summary a firm publishes)"
        ),
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
            "The firm's reporting periods (six months to its accounting reference date and "
            "six months after): give one with --from and --to.",
            "The context the return asks for (such as the number of accounts).",
        ],
    },
}


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
        "figures": partial.returns.figures(homes),
        "definition": {"source": definition["source"], "counted": definition["counted"]},
        "organisation_must_add": definition["cannot_know"],
    }


def return_csv_lines(document: dict[str, Any]) -> Iterator[list[object]]:
    """The CSV of a return: one line per figure (``figure,value``), nested names joined
    with a dot (``stage1.received``); an empty value is a share of nothing."""
    yield ["figure", "value"]
    for key in ("return", "charter", "from", "to", "now"):
        yield [key, document[key]]

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
