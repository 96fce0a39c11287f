"""The ports: what the services need from the outside world, as ``typing.Protocol``s.

Every port has a local implementation that passes the same contract suite as the real
ones (``tests/contract/``). Methods document what they raise; anything else escaping an
adapter is a bug. Instants at the ports are aware UTC ``datetime``s; CRM field values
are JSON-compatible (datetimes as the CRM's ISO text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from crmsync.domain.archive_chain import Finding
from crmsync.domain.archive_entry import ArchiveEntry, ChainHead, EntryHeader, StoredEntry

if TYPE_CHECKING:  # a CRM's settings group is a pydantic model; the ports load no pydantic
    from pydantic import BaseModel

# --------------------------------------------------------------------------- CRM


@dataclass(frozen=True, slots=True)
class Record:
    """One CRM record: its object name, ``Id`` and field values as read."""

    object: str
    id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """``field op value`` on a record; ``op`` is ``=``, ``!=`` or ``in`` (value a tuple)."""

    field: str
    op: Literal["=", "!=", "in"]
    value: Any

    def matches(self, fields: Mapping[str, Any]) -> bool:
        """Evaluate the filter on field values (for adapters that filter in Python)."""
        actual = fields.get(self.field)
        if self.op == "=":
            return bool(actual == self.value)
        if self.op == "!=":
            return bool(actual != self.value)
        return actual in tuple(self.value)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of writing one record: never all-or-nothing.

    ``ref`` is what the caller asked for (the record id for updates, the external id
    value for upserts); ``id`` is the CRM id when known; ``created`` is True when an
    upsert inserted. On failure ``error_code``/``message``/``fields`` say why and
    ``transient`` says whether the same write may succeed when retried.
    """

    ref: str
    ok: bool
    id: str | None = None
    created: bool = False
    error_code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()
    transient: bool = False


@dataclass(frozen=True, slots=True)
class PageWrites:
    """One write request of a sync page, handed to the CRM in one call: follow-ups to create
    unless a record holds their key (``creates`` on ``follow_up_object``, keyed by
    ``key_field``), follow-ups to complete (``completes``: their ids, to be set to
    ``completion``) and field updates of records (``updates`` on ``record_object``:
    ``(id, {field: value})`` each)."""

    follow_up_object: str
    key_field: str
    record_object: str
    creates: Sequence[Mapping[str, Any]] = ()
    completes: Sequence[str] = ()
    completion: Mapping[str, Any] = field(default_factory=dict)
    updates: Sequence[tuple[str, Mapping[str, Any]]] = ()


@dataclass(frozen=True, slots=True)
class PageResults:
    """What ``CrmPort.write_page`` did: one result per operation of each part of the
    ``PageWrites``, in that part's order."""

    creates: list[WriteResult]
    completes: list[WriteResult]
    updates: list[WriteResult]


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """What ``describe`` tells about one field."""

    name: str
    type: str  # id, string, textarea, picklist, datetime, date, double, boolean, reference
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    picklist_values: tuple[str, ...] | None = None  # active values of a picklist field


@dataclass
class CallCounter:
    """API calls made by an adapter, by kind (``query``, ``write``, ``describe``...)."""

    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


@runtime_checkable
class ApiBudget(Protocol):
    """Optional: a CRM adapter whose API counts calls against a daily limit offers it.

    ``api_usage`` is ``(used, limit)`` as last reported by the CRM, or None before the
    CRM said; an adapter without such a limit does not implement this port at all."""

    @property
    def api_usage(self) -> tuple[int, int] | None: ...


@runtime_checkable
class ValueFormats(Protocol):
    """Optional: a CRM adapter says how it writes an instant (whole seconds since 1970) as
    datetime text; what is written to a CRM whose adapter does not say is ISO-8601 UTC
    text (``2026-03-02T09:15:00Z``)."""

    def instant_text(self, instant: int) -> str: ...


class OnlineRemedies(Protocol):
    """What fixes a problem ``crmsync check --online`` finds in the CRM's schema: each CRM
    adapter says its own (a deploy, a set-up command, a privilege), so the check names no
    CRM. ``roles`` says what the mapping uses the field as."""

    def missing(self, field: str, roles: str) -> str:
        """The problem and its fix for a field the CRM does not show."""
        ...

    def not_writable(self, field: str) -> str:
        """The fix for a field the worker must create or update but may not."""
        ...

    def not_a_choice(self, field: str) -> str:
        """The fix for a value the worker writes or filters on that the field's choices lack."""
        ...


@runtime_checkable
class ChoiceOptions(Protocol):
    """Optional: a CRM adapter whose ``describe`` leaves out its choice fields' values (they
    cost a request of their own) offers them here, for ``crmsync check --online``."""

    def choice_values(self, object: str) -> dict[str, tuple[str, ...]]:
        """Each choice field of the object -> its active values, as text. Raises
        ``CrmError`` when the CRM cannot say."""
        ...


Access = Literal["read", "create", "update", "link", "linked_to", "assign"]
"""What the worker does to an object's records: ``read`` every one, ``create`` and ``update``
them, ``link`` one to a parent record (a follow-up to its complaint), have others linked to
one (``linked_to``), ``assign`` one to another owner (a follow-up to its owner)."""


@runtime_checkable
class AccessCheck(Protocol):
    """Optional: a CRM adapter that can tell what its user may do beyond what ``describe``
    shows (the security role a CRM grants its API user)."""

    def access_problems(self, needs: Mapping[str, frozenset[Access]]) -> list[tuple[str, str]]:
        """``(object, problem and its fix)`` for each access in ``needs`` (object -> what
        the worker does to its records) the CRM's user lacks; nothing when it has all.
        Raises ``CrmError`` when the CRM cannot say."""
        ...


class CrmPort(Protocol):
    """A CRM holding records as id-keyed field maps, windowed by a modification stamp.

    Raises ``CrmTransientError`` (worth retrying), ``CrmAuthError``, ``CrmLimitError``
    or ``CrmError`` for failures of a whole request. Failures of single records in a
    write come back as ``WriteResult(ok=False)``, never as exceptions.
    """

    calls: CallCounter

    def server_time(self) -> datetime:
        """The CRM's own current time (the upper bound of an incremental pull)."""
        ...

    def changed_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        since: datetime | None,
        until: datetime,
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Records with ``since <= modstamp < until`` (no lower bound when ``since`` is
        None) matching every filter, ordered by ``(modstamp, Id)``, where the modstamp is
        the adapter's modification-stamp field (the mapping's ``modstamp``). ``fields`` are
        the fields to read; ``Id`` and the modstamp are always included. An object whose
        rows never change and that has no modstamp (a field history) is windowed and
        ordered by the adapter's stand-in for it (the row's creation instant)."""
        ...

    def related_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        parent_field: str,
        parent_ids: Sequence[str],
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Records whose ``parent_field`` is one of ``parent_ids`` (any number: the adapter
        batches), matching every filter, in no promised order."""
        ...

    def deleted_records(
        self, object: str, *, since: datetime | None, until: datetime
    ) -> Iterator[str]:
        """Ids of the object's records deleted with ``since <= modstamp < until`` (the
        deletion's stamp; no lower bound when ``since`` is None), as far as the CRM still
        tells (a recycle bin or a deletion log), in no promised order. A deleted
        record is left out of every other read, and writing it fails ``NOT_FOUND``."""
        ...

    def records_by_id(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[Record]:
        """The records with these ids that exist (missing ids are left out)."""
        ...

    def update_records(
        self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        """Set fields on existing records, ``(id, {field: value})`` each; one result per
        update in order (``ref`` = the id). A missing record is ``ok=False``,
        ``error_code='NOT_FOUND'``."""
        ...

    def upsert_records(
        self, object: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Insert or update by external id (each record carries ``external_id_field``); one
        result per record in order (``ref`` = the external id value, ``created`` tells)."""
        ...

    def create_if_absent(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Create each record whose ``key_field`` value (a unique external id) no record holds
        yet; leave a record that already holds it exactly as it is (staff may have worked
        it). One result per record in order: ``ref`` the key, ``id`` the CRM id (new or
        existing), ``created`` True only for a record created now."""
        ...

    def complete_tasks(
        self, object: str, ids: Sequence[str], completion: Mapping[str, Any]
    ) -> list[WriteResult]:
        """Set ``completion`` (the mapping's status field and its completed value) on the
        records that do not hold it yet; records already complete succeed without a write."""
        ...

    def write_page(self, writes: PageWrites) -> PageResults:
        """Every write of ``writes`` in one call, each part by the rules of its own method:
        ``creates`` as ``create_if_absent`` (a held key left exactly as it is, ``created``
        False), ``completes`` as ``complete_tasks`` (already complete: success without a
        write) and ``updates`` as ``update_records`` (a missing record ``NOT_FOUND``). An
        adapter whose API carries several kinds of write in one request sends them together,
        so the call costs the requests its operations fill; another may make the three calls
        in turn. Raises as those methods do; after a raise any of its operations may have been
        made (the caller learns which by reading the records again)."""
        ...

    def write_call_fits(self, creates: int, completes: int, updates: int) -> bool:
        """Whether one ``write_page`` of that many creates, completions and updates fits the
        CRM's one request (or its one billed call): the caller fills each call in order while
        it fits. Fewer operations of any kind fit too; one operation alone always fits. A
        CRM without such a limit answers True."""
        ...

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields by name; ``CrmError`` if the object does not exist."""
        ...

    def close(self) -> None:
        """Let go of what the adapter holds (connections, an HTTP session); raises nothing.
        The adapter is not used afterwards. Called by whoever built it: the composition
        root's ``Runtime.close`` or the command that opened it."""
        ...


@dataclass(frozen=True, slots=True)
class CrmWiring:
    """What one CRM adapter offers the composition root, so that choosing a CRM is a
    lookup, never a branch: the ``CRMSYNC_CRM`` value that names it, the prefix that names
    each setting of its settings group (empty when it has none), how it is built from the
    settings (every setting by name: its group and the shared ones such as ``data_dir``;
    ``ConfigError`` naming a missing one) on a clock, and what fixes a problem
    ``crmsync check --online`` finds in it.

    ``settings`` is its settings group: a pydantic model of fields only, each named with
    the prefix, which the composition root adds to the shared settings (None: it has
    none). ``commands`` names the module whose ``COMMANDS`` (a ``typer.Typer``) holds its
    own commands (its org's set-up, its tools), run as ``crmsync NAME ...`` (None: it has
    none)."""

    name: str
    settings_prefix: str
    build: Callable[[Mapping[str, Any], Callable[[], datetime]], CrmPort]
    remedies: OnlineRemedies
    settings: type[BaseModel] | None = None
    commands: str | None = None


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class StoredComplaint:
    """An open complaint as the state store keeps it between cycles.

    ``canonical`` is the canonical complaint (JSON object, section 1 of the contract);
    ``flags`` the write-back values last confirmed on the CRM record; ``next_check`` the
    next instant (epoch seconds) at which a clock's state changes without any new data,
    or None; ``source_hash`` a hash of the CRM fields it was built from; ``closed_at`` the
    closing instant (epoch seconds) of a closed complaint, which retention counts from;
    ``clock_states`` each applicable clock's state (clock id -> state) at the complaint's
    last evaluation; ``evaluated_at`` the ``now`` of that evaluation (None: unknown, or
    marked for evaluation again at the next cycle whatever its ``now``).
    """

    profile: str
    id: str
    canonical: Mapping[str, Any]
    flags: Mapping[str, Any]
    next_check: int | None
    source_hash: str
    closed: bool = False
    closed_at: int | None = None
    clock_states: Mapping[str, str] = field(default_factory=dict)
    evaluated_at: int | None = None


@dataclass(frozen=True, slots=True)
class ProfileState:
    """What the state store keeps about a profile between cycles.

    ``follow_up_since`` is the default follow-up horizon, set once at the profile's first
    cycle (its ``now`` minus 7 days) and never moved; ``horizon`` the horizon in force at
    the last cycle (``CRMSYNC_FOLLOW_UP_SINCE`` when set, else ``follow_up_since``);
    ``charter_hash`` and ``mapping_hash`` the content hashes of the charter and mapping of
    the last cycle; ``updated_at`` that cycle's ``now`` (all instants epoch seconds).
    """

    profile: str
    follow_up_since: int
    horizon: int
    charter_hash: str
    mapping_hash: str
    updated_at: int


LedgerStatus = Literal["planned", "done", "failed", "completed"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A follow-up task the worker planned or wrote, by its idempotency key.

    ``status``: planned (about to be written), done (created or found on the CRM,
    ``crm_id`` known), failed (a permanent error, ``error`` says; tried again at each
    evaluation that still plans it), completed (closed on the CRM, or a failed one the
    complaint no longer needs). ``updated_at`` is the ``now`` of the cycle that last changed
    the entry: for planned and done entries, the cycle that planned the follow-up.
    """

    profile: str
    key: str
    complaint_id: str
    clock: str
    occurrence: int
    state: str
    status: LedgerStatus
    crm_id: str | None = None
    error: str | None = None
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What ``StateStore.prune`` forgot."""

    complaints: int = 0
    ledger_entries: int = 0
    runs: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One cycle's history row."""

    profile: str
    run_id: str
    started_at: int
    finished_at: int | None
    status: str  # running, ok, partial, failed
    summary: Mapping[str, Any]


class StateStore(Protocol):
    """The sync's durable state between cycles, namespaced by profile: watermarks, stored
    complaints, the profile's state, the follow-up ledger and the run history.

    Every method is atomic (after a crash either all of its effect is there or none) and
    raises ``StateStoreError`` (``crmsync.errors``), never anything else, when:

    - the store cannot be reached or a statement fails (the message names the store,
      never a password);
    - the store was closed, or ``migrate()`` has not created the schema yet;
    - a value cannot be stored (text with a NUL character, JSON that does not serialise,
      an integer beyond 64 bits, a naive datetime, an unknown ledger status): nothing of
      the call is written then, and the message names the item and field.

    A method below names only the errors it raises beyond these. The read models
    (``PopulationReader``) and the archive witness (``ArchiveWitness``) are separate
    ports; every state store adapter implements all three (``StateDatabase``).
    """

    def migrate(self) -> int:
        """Create the schema or upgrade it to the newest version, and return that version;
        idempotent, and safe when several processes migrate at once. ``StateStoreError``
        (changing nothing) if the database's schema is newer than this code knows."""
        ...

    def get_watermark(self, profile: str, name: str) -> datetime | None:
        """The watermark ``name`` of the profile as an aware UTC datetime (microseconds
        kept), or None if it was never set."""
        ...

    def set_watermark(self, profile: str, name: str, value: datetime) -> None:
        """Move a watermark to ``value`` (aware; the caller only moves it after the writes
        it covers succeeded)."""
        ...

    def put_complaints(self, items: Sequence[StoredComplaint]) -> None:
        """Insert or replace complaints by ``(profile, id)``; of a key repeated in
        ``items`` the last wins. ``StateStoreError`` for a ``closed_at`` on a complaint not
        closed or ``clock_states`` that are not text to text."""
        ...

    def get_complaints(self, profile: str, ids: Sequence[str]) -> dict[str, StoredComplaint]:
        """The stored complaints (open and closed) among ``ids``, by id; unknown ids are
        left out. Any number of ids (the store batches)."""
        ...

    def due_complaints(self, profile: str, until: int) -> list[StoredComplaint]:
        """Stored complaints whose ``next_check`` is ``<= until`` (None is never due),
        ordered by ``next_check`` then id."""
        ...

    def stale_complaints(self, profile: str, now: int) -> list[StoredComplaint]:
        """Stored complaints that must be evaluated again at ``now`` whatever their next
        check: last evaluated at an instant after ``now`` (a replayed earlier ``now``), or
        ``evaluated_at`` None (unknown, or marked by ``put_profile``); ordered by id."""
        ...

    def delete_complaints(self, profile: str, ids: Sequence[str]) -> None:
        """Forget these complaints; unknown ids are ignored."""
        ...

    def next_check(self, profile: str) -> int | None:
        """The earliest ``next_check`` of the profile's stored complaints (for the
        scheduler and the readiness probe), or None when none has one."""
        ...

    def get_profile(self, profile: str) -> ProfileState | None:
        """What the store keeps about the profile, or None before its first cycle."""
        ...

    def put_profile(self, state: ProfileState, *, reevaluate_open: bool = False) -> None:
        """Insert or replace the profile's state; with ``reevaluate_open`` every open (not
        closed) stored complaint of the profile is marked for evaluation at the next cycle
        (``evaluated_at`` None), in the same transaction."""
        ...

    def ledger_for_complaints(
        self, profile: str, complaint_ids: Sequence[str]
    ) -> list[LedgerEntry]:
        """Every ledger entry of these complaints (any number: the store batches), ordered
        by ``(complaint_id, clock, occurrence, key)``."""
        ...

    def ledger_put(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace entries by ``(profile, key)``; of a key repeated in
        ``entries`` the last wins."""
        ...

    def start_run(self, run: RunRecord) -> None:
        """Record a started run; a ``run_id`` the profile holds already is replaced in
        place (it keeps its place in the history)."""
        ...

    def finish_run(
        self, profile: str, run_id: str, finished_at: int, status: str, summary: Mapping[str, Any]
    ) -> None:
        """Close a started run with its status and summary (a JSON object).
        ``StateStoreError`` if the profile has no run ``run_id``."""
        ...

    def prune(
        self, profile: str, *, closed_before: int | None, runs_before: int | None
    ) -> PruneCounts:
        """Forget what the profile no longer needs, in one transaction.

        With ``closed_before``: closed complaints whose ``closed_at`` is before it, with
        their ledger entries, unless one of those entries is ``planned`` or ``done`` (a
        follow-up still to write or to complete keeps its complaint); and the ledger
        entries, except ``planned`` ones, of complaints the store no longer holds (deleted
        in the CRM and forgotten by a cycle). With
        ``runs_before``: runs that started before it (the profile's newest run always
        stays; a run that old and still "running" died with its process). ``None``
        forgets nothing of that kind.
        """
        ...

    def close(self) -> None:
        """Release the connection; idempotent. Every later call raises
        ``StateStoreError``."""
        ...


@dataclass(frozen=True, slots=True)
class Population:
    """The open (not closed) stored complaints of a profile, counted: by the ``status`` in
    their confirmed flags (when it is text), and by (clock id, state) of their last
    evaluation."""

    by_status: Mapping[str, int]
    by_clock: Mapping[tuple[str, str], int]


class PopulationReader(Protocol):
    """Read models over what the state store holds, for metrics, reports and the CLI's
    profile guard; the sync cycle never reads them. Each method reads one consistent
    snapshot and raises ``StateStoreError`` on the same grounds as a ``StateStore``
    method (unreachable, closed, not migrated)."""

    def population(self, profile: str) -> Population:
        """The profile's open complaints counted by status and by clock state (the
        worker's gauges); an unknown profile counts nothing."""
        ...

    def complaints_page(self, profile: str, after: str, limit: int) -> list[StoredComplaint]:
        """Up to ``limit`` stored complaints (open and closed) with ``id > after`` in id
        order (byte order): page through a profile with ``after`` = the last id seen."""
        ...

    def known_profiles(self) -> list[str]:
        """Every profile the store has seen (a profile state or a run), sorted."""
        ...

    def failed_follow_ups(self, profile: str) -> list[LedgerEntry]:
        """The profile's follow-ups the CRM refused for good (ledger status ``failed``)
        whose complaint the store holds, ordered by ``(complaint_id, key)`` (byte order):
        what ``crmsync status`` names until a cycle makes them."""
        ...


# --------------------------------------------------------------------------- archive


class ArchiveStore(Protocol):
    """The archive of closed complaints: append-only, one hash chain per profile.

    Entries (``crmsync.domain.archive_entry.ArchiveEntry``) are kept as given, forever:
    there is no way to change or delete one through this port. Contract:

    - ``append(entry)`` stores entry ``entry.header.seq`` of ``entry.header.profile`` only if
      it follows the head: ``seq == head.seq + 1`` and ``prev_hash == head.entry_hash``;
      otherwise (another writer appended first) it raises ``ChainConflictError`` and stores
      nothing; an entry whose (``complaint_id``, ``version``) the chain holds already
      raises ``DuplicateEntryError`` (a ``ChainConflictError``) and stores nothing. When it
      returns the entry is durable; after a crash during ``append`` the
      entry is either wholly there or not there at all, and the store repairs its own
      derived data (indexes, head pointer) on the next use.
    - ``head(profile)`` is the last entry's ``ChainHead`` (``seq`` 0 when empty).
    - ``get(ref)`` is the entry ``profile/seq`` exactly as appended; ``EntryNotFoundError``
      if there is none, ``ArchiveError`` if it cannot be read.
    - ``iterate(profile)`` walks every slot in chain order as ``StoredEntry`` values, a
      damaged slot included (``entry`` None, ``problem`` saying why), for verification.
    - ``search(profile, ...)`` gives the headers matching every criterion given, in chain
      order: ``complaint_id`` and ``version`` exactly, ``closed_from <= closed_at <
      closed_before`` (``YYYY-MM-DDTHH:MM:SSZ`` text), ``charter`` exactly. It never
      answers from an index that disagrees with the entries: it raises
      ``ArchiveIndexError`` (what it can detect without reading every entry; see each store).
    - ``index_problems(profile)`` holds every index record the store keeps (lines, index
      objects, columns) against its entry: changed, missing, extra, out of order.
    - ``reindex(profile)`` rebuilds the index from the entries and returns how many entries
      it indexed (``ArchiveError`` where a store cannot, saying why).

    Every method raises ``ArchiveError`` when the storage fails; no method returns a
    half-written entry.
    """

    def append(self, entry: ArchiveEntry) -> None: ...

    def head(self, profile: str) -> ChainHead: ...

    def get(self, ref: str) -> ArchiveEntry: ...

    def iterate(self, profile: str) -> Iterator[StoredEntry]: ...

    def search(
        self,
        profile: str,
        *,
        complaint_id: str | None = None,
        version: str | None = None,
        closed_from: str | None = None,
        closed_before: str | None = None,
        charter: str | None = None,
    ) -> list[EntryHeader]: ...

    def index_problems(self, profile: str) -> list[Finding]: ...

    def reindex(self, profile: str) -> int: ...

    def close(self) -> None: ...


class ArchiveCipher(Protocol):
    """Encryption at rest of archive entry bodies; keys are never stored, printed or logged.

    - ``key_id`` is the id of the key new entries are sealed with (None: the cipher only
      reads, with keys used before a rotation); ``key_ids`` the ids of every key it can
      open entries with. An id names a key without revealing it.
    - ``seal(header, body)`` is the entry of ``header`` with ``body`` encrypted (``sealed``
      set, ``body`` None), naming ``key_id`` as ``sealed["key_id"]`` and bound to the
      header's link fields: the sealed body under any other header fails to open. The
      header's hashes stay over the plaintext. Raises ``ConfigError`` when the cipher
      has no current key (only old ones).
    - ``open(entry)`` is the plaintext body of a sealed entry, opened with the key it
      names. Raises ``WrongArchiveKeyError`` (naming key ids, never a key) when none of
      the cipher's keys has that id, ``ArchiveError`` when the sealed body was altered,
      moved under another header, or sealed by another kind of cipher.
    """

    @property
    def key_id(self) -> str | None: ...

    @property
    def key_ids(self) -> list[str]: ...

    def seal(self, header: EntryHeader, body: Mapping[str, Any]) -> ArchiveEntry: ...

    def open(self, entry: ArchiveEntry) -> dict[str, Any]: ...


class ArchiveWitness(Protocol):
    """The archive's head recorded apart from the archive (in the state store), so that a
    chain cut at its end, which the chain alone cannot show, is still found. Raises
    ``StateStoreError`` on the same grounds as a ``StateStore`` method (unreachable,
    closed, not migrated, a value that cannot be stored)."""

    def get_witness(self, profile: str) -> ChainHead | None:
        """The archive head last recorded for the profile by ``put_witness``, or None."""
        ...

    def put_witness(self, head: ChainHead, recorded_at: int) -> None:
        """Record the archive's head as seen, only ever forward: a head behind the one
        recorded is ignored, the same head again changes nothing; the same ``seq`` with
        another hash raises ``StateStoreError`` (the archive was rewritten) and changes
        nothing. Writers at once are serialised."""
        ...


# --------------------------------------------------------------------------- wiring


class StateDatabase(StateStore, PopulationReader, ArchiveWitness, Protocol):
    """One state database serving all three state ports: what every state store adapter
    (memory, SQLite, PostgreSQL) implements and what the composition root opens. Code
    that uses it takes the narrowest of the three it needs."""


# --------------------------------------------------------------------------- the job queue


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What one job did, as the ``runs`` table keeps it."""

    records_read: int = 0
    flags_written: int = 0
    tasks_created: int = 0
    tasks_completed: int = 0


@dataclass(frozen=True, slots=True)
class RunRow:
    """One job a replica ran, as ``crmsync runs`` shows it (instants aware UTC)."""

    profile: str
    kind: str
    replica: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    records_read: int
    flags_written: int
    tasks_created: int
    tasks_completed: int
    error: str | None


class QueueTablesPort(Protocol):
    """The replicas' schedule and runs beside the shared job queue. Every method raises
    ``StateStoreError`` when the store fails."""

    def migrate(self) -> None: ...

    def close(self) -> None: ...

    def started(self, job_id: int, profile: str, kind: str, replica: str, at: datetime) -> None:
        """A job began on ``replica`` (status ``running``)."""
        ...

    def finished(
        self,
        job_id: int,
        at: datetime,
        status: str,
        counts: RunCounts,
        *,
        error: str | None = None,
        next_due: datetime | None = None,
    ) -> None:
        """A job ended."""
        ...

    def stalled(self, job_ids: Sequence[int], at: datetime) -> None:
        """Jobs whose replica stopped answering."""
        ...

    def runs(
        self,
        *,
        profile: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[RunRow]:
        """The recorded jobs, newest first."""
        ...

    def last_successes(self, profiles: Sequence[str]) -> dict[str, datetime]:
        """When each profile's last successful sync ended."""
        ...

    def queue_depth(self) -> dict[str, int]:
        """Jobs waiting, per profile."""
        ...

    def take_due(
        self, first: dict[tuple[str, str], datetime], now: datetime
    ) -> list[tuple[str, str, datetime]] | None:
        """Under the dispatch lock (None when another replica holds it): schedule the
        new ``(profile, kind)`` pairs at ``first``; the pairs due at ``now``."""
        ...

    def reschedule(self, nexts: dict[tuple[str, str], datetime]) -> None:
        """When each ``(profile, kind)`` is next due."""
        ...

    def end_dispatch(self) -> None:
        """Give back the dispatch lock ``take_due`` took (a no-op without it)."""
        ...

    def due_again(self, keys: Sequence[tuple[str, str]], at: datetime) -> None:
        """Each ``(profile, kind)`` due at ``at`` at the latest: its deferred job was handed
        back or dropped unrun, so the next dispatch by a replica serving the profile defers
        it afresh."""
        ...
