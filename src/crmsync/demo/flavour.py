"""What the sample complaints say: names, descriptions and closing notes (demo data only).

Text, not behaviour: the generator (``sample_complaints``) takes its events, hours and
holidays from the charter, and only its words from here. Descriptions are kept per
bundled charter so that each demo reads like its organisation; any other charter gets
general ones in its language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmsync.domain.charter import Charter

_EN_FIRST = (
    "Oliver", "Amelia", "Jack", "Olivia", "Harry", "Isla", "George", "Emily", "Mohammed",
    "Priya", "Daniel", "Sophie", "James", "Chloe", "Thomas", "Aisha", "William", "Grace",
    "Joshua", "Hannah", "Kwame", "Zofia",
)  # fmt: skip
_EN_LAST = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Khan", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
    "Hall", "Clarke", "Nowak", "Okafor",
)  # fmt: skip
_IE_FIRST = (
    "Seán", "Aoife", "Conor", "Niamh", "Ciarán", "Siobhán", "Darragh", "Gráinne", "Pádraig",
    "Róisín", "Eoin", "Caoimhe", "Michael", "Mary", "John", "Catherine", "Cian", "Saoirse",
)  # fmt: skip
_IE_LAST = (
    "Murphy", "Kelly", "O'Sullivan", "Walsh", "Byrne", "Ryan", "O'Brien", "Kavanagh", "Dunne",
    "Brennan", "Phelan", "Ó Briain", "Comerford", "Tobin", "Maher", "Mac Giolla Phádraig",
)  # fmt: skip
_NL_FIRST = (
    "Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Milan", "Tess", "Levi", "Sophie",
    "Finn", "Zoë", "Noah", "Anna", "Bram", "Fleur", "Mohamed", "Sanne", "Thijs", "Lotte",
)  # fmt: skip
_NL_LAST = (
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
    "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
    "van Leeuwen", "Dekker", "Yılmaz",
)  # fmt: skip

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "aston": (
        "Timesheet was submitted on time but I have not been paid for last week.",
        "Consultant promised a call back about the warehouse role and never rang.",
        "Holiday pay is missing from my last payslip.",
        "I was sent to an assignment that had already been filled.",
        "Forklift training course cancelled on the day without any notice.",
        "The temp supplied for our night shift did not hold the agreed CSCS card.",
        "February invoice charged the wrong hourly rate for our temporary staff.",
        "A member of staff at the branch was rude to me on the phone.",
        "My CV was sent to an employer without my consent.",
        "Apprenticeship assessment results still not received after six weeks.",
        "Agreed start date was moved twice and nobody told me why.",
    ),
    "the-square-mile": (
        "De trainer kwam twee keer te laat voor de les.",
        "Het lesmateriaal is niet op tijd ontvangen.",
        "De cursus sloot niet aan bij het niveau dat in de intake is afgesproken.",
        "Er zijn lessen gefactureerd die door de trainer zijn geannuleerd.",
        "Geen certificaat ontvangen na afronding van de cursus.",
        "De les werd zonder overleg naar een andere dag verplaatst.",
        "Weinig voortgang na tien lessen en de trainer reageert niet op vragen.",
        "De online les viel drie keer uit door technische problemen.",
    ),
    "studijob": (
        "Op mijn loonstrook van vorige week ontbreken uren.",
        "Geen reactie ontvangen op mijn sollicitatie.",
        "De uitzendkracht is zonder afmelding niet verschenen.",
        "Vakantiegeld is niet uitbetaald.",
        "Het intakegesprek werd op het laatste moment afgezegd.",
        "Onvriendelijk behandeld door een medewerker van de vestiging.",
        "De opdracht werd eerder beëindigd dan afgesproken.",
        "De factuur bevat een verkeerd uurtarief.",
    ),
    "kilkenny": (
        "The pothole outside my house has not been repaired despite two reports.",
        "Bin collection was missed on our road for the second week running.",
        "The street light at the junction has been out for a month.",
        "No reply to my query about the housing adaptation grant.",
        "The planning file was not available for inspection at the counter.",
        "I was overcharged when renewing my motor tax.",
        "Illegal dumping at the bring bank has not been cleared.",
        "Library opening hours were changed without any notice.",
    ),
    "fca-disp": (
        "A direct debit was taken twice from my current account this month.",
        "My car insurance claim has not been settled after the assessor's visit.",
        "I was charged an arrears fee although my mortgage payment was made on time.",
        "The bank blocked my card abroad and nobody answered the fraud line.",
        "My ISA transfer has taken far longer than the time I was promised.",
        "I was not told about the early repayment charge on my loan.",
        "A card payment I disputed has not been refunded.",
        "The interest rate on my savings account changed without notice.",
    ),
    "housing-ombudsman": (
        "Damp and mould in the bedroom have come back since the last repair.",
        "The boiler has been broken for two weeks and the repair was cancelled twice.",
        "A repair appointment was missed and nobody told me.",
        "Anti-social behaviour from the neighbouring flat has not been dealt with.",
        "My service charge went up without any explanation.",
        "The communal door entry system has not worked for a month.",
        "The leak from the flat above has damaged my ceiling.",
        "The contractor left my kitchen unfinished.",
    ),
    "cbi-cpc": (
        "My mortgage repayment went up after the tracker rate was changed.",
        "The travel insurance claim was refused without a reason.",
        "Fees were charged on my current account that were never explained to me.",
        "My card was declined and the bank took a week to unblock it.",
        "The credit union loan top-up was refused without a reason.",
        "My motor insurance renewal premium doubled with no claims made.",
        "A transfer to my own account in another bank never arrived.",
        "The bank did not tell me my fixed rate was ending.",
    ),
}
_IRISH_DESCRIPTIONS = (
    "Níor bailíodh an bruscar ar ár mbóthar an tseachtain seo.",
    "Tá poll mór sa bhóthar taobh amuigh de mo theach.",
    "Níl aon fhreagra faighte agam ar mo ríomhphost.",
)
_IRISH_FINANCE_DESCRIPTIONS = (
    "Gearradh táille ar mo chuntas reatha nár míníodh dom riamh.",
    "Diúltaíodh d'éileamh árachais taistil gan chúis.",
    "Níl aon fhreagra faighte agam ar mo ríomhphost faoi mo mhorgáiste.",
)
_EN_FOLLOW_UPS = (
    "",
    "",
    " Please respond urgently.",
    " This is the second time this has happened.",
    " I would like an apology.",
    " I expect this to be put right.",
)
_NL_FOLLOW_UPS = (
    "",
    "",
    " Graag zo snel mogelijk een reactie.",
    " Dit is al de tweede keer.",
    " Ik verwacht een passende oplossing.",
)
_ROOT_CAUSES = {
    False: (
        "Process not followed",
        "Staff shortage",
        "System error",
        "Miscommunication",
        "Third-party delay",
    ),
    True: (
        "Procedure niet gevolgd",
        "Onderbezetting",
        "Fout in het systeem",
        "Miscommunicatie",
        "Vertraging bij derden",
    ),
}
_SOLUTIONS = {
    False: (
        "Apology and payment corrected",
        "Refund issued",
        "Staff briefed on the procedure",
        "Service restored",
        "Goodwill gesture offered",
    ),
    True: (
        "Excuses aangeboden en betaling gecorrigeerd",
        "Bedrag teruggestort",
        "Medewerkers opnieuw geïnstrueerd",
        "Extra les aangeboden",
        "Tegemoetkoming aangeboden",
    ),
}
_GENERAL_DESCRIPTIONS = {
    "en": (
        "Nobody replied to my complaint.",
        "I was given wrong information by a member of staff.",
        "The service was not delivered on the agreed date.",
        "I was charged for something I did not order.",
        "A member of staff was rude to me.",
        "My request was lost and I had to send it again.",
    ),
    "nl": (
        "Ik heb geen reactie gekregen op mijn klacht.",
        "Een medewerker gaf mij verkeerde informatie.",
        "De dienst werd niet op de afgesproken datum geleverd.",
        "Er is iets in rekening gebracht dat ik niet heb besteld.",
        "Een medewerker was onvriendelijk tegen mij.",
    ),
}
_COMPLAINANTS: dict[str, tuple[tuple[str, float], ...]] = {
    "aston": (("worker", 0.65), ("client", 0.35)),
    "the-square-mile": (("client", 0.9), ("worker", 0.1)),
    "studijob": (("worker", 0.65), ("client", 0.35)),
    "kilkenny": (("citizen", 1.0),),
    "housing-ombudsman": (("citizen", 1.0),),
}
_IRISH_ZONES = frozenset({"Europe/Dublin"})
_DUTCH_ZONES = frozenset({"Europe/Amsterdam", "Europe/Brussels"})


@dataclass(frozen=True, slots=True)
class Flavour:
    """The words of one charter's sample complaints."""

    people: tuple[str, ...]  # "first last"
    descriptions: tuple[str, ...]
    customer_languages: tuple[tuple[str, float], ...]  # language code -> share
    other_language_descriptions: dict[str, tuple[str, ...]]  # e.g. "ga" -> Irish texts
    complainant_types: tuple[tuple[str, float], ...]
    root_causes: tuple[str, ...]
    solutions: tuple[str, ...]


def flavour_for(charter: Charter) -> Flavour:
    """Names by the charter's country (its time zone and language), descriptions of the
    bundled charter of that name or general ones in the charter's language."""
    zone = str(charter.calendar.zone.key)
    dutch = charter.language == "nl" or zone in _DUTCH_ZONES
    irish = zone in _IRISH_ZONES and not dutch
    first = _NL_FIRST if dutch else _IE_FIRST if irish else _EN_FIRST
    last = _NL_LAST if dutch else _IE_LAST if irish else _EN_LAST
    follow_ups = _NL_FOLLOW_UPS if dutch else _EN_FOLLOW_UPS
    own = _DESCRIPTIONS.get(charter.name) or _GENERAL_DESCRIPTIONS["nl" if dutch else "en"]
    finance = charter.name == "cbi-cpc"
    return Flavour(
        people=tuple(f"{a} {b}" for a in first for b in last),
        descriptions=tuple(d + f for d in own for f in follow_ups),
        customer_languages=(("en", 0.9), ("ga", 0.1))
        if irish
        else (("nl", 1.0),)
        if dutch
        else (("en", 1.0),),
        other_language_descriptions={
            "ga": _IRISH_FINANCE_DESCRIPTIONS if finance else _IRISH_DESCRIPTIONS
        },
        complainant_types=_COMPLAINANTS.get(charter.name, (("client", 1.0),)),
        root_causes=_ROOT_CAUSES[dutch],
        solutions=_SOLUTIONS[dutch],
    )
