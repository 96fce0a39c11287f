"""Realistic sample complaints for the bundled charters (demo data and benchmarks).

``generate_complaints`` yields canonical complaints (semantics section 1) that look like
a CRM export of the charter's organisation: mostly received in office hours, staff
actions on working days at realistic delays (most on time, some late, some never),
escalation paths, interim updates, call-backs and now and then a required attribute
left empty. Ids look like Salesforce ids (18 characters, with the case-check suffix).

Pure: no I/O and no clock; every random choice comes from one ``random.Random(seed)``,
so the same arguments always give the same complaints. The generator's own view of the
calendar (EU summer time, weekday hours, public holidays from ``holidays``) only decides
what looks real; it never decides a state - that is the engine's job.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

import holidays

__all__ = ["CHARTERS", "generate_complaints"]

_DAY = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TAIL_DAYS = 500  # events may follow the last received date by this much (long escalations)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_UPPER_AS_BITS = str.maketrans({c: "1" if c.isupper() else "0" for c in _BASE62})


@dataclass(frozen=True, slots=True)
class _Profile:
    """What a charter's organisation looks like to the generator."""

    std_offset: int  # seconds east of UTC in winter; EU summer time adds an hour
    hours: tuple[tuple[int, int] | None, ...]  # per weekday (0 = Monday): (open, close) minutes
    country: str
    subdivision: str | None
    channels: tuple[tuple[str, float], ...]  # channel -> share of complaints
    pod: str  # the two instance characters of this org's Salesforce ids
    dutch: bool  # names and descriptions in Dutch


_WEEKDAYS_9_TO_5 = ((540, 1020),) * 5 + (None, None)

_PROFILES: dict[str, _Profile] = {
    "aston": _Profile(
        0,
        ((510, 1020),) * 4 + ((510, 990), None, None),
        "GB",
        "ENG",
        (("email", 0.40), ("phone", 0.30), ("web", 0.15), ("in_person", 0.10), ("letter", 0.05)),
        "8d",
        False,
    ),
    "the-square-mile": _Profile(
        3600,
        _WEEKDAYS_9_TO_5,
        "NL",
        None,
        (("email", 0.55), ("phone", 0.20), ("web", 0.15), ("letter", 0.05), ("in_person", 0.05)),
        "Qy",
        True,
    ),
    "studijob": _Profile(
        3600,
        _WEEKDAYS_9_TO_5,
        "NL",
        None,
        (("email", 0.45), ("phone", 0.35), ("web", 0.10), ("in_person", 0.08), ("letter", 0.02)),
        "5J",
        True,
    ),
    "kilkenny": _Profile(
        0,
        _WEEKDAYS_9_TO_5,
        "IE",
        None,
        (("email", 0.35), ("phone", 0.30), ("web", 0.20), ("letter", 0.08), ("in_person", 0.07)),
        "Tz",
        False,
    ),
    "fca-disp": _Profile(  # a UK bank or insurer
        0,
        _WEEKDAYS_9_TO_5,
        "GB",
        "ENG",
        (("phone", 0.40), ("email", 0.25), ("web", 0.20), ("letter", 0.10), ("in_person", 0.05)),
        "Fc",
        False,
    ),
    "housing-ombudsman": _Profile(  # a social landlord in England
        0,
        _WEEKDAYS_9_TO_5,
        "GB",
        "ENG",
        (("phone", 0.40), ("email", 0.25), ("web", 0.20), ("letter", 0.08), ("in_person", 0.07)),
        "Hm",
        False,
    ),
    "cbi-cpc": _Profile(  # an Irish bank or insurer
        0,
        _WEEKDAYS_9_TO_5,
        "IE",
        None,
        (("phone", 0.35), ("email", 0.30), ("web", 0.20), ("letter", 0.10), ("in_person", 0.05)),
        "Cb",
        False,
    ),
}

CHARTERS: tuple[str, ...] = tuple(_PROFILES)
"""The bundled charters the generator knows."""

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
_STUDIJOB_BRANCHES = (
    "vestiging Utrecht",
    "vestiging Amsterdam",
    "vestiging Rotterdam",
    "vestiging Groningen",
)
_BLANKS = ("", " ")  # how an empty CRM text field arrives: nothing, or a stray space

SampleComplaint = dict[str, Any]
"""A canonical complaint as JSON-ready data (semantics section 1)."""


def _salesforce_id(id15: str) -> str:
    """Append the 3-character case-check suffix that turns a 15-character id into 18."""
    bits = id15.translate(_UPPER_AS_BITS)
    return (
        id15
        + _CHECK_CHARS[int(bits[4::-1], 2)]
        + _CHECK_CHARS[int(bits[9:4:-1], 2)]
        + _CHECK_CHARS[int(bits[14:9:-1], 2)]
    )


@cache
def _clock_texts() -> tuple[str, ...]:
    """``HH:MM:SS`` for every second of a day, by second."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(_DAY))


_PAIRS = tuple(a + b for a in _BASE62 for b in _BASE62)  # two base62 digits, by value
_PAIR_UPPER = tuple(int(a.isupper()) | int(b.isupper()) << 1 for a in _BASE62 for b in _BASE62)


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


class _Generator:
    """The state of one ``generate_complaints`` call: calendar tables, staff, id counter."""

    def __init__(
        self, name: str, profile: _Profile, rng: random.Random, first: date, span_days: int
    ) -> None:
        self.name = name
        self.profile = profile
        self.r = rng.random
        self._tabulate_days(profile, first - timedelta(days=1), span_days + _TAIL_DAYS + 2)
        # received days: working days weigh 1, weekends and holidays 0.2 (email and web only)
        self.received_cum = list(
            accumulate(1.0 if self.close[i] else 0.2 for i in range(1, span_days + 1))
        )
        self.clock_text = _clock_texts()
        self.channel_by_percent = tuple(
            channel for channel, share in profile.channels for _ in range(round(share * 100))
        )
        self.remote = tuple(c for c, _ in profile.channels if c in ("email", "web"))
        dutch = profile.dutch
        irish = name in ("kilkenny", "cbi-cpc")
        first_names = _NL_FIRST if dutch else _IE_FIRST if irish else _EN_FIRST
        last_names = _NL_LAST if dutch else _IE_LAST if irish else _EN_LAST
        self.people = tuple(f"{a} {b}" for a in first_names for b in last_names)
        staff = 6 + int(self.r() * 6)
        self.staff_ids = tuple(self._user_id() for _ in range(staff))
        self.staff_names = tuple(self._person() for _ in range(staff))
        self.managers = [self._user_id() for _ in range(2)]
        follow_ups = _NL_FOLLOW_UPS if dutch else _EN_FOLLOW_UPS
        self.descriptions = tuple(d + f for d in _DESCRIPTIONS[name] for f in follow_ups)
        self.root_causes = _ROOT_CAUSES[dutch]
        self.solutions = _SOLUTIONS[dutch]
        # case ids count up from a random start: a head (all but the last two base62 digits,
        # with its share of the check suffix) that changes every 3844 ids, and a low part
        self.case_high = 62**3 + int(self.r() * 40 * 62**3)
        self.case_low = int(self.r() * 3844)
        self._case_head()

    def _tabulate_days(self, profile: _Profile, first: date, days: int) -> None:
        """Per day index from ``first``: UTC offset, local midnight, date text, opening hours."""
        self.first_day = first.toordinal() - _EPOCH_ORDINAL  # epoch day of day index 0
        years = range(first.year, (first + timedelta(days=days)).year + 1)
        closed = set(
            holidays.country_holidays(profile.country, subdiv=profile.subdivision, years=years)
        )
        summer = {y: (_last_sunday(y, 3), _last_sunday(y, 10)) for y in years}
        self.offset: list[int] = []
        self.base: list[int] = []  # epoch of local midnight
        self.date_text: list[str] = []  # "YYYY-MM-DDT"
        self.open: list[int] = []
        self.close: list[int] = []  # 0 on a day that is not a working day
        self.working: list[int] = []  # day indexes of working days, in order
        for i in range(days + 1):
            day = first + timedelta(days=i)
            begin, end = summer[day.year]
            offset = profile.std_offset + (3600 if begin <= day < end else 0)
            self.offset.append(offset)
            self.base.append((self.first_day + i) * _DAY - offset)
            self.date_text.append(day.isoformat() + "T")
            hours = profile.hours[day.weekday()]
            if hours is None or day in closed:
                hours = (0, 0)
            else:
                self.working.append(i)
            self.open.append(hours[0])
            self.close.append(hours[1])
        # per working day: the instant it opens and its seconds of opening hours
        self.work_start = [self.base[i] + self.open[i] * 60 for i in self.working]
        self.work_length = [(self.close[i] - self.open[i]) * 60 for i in self.working]
        # per day index: position in ``working`` of the first working day at or after it
        self.next_working = [0] * (days + 1)
        position = len(self.working)
        for i in range(days, -1, -1):
            if self.close[i]:
                position -= 1
            self.next_working[i] = position

    # ------------------------------------------------------------------ small choices
    def _pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.r() * len(options))]

    def _between(self, low: int, high: int) -> int:
        """A whole number in ``[low, high]``."""
        return low + int(self.r() * (high - low + 1))

    def _person(self) -> str:
        return self.people[int(self.r() * len(self.people))]

    def _user_id(self) -> str:
        return _salesforce_id(f"005{self.profile.pod}0000{_base62(int(self.r() * 62**6), 6)}")

    def _case_head(self) -> None:
        """Recompute the id head and its four possible check suffixes for ``case_high``."""
        head = f"500{self.profile.pod}0000{_base62(self.case_high, 4)}"
        self.case_head = head
        self.case_suffixes = tuple(
            _salesforce_id(head + _PAIRS[low])[15:] for low in (0, 10 * 62, 10, 10 * 62 + 10)
        )  # by _PAIR_UPPER: bit 0 the first of the two digits is upper case, bit 1 the second

    def _case_id(self) -> str:
        """The next case id: unique and increasing, like Salesforce's ``500...`` ids."""
        low = self.case_low + 1 + int(self.r() * 7)
        if low >= 3844:
            self.case_high += 1
            low -= 3844
            self._case_head()
        self.case_low = low
        return self.case_head + _PAIRS[low] + self.case_suffixes[_PAIR_UPPER[low]]

    def _attributes(self, channel: str, complainant_type: str) -> dict[str, object]:
        """What every complaint carries: channel, complainant, description and owner."""
        r, people, descriptions, staff = self.r, self.people, self.descriptions, self.staff_ids
        return {
            "channel": channel,
            "complainant_type": complainant_type,
            "complainant_name": people[int(r() * len(people))],
            "description": descriptions[int(r() * len(descriptions))],
            "owner": staff[int(r() * len(staff))],
        }

    # ------------------------------------------------------------------ time
    def _received(self, index: int, count: int) -> tuple[int, int, int, str]:
        """``(instant, day index, day0, channel)`` of the ``index``-th of ``count`` complaints.

        ``day0`` is the position in ``working`` of the first working day whose hours are
        not over at the instant (semantics section 3).
        """
        r = self.r
        cum = self.received_cum
        day = 1 + min(bisect_right(cum, (index + r()) / count * cum[-1]), len(cum) - 1)
        channel = self.channel_by_percent[int(r() * 100)]
        close = self.close[day]
        if not close:  # weekend or holiday: only what arrives on its own
            if channel not in self.remote:
                channel = self.remote[int(r() * len(self.remote))]
            instant = self.base[day] + 28800 + int(r() * 50400)  # 08:00-22:00
            return instant, day, self.next_working[day], channel
        if channel in self.remote and r() < 0.18:  # before opening or in the evening
            if r() < 0.3:
                instant = self.base[day] + 25200 + int(r() * 3600)  # 07:00-08:00
                return instant, day, self.next_working[day], channel
            instant = self.base[day] + close * 60 + int(r() * (1380 - close) * 60)  # to 23:00
            return instant, day, self.next_working[day + 1], channel
        opening = self.open[day]
        instant = self.base[day] + opening * 60 + int(r() * (close - opening) * 60)
        return instant, day, self.next_working[day], channel

    def _after(self, previous: int, k: int) -> int:
        """An instant in the opening hours of working day ``k``, strictly after ``previous``:
        when ``previous`` is later, a few minutes after it, or early on the next working
        day if that would be after closing time."""
        r = self.r
        instant = self.work_start[k] + int(r() * self.work_length[k])
        if instant > previous:
            return instant
        instant = previous + 180 + int(r() * 5400)
        day = instant // _DAY - self.first_day  # office hours lie inside their UTC date
        if self.close[day] and instant < self.base[day] + self.close[day] * 60:
            return instant
        k = self.next_working[day + 1]
        return self.work_start[k] + int(r() * min(self.work_length[k], 7200))

    def _working_after_days(self, day: int, days: int) -> int:
        """Position in ``working`` of the first working day ``days`` calendar days after."""
        return self.next_working[day + days]

    def _day_of(self, instant: int) -> int:
        """The day index of ``instant`` (its UTC date, close enough for office hours)."""
        return instant // _DAY - self.first_day

    def _utc(self, instant: int) -> str:
        day, second = divmod(instant, _DAY)
        return f"{self.date_text[day - self.first_day]}{self.clock_text[second]}Z"

    def _local(self, instant: int) -> str:
        offset = self.offset[instant // _DAY - self.first_day]
        day, second = divmod(instant + offset, _DAY)
        suffix = "+00:00" if offset == 0 else "+01:00" if offset == 3600 else "+02:00"
        return f"{self.date_text[day - self.first_day]}{self.clock_text[second]}{suffix}"

    def _local_date(self, instant: int) -> str:
        """The local ``YYYY-MM-DD`` of ``instant``."""
        offset = self.offset[instant // _DAY - self.first_day]
        return self.date_text[(instant + offset) // _DAY - self.first_day][:10]

    def _finish(
        self, events: dict[str, int | list[int]], attributes: dict[str, object]
    ) -> SampleComplaint:
        """The canonical JSON shape with a new id; most sources write ``Z``, some offsets."""
        texts: dict[str, str | list[str]] = {}
        if self.r() < 0.85:
            date_text, clock_text, first_day = self.date_text, self.clock_text, self.first_day
            for name, value in events.items():
                if isinstance(value, int):
                    day, second = divmod(value, _DAY)
                    texts[name] = f"{date_text[day - first_day]}{clock_text[second]}Z"
                else:
                    texts[name] = [self._utc(t) for t in value]
        else:
            local = self._local
            for name, value in events.items():
                texts[name] = local(value) if isinstance(value, int) else [local(t) for t in value]
        return {"id": self._case_id(), "events": texts, "attributes": attributes}

    def _closed(self, events: dict[str, int | list[int]], decided: int, k: int, p: float) -> None:
        """With probability ``p`` the case is closed 0-3 working days after ``decided``."""
        if self.r() < p:
            events["closed"] = self._after(decided, k + int(self.r() * 4))  # 0-3 days

    # ------------------------------------------------------------------ the charters
    def aston(self, index: int, count: int) -> SampleComplaint:
        """Level 1-4 escalations; email replies in two working days; phone call-backs."""
        r, between, after = self.r, self._between, self._after
        received, _, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "worker" if r() < 0.65 else "client")
        attributes["level"] = 1
        last, k = received, k0
        if channel == "phone" and r() < 0.35:  # staff unavailable: the caller asks for a call back
            requested = received + 60 * between(1, 20)
            events["callback_requested"] = requested
            u = r()
            if u < 0.88:
                events["callback"] = after(requested, k0 + between(0, 1))
            elif u < 0.96:
                events["callback"] = after(requested, k0 + between(2, 4))
        # a first reply (acknowledgement or feedback): 0-2 working days, some 3-5;
        # none if the decision or escalation comes first (it answers the customer)
        reply = -1
        if r() < (0.92 if channel == "email" else 0.4):
            reply = k0 + (int(r() * 3) if r() < 0.88 else between(3, 5))
        u = r()
        if u < 0.05:  # nobody has picked it up yet (apart from the first reply)
            k = k0
        elif u < 0.62:  # resolved at level 1: 0-1 working days, some 2-4
            k = k0 + (int(r() * 2) if r() < 0.85 else between(2, 4))
        else:  # escalated to level 2: 0-1 working days, some 2-3
            k = k0 + (int(r() * 2) if r() < 0.9 else between(2, 3))
        if reply >= 0 and (u < 0.05 or reply <= k):
            last = after(last, reply)
            events["acknowledged" if r() < 0.85 else "feedback"] = last
        if u < 0.05:
            return self._finish(events, attributes)
        if u < 0.62:
            last = events["decision"] = after(last, k)
            self._closed(events, last, k, 0.9)
            return self._finish(events, attributes)
        return self._aston_escalated(events, attributes, last, k)

    def _aston_escalated(
        self,
        events: dict[str, int | list[int]],
        attributes: dict[str, object],
        last: int,
        k: int,
    ) -> SampleComplaint:
        """Escalated on working day ``k`` to level 2 (a customer services manager), then
        maybe level 3 (a director) and level 4 (mediation)."""
        r, between, after = self.r, self._between, self._after
        attributes["manager"] = self.managers[int(r() * len(self.managers))]
        attributes["level"] = 2
        last = events["escalated_l2"] = after(last, k)
        u = r()
        if u < 0.05:
            return self._finish(events, attributes)
        k += between(0, 1) if u < 0.9 else between(2, 4)
        last = events["manager_contact"] = after(last, k)
        u = r()
        if u < 0.04:
            return self._finish(events, attributes)
        if u < 0.88:  # decided in 1-10 working days, most before the 5-day warning; some late
            k += between(1, 5) if u < 0.5 else between(6, 10) if u < 0.78 else between(11, 16)
            last = events["decision"] = after(last, k)
            self._closed(events, last, k, 0.9)
            return self._finish(events, attributes)
        # level 3: a director
        attributes["level"] = 3
        k += between(2, 9)
        last = events["escalated_l3"] = after(last, k)
        k += between(0, 2)
        last = events["director_contact"] = after(last, k)
        u = r()
        if u < 0.05:
            return self._finish(events, attributes)
        if u < 0.88:  # decided in 5-30 working days; some late
            k += between(5, 30) if u < 0.78 else between(31, 40)
            last = events["decision"] = after(last, k)
            self._closed(events, last, k, 0.9)
            return self._finish(events, attributes)
        # level 4: an agreed mediation service, at the complainant's expense
        attributes["level"] = 4
        k += between(10, 30)
        last = events["escalated_l4"] = after(last, k)
        k += between(0, 3)
        last = events["mediation_requested"] = after(last, k)
        if r() < 0.8:
            k += between(15, 35)
            last = events["mediation_decided"] = after(last, k)
            k += between(1, 3)
            last = events["decision"] = after(last, k)
            self._closed(events, last, k, 0.9)
        return self._finish(events, attributes)

    def the_square_mile(self, index: int, count: int) -> SampleComplaint:
        """Decision in two weeks, or an update with an expected date and one every two weeks."""
        r, between, after = self.r, self._between, self._after
        received, day, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "client" if r() < 0.9 else "worker")
        last = received
        u = r()
        if u < 0.88:
            last = events["acknowledged"] = after(last, k0 + between(0, 1))
        elif u < 0.95:
            last = events["acknowledged"] = after(last, k0 + between(2, 4))
        u = r()
        if u < 0.05:  # stalled
            return self._finish(events, attributes)
        if u < 0.72:  # decided within two weeks
            decided = after(last, self._working_after_days(day, between(1, 12)))
        elif u < 0.78:  # decided late, nobody told the customer
            decided = after(last, self._working_after_days(day, between(15, 24)))
        else:  # takes longer: an update with an expected date, then one every two weeks
            update_day = between(7, 13) if r() < 0.85 else between(15, 19)
            last = after(last, self._working_after_days(day, update_day))
            updates = [last]
            events["customer_update"] = updates
            expected = last + _DAY * between(14, 35)
            attributes["expected_decision"] = self._local_date(expected)
            decide_at = (
                expected - _DAY * between(0, 6) if r() < 0.8 else expected + _DAY * between(1, 7)
            )
            stalled = r() < 0.1
            while True:
                gap = between(11, 14) if r() < 0.8 else between(15, 20)
                nxt = last + gap * _DAY
                if nxt >= decide_at:
                    break
                last = after(last, self.next_working[self._day_of(nxt)])
                updates.append(last)
            if stalled:
                return self._finish(events, attributes)
            decided = after(last, self.next_working[self._day_of(decide_at)])
        events["decision"] = decided
        decided_k = self.next_working[self._day_of(decided)]
        if r() < 0.06:  # the customer takes it to the independent mediator
            requested = after(decided, decided_k + between(2, 12))
            events["mediation_requested"] = requested
            u = r()
            if u < 0.95:
                late = u >= 0.85
                mediated = after(requested, self._working_after_days(
                    self._day_of(requested), between(29, 40) if late else between(7, 26)
                ))  # fmt: skip
                events["mediation_decided"] = mediated
                self._closed(events, mediated, self.next_working[self._day_of(mediated)], 0.9)
            return self._finish(events, attributes)
        self._closed(events, decided, decided_k, 0.85)
        return self._finish(events, attributes)

    def studijob(self, index: int, count: int) -> SampleComplaint:
        """Registration fields (sometimes incomplete), feedback within a week, root cause."""
        r, between, after = self.r, self._between, self._after
        received, day, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "worker" if r() < 0.65 else "client")
        attributes["registered_by"] = self._pick(self.staff_names)
        attributes["involved"] = f"{self._person()} ({self._pick(_STUDIJOB_BRANCHES)})"
        if r() < 0.2:  # registered in a hurry: one or two fields left empty
            for _ in range(1 if r() < 0.7 else 2):
                name = self._pick(
                    ("registered_by", "complainant_type", "complainant_name", "description",
                     "involved")
                )  # fmt: skip
                if r() < 0.6:
                    attributes.pop(name, None)
                else:
                    attributes[name] = self._pick(_BLANKS)
        last = received
        u = r()
        if u < 0.75:
            last = events["feedback"] = after(last, self._working_after_days(day, between(0, 4)))
        elif u < 0.85:
            last = events["feedback"] = after(last, self._working_after_days(day, between(5, 6)))
        elif u < 0.95:
            last = events["feedback"] = after(last, self._working_after_days(day, between(8, 14)))
        else:
            return self._finish(events, attributes)
        k = max(k0, self.next_working[self._day_of(last)])
        closed = False
        if r() < 0.9:
            k += between(0, 8)
            last = events["decision"] = after(last, k)
            if r() < 0.85:
                k += between(0, 3)
                events["closed"] = after(last, k)
                closed = True
        u = r()
        if (closed and u < 0.7) or (not closed and u < 0.15):
            attributes["root_cause"] = self._pick(self.root_causes)
            attributes["solution"] = self._pick(self.solutions)
        elif closed and u < 0.85:
            attributes["root_cause"] = self._pick(self.root_causes)
        return self._finish(events, attributes)

    def kilkenny(self, index: int, count: int) -> SampleComplaint:
        """Acknowledged in five working days, full response in 28 days, promised call-backs."""
        r, between, after = self.r, self._between, self._after
        received, day, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "citizen")
        u = r()
        if u < 0.8:
            attributes["language"] = "en"
        elif u < 0.88:
            attributes["language"] = "ga"
            if r() < 0.6:
                attributes["description"] = self._pick(_IRISH_DESCRIPTIONS)
        if channel in ("phone", "in_person") and r() < 0.35:
            requested = received + 60 * between(1, 15)
            events["callback_requested"] = requested
            promised_day = self.working[min(k0 + between(0, 2), len(self.working) - 1)]
            promised_minute = (self.open[promised_day] // 30 + between(1, 14)) * 30
            promised = self.base[promised_day] + promised_minute * 60
            if promised <= requested:
                promised = requested + 7200 - requested % 1800
            if r() < 0.95:
                attributes["callback_promised"] = (
                    self._utc(promised) if r() < 0.7 else self._local(promised)
                )
            u = r()
            if u < 0.8:
                events["callback"] = max(
                    requested + 60, promised - 60 * between(1, 30) + int(r() * 60)
                )
            elif u < 0.92:  # late: half an hour or more, that day or the next working day
                next_day = self.next_working[self._day_of(promised)] + int(r() * 2)
                events["callback"] = after(promised + 1800, next_day)
        last = received
        u = r()
        if u < 0.9:
            k = k0 + (between(0, 2) if r() < 0.8 else between(3, 5))
            last = events["acknowledged"] = after(last, k)
        elif u < 0.97:
            last = events["acknowledged"] = after(last, k0 + between(6, 9))
        u = r()
        if u < 0.65:
            answer = between(2, 19)
        elif u < 0.8:
            answer = between(20, 27)
        else:
            answer = between(29, 55)
            if r() < 0.6:  # the customer was told it would take longer
                last = after(last, self._working_after_days(day, between(14, 27)))
                events["customer_update"] = [last]
            if u >= 0.93:  # still open
                return self._finish(events, attributes)
        decided = after(last, self._working_after_days(day, answer))
        events["decision"] = decided
        self._closed(events, decided, self.next_working[self._day_of(decided)], 0.85)
        return self._finish(events, attributes)

    # ------------------------------------------------------------------ regulated charters
    def fca_disp(self, index: int, count: int) -> SampleComplaint:
        """A UK bank: many complaints settled within three business days (summary
        resolution), the rest answered within eight weeks, some with a holding response."""
        r, between, after = self.r, self._between, self._after
        received, _, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "client")
        last = received
        u = r()
        if u < 0.45:  # settled quickly: acknowledged and resolved by the third business day
            k = k0 + (int(r() * 4) if r() < 0.92 else between(4, 6))
            last = events["acknowledged"] = after(last, k0 + int(r() * 2))
            last = events["decision"] = after(last, max(k, self.next_working[self._day_of(last)]))
            self._closed(events, last, self.next_working[self._day_of(last)], 0.9)
            return self._finish(events, attributes)
        u = r()
        if u < 0.88:
            last = events["acknowledged"] = after(last, k0 + int(r() * 3))
        elif u < 0.96:
            last = events["acknowledged"] = after(last, k0 + between(5, 9))  # late
        u = r()
        if u < 0.78:  # final response within eight weeks (40 business days), most in 2-6
            decided = after(last, k0 + (between(6, 30) if r() < 0.8 else between(31, 38)))
        elif u < 0.9:  # takes longer: a holding response by week 8, mostly in time
            late_holding = r() < 0.15
            k = k0 + (between(41, 44) if late_holding else between(33, 39))
            last = events["holding_response"] = after(last, k)
            if r() < 0.3:  # still open
                return self._finish(events, attributes)
            decided = after(last, k + between(5, 25))
        elif u < 0.96:  # late, with no holding response
            decided = after(last, k0 + between(42, 55))
        else:  # still open, nothing sent
            return self._finish(events, attributes)
        events["decision"] = decided
        self._closed(events, decided, self.next_working[self._day_of(decided)], 0.9)
        return self._finish(events, attributes)

    def housing_ombudsman(self, index: int, count: int) -> SampleComplaint:
        """A social landlord: stage 1 acknowledged and answered (sometimes after a notified
        extension), a fifth escalated to stage 2 with its own acknowledgement and extension."""
        r, between, after = self.r, self._between, self._after
        received, _, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "citizen")
        attributes["level"] = 1
        u = r()
        if u < 0.85:
            k = k0 + int(r() * 5)
        elif u < 0.95:
            k = k0 + between(6, 9)  # acknowledged late
        else:
            return self._finish(events, attributes)  # not yet logged
        last = events["acknowledged"] = after(received, k)
        u = r()
        if u < 0.68:  # stage 1 response within 10 working days
            k += between(1, 9)
        elif u < 0.86:  # extended with reasons, by up to 10 more working days
            notice = k + (between(5, 10) if r() < 0.9 else between(11, 12))
            last = events["extended"] = after(last, notice)
            k = notice + (between(2, 9) if r() < 0.85 else between(11, 14))
        elif u < 0.96:  # late, no extension
            k += between(11, 16)
        else:
            return self._finish(events, attributes)  # stage 1 still open
        last = events["feedback"] = after(last, k)
        if r() >= 0.2:  # the resident accepts the stage 1 response
            self._closed(events, last, k + between(5, 15), 0.9)
            return self._finish(events, attributes)
        attributes["level"] = 2
        attributes["manager"] = self.managers[int(r() * len(self.managers))]
        k += between(2, 15)
        last = events["escalated_l2"] = after(last, k)
        u = r()
        if u < 0.88:
            k += int(r() * 5)
        elif u < 0.96:
            k += between(6, 8)
        else:
            return self._finish(events, attributes)
        last = events["escalation_acknowledged"] = after(last, k)
        u = r()
        if u < 0.65:  # stage 2 final response within 20 working days
            k += between(4, 19)
        elif u < 0.85:  # extended with reasons, by up to 20 more working days
            notice = k + (between(12, 20) if r() < 0.9 else between(21, 23))
            last = events["escalation_extended"] = after(last, notice)
            k = notice + (between(3, 19) if r() < 0.85 else between(21, 26))
        elif u < 0.95:
            k += between(21, 30)  # late, no extension
        else:
            return self._finish(events, attributes)
        last = events["decision"] = after(last, k)
        self._closed(events, last, k, 0.9)
        return self._finish(events, attributes)

    def cbi_cpc(self, index: int, count: int) -> SampleComplaint:
        """An Irish firm: acknowledged in five business days, written updates every 20,
        resolved within 40 or a holding response; the outcome letter after the
        investigation. Some customers deal in Irish."""
        r, between, after = self.r, self._between, self._after
        received, _, k0, channel = self._received(index, count)
        events: dict[str, int | list[int]] = {"received": received}
        attributes = self._attributes(channel, "client")
        u = r()
        if u < 0.85:
            attributes["language"] = "en"
        elif u < 0.95:
            attributes["language"] = "ga"
            if r() < 0.6:
                attributes["description"] = self._pick(_IRISH_FINANCE_DESCRIPTIONS)
        last = received
        u = r()
        if u < 0.88:
            last = events["acknowledged"] = after(last, k0 + int(r() * 4))
        elif u < 0.96:
            last = events["acknowledged"] = after(last, k0 + between(6, 9))  # late
        u = r()
        if u < 0.45:  # resolved within 20 business days: no update needed
            completed = k0 + between(1, 14)
        elif u < 0.85:  # updates every 15-20 business days, resolved within 40
            completed = k0 + between(21, 38)
        elif u < 0.96:  # beyond 40 business days: a holding response, mostly in time
            completed = k0 + between(45, 70)
        else:
            completed = -1  # stalled
        horizon = completed if completed >= 0 else k0 + between(20, 45)
        updates: list[int] = []
        k = k0
        while True:
            k += between(15, 20) if r() < 0.88 else between(21, 25)
            if k >= horizon:
                break
            last = after(last, k)
            updates.append(last)
        if updates:
            events["customer_update"] = updates
        if completed > k0 + 40 or (completed < 0 and horizon > k0 + 38):
            holding = k0 + (between(36, 40) if r() < 0.85 else between(41, 44))
            last = events["holding_response"] = after(last, holding)
        if completed < 0:
            return self._finish(events, attributes)
        completed = max(completed, self.next_working[self._day_of(last)])
        last = events["investigation_completed"] = after(last, completed)
        if r() < 0.04:  # outcome letter not sent yet
            return self._finish(events, attributes)
        k = completed + (int(r() * 5) if r() < 0.9 else between(6, 9))
        last = events["decision"] = after(last, k)
        self._closed(events, last, k, 0.9)
        return self._finish(events, attributes)


_BUILDERS: dict[str, Callable[[_Generator, int, int], SampleComplaint]] = {
    "aston": _Generator.aston,
    "the-square-mile": _Generator.the_square_mile,
    "studijob": _Generator.studijob,
    "kilkenny": _Generator.kilkenny,
    "fca-disp": _Generator.fca_disp,
    "housing-ombudsman": _Generator.housing_ombudsman,
    "cbi-cpc": _Generator.cbi_cpc,
}


def generate_complaints(
    charter_name: str, count: int, *, seed: int, start: datetime, span_days: int
) -> Iterator[SampleComplaint]:
    """Yield ``count`` canonical complaints that look real for the bundled charter.

    Received instants fall on the ``span_days`` calendar days from ``start``'s UTC date
    (its time of day is ignored), in roughly ascending order; later events may follow
    the span. ``start`` must be timezone-aware. The same arguments always yield the same
    complaints. Raises ``ValueError`` for an unknown charter or a bad count or span.
    """
    profile = _PROFILES.get(charter_name)
    if profile is None:
        raise ValueError(f"unknown charter '{charter_name}' (known: {', '.join(CHARTERS)})")
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if span_days < 1:
        raise ValueError(f"span_days must be >= 1, not {span_days}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware (e.g. 2026-03-01T00:00:00+00:00)")
    generator = _Generator(
        charter_name, profile, random.Random(seed), start.astimezone(UTC).date(), span_days
    )
    return _generate(generator, _BUILDERS[charter_name], count)


def _generate(
    generator: _Generator, build: Callable[[_Generator, int, int], SampleComplaint], count: int
) -> Iterator[SampleComplaint]:
    for index in range(count):
        yield build(generator, index, count)
