"""The composition root: settings -> adapters -> services -> the worker. Nothing else
wires objects, and only here (and in the CLI that calls it) are adapters imported.

It is also the one place that reads the URLs of the settings: which state store
(``state_store_target``) and archive store (``_archive_target``) a URL names, and so
which profile lock goes with the state.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import structlog

from crmsync.adapters.crm.local_wiring import (
    LOCAL_CRM_FILE,  # noqa: F401 - re-exported: where the local CRM's file is named
    local_crm_file,
)
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.domain.charter import Charter
from crmsync.errors import CharterFileError, ConfigError, CrmSyncError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.charter_mapping_check import check_charter_against_mapping
from crmsync.mapping.field_mapping import FieldMapping, load_mapping
from crmsync.mapping.yaml_source import load_yaml
from crmsync.ports import (
    ApiBudget,
    ArchiveCipher,
    ArchiveStore,
    CrmPort,
    CrmWiring,
    OnlineRemedies,
    PopulationReader,
    QueueTablesPort,
    StateDatabase,
)
from crmsync.redaction import redact_url
from crmsync.service.archiving import ArchivingService
from crmsync.service.sync_cycle import Hook, SyncCycle
from crmsync.settings import Settings, config_path, with_crm_settings

if TYPE_CHECKING:  # imported when built: requests, PyJWT, psycopg, APScheduler, prometheus
    from crmsync.adapters.profile_lock import ProfileLock
    from crmsync.worker.ops_http import Metrics, OpsServer, Readiness
    from crmsync.worker.profile_reading import ProfileReading
    from crmsync.worker.scheduling import ProfileChanges, Worker

log = structlog.get_logger("crmsync.worker")


def system_clock() -> datetime:
    """The wall clock: read here, in the composition root, and nowhere in the core."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything one profile needs to run cycles."""

    settings: Settings
    charter: Charter
    mapping: FieldMapping
    crm: CrmPort
    state: StateDatabase
    cycle: SyncCycle

    def close(self) -> None:
        self.state.close()
        self.crm.close()


def local_crm_path(settings: Settings) -> Path:
    """Where the embedded local CRM lives."""
    return local_crm_file(settings.data_dir)


# The CRM adapters, by their CRMSYNC_CRM name: each module's ``WIRING`` (``CrmWiring``)
# builds its adapter from the settings and names its remedies. A new CRM is one line here.
CRM_ADAPTERS: Mapping[str, str] = {
    "local": "crmsync.adapters.crm.local_wiring",
    "salesforce": "crmsync.adapters.crm.salesforce_wiring",
    "dynamics365": "crmsync.adapters.crm.dynamics365_wiring",
}


def crm_wiring(name: str) -> CrmWiring:
    """The wiring of the CRM adapter ``name`` (imported on use: only the chosen CRM's
    client libraries load)."""
    return _wiring(CRM_ADAPTERS[name])


def _wiring(module: str) -> CrmWiring:
    wiring: CrmWiring = importlib.import_module(module).WIRING
    return wiring


def settings_model() -> type[Settings]:
    """The settings crmsync reads: the shared ones and each registered CRM's settings
    group, ``crm`` choosing among the registered CRMs (one class per registry: settings
    read twice compare equal)."""
    return _settings_model(tuple(CRM_ADAPTERS.items()))


@cache
def _settings_model(registry: tuple[tuple[str, str], ...]) -> type[Settings]:
    return with_crm_settings({name: _wiring(module).settings for name, module in registry})


def load_settings(**overrides: Any) -> Settings:
    """The settings from ``overrides``, the environment, secret files and ``crmsync.toml``
    (``Settings.load``: ``ConfigError`` names each problem)."""
    return settings_model().load(**overrides)


def crm_commands() -> dict[str, str]:
    """The module of each registered CRM's own commands (``CrmWiring.commands``), by the
    CRM's name, which is the commands' group: ``crmsync NAME ...``; CRMs without any are
    left out."""
    wirings = {name: crm_wiring(name) for name in CRM_ADAPTERS}
    return {name: w.commands for name, w in wirings.items() if w.commands is not None}


def settings_by_name(settings: Settings) -> dict[str, Any]:
    """Every setting by its name, as a CRM adapter's wiring reads them (secrets still
    ``SecretStr``)."""
    return {name: getattr(settings, name) for name in type(settings).model_fields}


def build_crm(settings: Settings, clock: Callable[[], datetime] = system_clock) -> CrmPort:
    """The CRM adapter the settings name."""
    return crm_wiring(settings.crm).build(settings_by_name(settings), clock)


def online_remedies(settings: Settings) -> OnlineRemedies:
    """What the chosen CRM's adapter says fixes a problem ``crmsync check --online`` finds."""
    return crm_wiring(settings.crm).remedies


# ------------------------------------------------------------------ the state store
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def state_store_target(url: str | None, data_dir: Path) -> tuple[str, Path | str]:
    """Which store ``url`` names, opening nothing: ``("sqlite", path)`` or
    ``("postgresql", url)``.

    - None or ``""``: SQLite at ``data_dir/state.sqlite3`` (the embedded default);
    - ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's spelling:
      the path is what follows the third slash; percent-escapes are decoded);
    - ``postgresql://...`` or ``postgres://...``: PostgreSQL, schema ``crmsync``.

    Raises ``ConfigError`` for any other URL, naming its scheme but never the rest (which
    may hold a password).
    """
    if url is None or not url.strip():
        return "sqlite", Path(data_dir) / "state.sqlite3"
    text = url.strip()
    match = _SCHEME.match(text)
    if match is None:
        raise ConfigError(
            "state store URL has no scheme: write sqlite:///path/to/file or "
            "postgresql://user@host/db"
        )
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        rest = text[match.end() :]
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(
                "state store URL sqlite:// needs a file path after three slashes: "
                "sqlite:///relative/file or sqlite:////absolute/file"
            )
        if "?" in rest or "#" in rest:
            raise ConfigError("state store URL sqlite:///... takes a file path only (no ? or #)")
        return "sqlite", Path(unquote(rest[1:]))
    if scheme in POSTGRES_SCHEMES:
        return "postgresql", text
    raise ConfigError(
        f"state store URL scheme '{scheme}' is not supported: use sqlite:///path or "
        "postgresql://... (or leave it empty for SQLite in the data folder)"
    )


def open_state_store(url: str | None, data_dir: Path) -> StateDatabase:
    """Open (not migrate) the state store that ``url`` names (see ``state_store_target``).

    Raises ``ConfigError`` for a URL no backend takes; ``StateStoreError`` if the store
    cannot be opened.
    """
    kind, target = state_store_target(url, data_dir)
    if kind == "sqlite":
        return SqliteStateStore(Path(target))
    # psycopg costs a third of a second to import: only when PostgreSQL is asked for
    from crmsync.adapters.state.postgres import PostgresStateStore  # noqa: PLC0415 - an adapter

    return PostgresStateStore(str(target))


def build_state(settings: Settings) -> StateDatabase:
    """The state store the settings name, migrated to the current schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_state_store(settings.state_url_value, settings.data_dir)
    store.migrate()
    return store


def build_profile_lock(settings: Settings, *, command: str = "crmsync run") -> ProfileLock:
    """The lock of the profiles beside their state: PostgreSQL advisory locks when the
    state is on PostgreSQL, file locks in ``data_dir/locks`` otherwise; ``command`` is
    what holders are shown as. ``ConfigError`` for a state URL no store takes."""
    from crmsync.adapters.profile_lock import (  # noqa: PLC0415 - an adapter
        FileProfileLock,
        PostgresProfileLock,
    )

    kind, target = state_store_target(settings.state_url_value, settings.data_dir)
    if kind == "postgresql":
        return PostgresProfileLock(str(target), command=command)
    return FileProfileLock(settings.data_dir / "locks", command=command)


def build_runtime(
    settings: Settings,
    *,
    crm: CrmPort | None = None,
    state: StateDatabase | None = None,
    hook: Hook | None = None,
) -> Runtime:
    """Load charter and mapping (refusing bad files, and a charter that names events,
    attributes or ``when`` values the mapping cannot produce, before anything runs) and
    wire a cycle."""
    charter = load_charter(settings.charter)
    mapping = load_mapping(settings.mapping)
    misfits = check_charter_against_mapping(load_yaml(settings.charter), mapping)
    if misfits:
        raise CharterFileError(str(settings.charter), misfits)
    built_crm = crm is None
    crm = crm or build_crm(settings)
    try:
        state = state or build_state(settings)
    except BaseException:
        if built_crm:  # a profile that cannot open is tried again: leave nothing open
            crm.close()
        raise
    cycle = SyncCycle(
        crm=crm,
        state=state,
        charter=charter,
        mapping=mapping,
        profile=settings.profile,
        overlap=timedelta(seconds=settings.overlap),
        write_batch=settings.write_batch,
        hook=hook,
        follow_up_since=(
            None if settings.follow_up_since is None else int(settings.follow_up_since.timestamp())
        ),
    )
    return Runtime(settings, charter, mapping, crm, state, cycle)


# ------------------------------------------------------------------ the archive
ARCHIVE_DIR = "archive"


def archive_cipher(settings: Settings) -> ArchiveCipher | None:
    """The AES-256-GCM cipher of ``CRMSYNC_ARCHIVE_KEY`` (sealing and reading) and
    ``CRMSYNC_ARCHIVE_KEYS`` (reading entries sealed before a rotation), or None when both
    are empty; ``ConfigError`` for a malformed key."""
    from crmsync.adapters.archive.cipher import AesGcmCipher  # noqa: PLC0415 - an adapter

    key = settings.archive_key.get_secret_value() if settings.archive_key else ""
    old = settings.archive_keys.get_secret_value() if settings.archive_keys else ""
    if not key.strip() and not old.strip():
        return None
    return AesGcmCipher.from_base64(key, old)


def build_archive(settings: Settings) -> ArchiveStore:
    """The archive store ``CRMSYNC_ARCHIVE_URL`` names: empty = ``data_dir/archive`` (local
    folder); ``postgresql://...`` (``state``: the state store's URL) = PostgreSQL, schema
    ``crmsync_archive``; ``s3://bucket/prefix?...`` = S3-compatible object storage."""
    kind, url = _archive_target(settings)
    if kind == "local":
        from crmsync.adapters.archive.local import LocalArchiveStore  # noqa: PLC0415 - an adapter

        return LocalArchiveStore(settings.data_dir / ARCHIVE_DIR)
    if kind == "postgresql":
        from crmsync.adapters.archive.postgres import PostgresArchiveStore  # noqa: PLC0415 - on use

        return PostgresArchiveStore(url)
    from crmsync.adapters.archive.s3 import S3ArchiveStore  # noqa: PLC0415 - an adapter

    return S3ArchiveStore.from_url(url)


@dataclass(frozen=True)
class StoredPopulation:
    """A profile's stored complaints, both stores open: ``state`` says which profiles the
    state store knows; ``canonicals()`` yields ``(ref, canonical complaint)`` of every
    complaint the state store and the archive hold (``report_source.stored_canonicals``)."""

    state: PopulationReader
    canonicals: Callable[[], Iterator[tuple[str, Mapping[str, Any]]]]


@contextmanager
def open_stored_population(settings: Settings) -> Iterator[StoredPopulation]:
    """The settings' profile's stored complaints (state store and archive, no CRM) for the
    block; both stores are closed after it. Raises ``CrmSyncError`` when one cannot open."""
    from crmsync.service.report_source import stored_canonicals  # noqa: PLC0415 - on use

    state = build_state(settings)
    try:
        archive = build_archive(settings)
    except BaseException:
        state.close()
        raise
    cipher = archive_cipher(settings)
    try:
        yield StoredPopulation(
            state, lambda: stored_canonicals(state, archive, settings.profile, cipher)
        )
    finally:
        archive.close()
        state.close()


def local_archive_folder(settings: Settings) -> Path | None:
    """The folder of a local archive (``CRMSYNC_ARCHIVE_URL`` empty), opening nothing;
    ``None`` for a PostgreSQL or S3 archive."""
    kind, _url = _archive_target(settings)
    return settings.data_dir / ARCHIVE_DIR if kind == "local" else None


def _archive_target(settings: Settings) -> tuple[str, str]:
    """``(kind, url)`` of the archive store, opening nothing; ``ConfigError`` for a URL no
    store takes."""
    url = settings.archive_url.get_secret_value().strip() if settings.archive_url else ""
    if url == "state":
        url = settings.state_url_value or ""
        if not url.startswith(tuple(f"{scheme}://" for scheme in POSTGRES_SCHEMES)):
            raise ConfigError("CRMSYNC_ARCHIVE_URL=state needs a PostgreSQL CRMSYNC_STATE_URL")
    if not url:
        return "local", ""
    scheme = url.split(":", 1)[0].lower()
    if scheme in POSTGRES_SCHEMES:
        return "postgresql", url
    if scheme == "s3":
        return "s3", url
    raise ConfigError(
        f"CRMSYNC_ARCHIVE_URL: unknown scheme '{scheme}' (empty for a local folder, "
        "postgresql://..., state, or s3://bucket/prefix)"
    )


def check_settings(settings: Settings) -> None:
    """Refuse, before anything runs, what the settings name but no adapter takes: the state
    store and archive URLs, the archive keys (``ConfigError`` naming the setting). Opens
    nothing and reads no file."""
    try:
        state_store_target(settings.state_url_value, settings.data_dir)
    except ConfigError as exc:
        raise ConfigError(f"CRMSYNC_STATE_URL: {exc}") from exc
    _archive_target(settings)
    archive_cipher(settings)


def build_archiving(
    runtime: Runtime, archive: ArchiveStore, *, hook: Hook | None = None
) -> ArchivingService:
    """The archiving service of a runtime's profile over ``archive``."""
    s = runtime.settings
    return ArchivingService(
        crm=runtime.crm,
        state=runtime.state,
        witness=runtime.state,
        archive=archive,
        charter=runtime.charter,
        mapping=runtime.mapping,
        profile=s.profile,
        archive_after=s.archive_after,
        cipher=archive_cipher(s),
        overlap=timedelta(seconds=s.overlap),
        write_batch=s.write_batch,
        hook=hook,
        guard=runtime.cycle.guard,  # the profile lock's, when the caller holds one
    )


# ------------------------------------------------------------------ the worker
def monthly_report_folder(settings: Settings) -> Path | None:
    """Where the monthly report goes (``CRMSYNC_MONTHLY_REPORT``, under the data folder
    unless absolute), or None when it is off."""
    setting = settings.monthly_report.strip()
    if not setting or setting.lower() == "off":
        return None
    return settings.data_dir / setting  # an absolute setting wins


def _api_usage(crm: CrmPort) -> Callable[[], tuple[int, int] | None]:
    """The CRM's (used, limit) daily API calls when its adapter offers the ``ApiBudget``
    port, else always None."""

    def usage() -> tuple[int, int] | None:
        return crm.api_usage if isinstance(crm, ApiBudget) else None

    return usage


def _monthly_report(runtime: Runtime, folder: Path) -> Callable[[int], list[Path]]:
    """Write last month's report of the runtime's profile into ``folder`` unless it is
    there, reading the archive of the settings (opened only to write a report)."""
    from crmsync.service.report_monthly import write_missing_monthly_report  # noqa: PLC0415 - on use

    settings = runtime.settings

    def write(now: int) -> list[Path]:
        return write_missing_monthly_report(
            runtime.charter,
            runtime.state,
            lambda: build_archive(settings),
            profile=settings.profile,
            now=now,
            folder=folder,
            cipher=archive_cipher(settings),
        )

    return write


def build_worker(
    runtime: Runtime,
    *,
    interval: int | None = None,
    clock: Callable[[], datetime] = system_clock,
    profile_lock: ProfileLock | None = None,
    metrics: Metrics | None = None,
    readiness: Readiness | None = None,
    stop_requested: threading.Event | None = None,
) -> Worker:
    """The worker of one runtime's profile (every ``interval`` seconds, default the
    profile's ``sync_interval``): its cycle, nightly archive into a store opened for each
    run, state retention and monthly report, wired as the narrow callables it takes.
    Without ``profile_lock`` the worker always works the profile."""
    from crmsync.service.state_retention import Retention, prune_state  # noqa: PLC0415 - on use
    from crmsync.worker.scheduling import ProfileWork, Worker  # noqa: PLC0415 - the worker

    settings, state, profile = runtime.settings, runtime.state, runtime.settings.profile

    def archive() -> int:
        store = build_archive(settings)
        try:
            return build_archiving(runtime, store).run().archived
        finally:
            store.close()

    def prune(now: int) -> object:
        retention = Retention(settings.keep_closed, settings.keep_runs)
        return prune_state(state, profile, retention, now)

    folder = monthly_report_folder(settings)
    work = ProfileWork(
        profile=profile,
        run_cycle=runtime.cycle.run,
        next_check=lambda: state.next_check(profile),
        archive=archive,
        prune=prune,
        population=lambda: state.population(profile),
        charter=runtime.charter.name,
        clock_ids=tuple(c.id for c in runtime.charter.clocks),
        monthly_report=None if folder is None else _monthly_report(runtime, folder),
        report_folder=folder,
        api_usage=_api_usage(runtime.crm),
    )
    if profile_lock is not None:
        from crmsync.adapters.profile_lock import profile_guard  # noqa: PLC0415 - an adapter

        lock = profile_lock
        runtime.cycle.guard = profile_guard(lock, profile)
        work = replace(
            work,
            take_profile=lambda: lock.held(profile) or lock.try_acquire(profile),
            release_profile=lambda: lock.release(profile),
        )
    return Worker(
        work,
        interval=settings.sync_interval if interval is None else interval,
        clock=clock,
        metrics=metrics,
        readiness=readiness,
        stop_requested=stop_requested,
    )


class SharedStates:
    """One PostgreSQL state store per server URL, shared by the profiles on it: a hundred
    profiles need one connection, not a hundred (a store serialises its calls; every
    call names its profile). Called with a profile's settings: that store, opened and
    migrated on first use, or None for a SQLite store (each profile has its own file)."""

    def __init__(self) -> None:
        self._stores: dict[str, StateDatabase] = {}

    def __call__(self, settings: Settings) -> StateDatabase | None:
        kind, target = state_store_target(settings.state_url_value, settings.data_dir)
        if kind != "postgresql":
            return None
        url = str(target)
        if url not in self._stores:
            self._stores[url] = build_state(settings)
        return self._stores[url]

    def holds(self, state: StateDatabase) -> bool:
        """Whether ``state`` is one of the shared stores (other profiles still use it)."""
        return any(state is store for store in self._stores.values())


@dataclass
class WorkerFleet:
    """What ``crmsync run`` runs (built by ``build_fleet``): every profile that could be
    opened, with the metrics, readiness and HTTP server they share, and the profiles still
    to open (``pending``: their state store or CRM failed; retried every interval).
    ``run()`` works them until SIGTERM or SIGINT; ``close()`` (or leaving its ``with``
    block) stops the server, gives the profiles back and closes their stores and CRMs.
    ``admit`` is called with each runtime before it is worked (it may raise to refuse)."""

    server: OpsServer
    metrics: Metrics
    readiness: Readiness
    runtimes: list[Runtime]
    locks: dict[str, ProfileLock] = field(default_factory=dict)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    pending: list[Settings] = field(default_factory=list)
    hook: Hook | None = None
    admit: Callable[[Runtime], None] = field(default=lambda _runtime: None)
    queue: QueueSettings | None = None
    """With the state on PostgreSQL: the shared job queue this replica works."""
    base: Settings | None = None
    """The settings whose profiles are read again while it runs (None: never): their
    ``profiles_dir``, and with ``reload`` their ``[profiles.NAME]`` tables too."""
    reload: Callable[[], Settings] | None = None
    """Reads the settings afresh (crmsync.toml, the environment) for each new reading of
    the profiles; None: ``base`` as it was read at start."""
    sources: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """Each opened profile's charter and mapping files as they were when it opened
    (``source_files``): an edited one opens the profile anew."""
    file_problems: set[str] = field(default_factory=set)
    shared: Callable[[Settings], StateDatabase | None] = field(default_factory=SharedStates)
    """The PostgreSQL state store the profiles on one server share (None: the profile's
    own)."""
    workers: dict[str, Worker] = field(default_factory=dict)
    """The worker of each opened profile, once ``run()`` built it."""
    replica: str = ""
    """This process's replica name (``crmsync_replica_info``)."""
    restart_needed: set[str] = field(default_factory=set)
    """Settings changed in the configuration that only a restart applies (reported once)."""
    refused: dict[str, tuple[Settings, tuple[object, ...]]] = field(default_factory=dict)
    """Changed profile settings that could not be opened (the profile runs on as it was):
    reported once, tried again when the file changes again."""

    def _worker(self, runtime: Runtime) -> Worker:
        # each profile's lock lives beside its state, where its one-off commands take it too
        profile = runtime.settings.profile
        self.sources[profile] = source_files(runtime.settings)
        self.locks[profile] = build_profile_lock(runtime.settings)
        self.workers[profile] = build_worker(
            runtime,
            profile_lock=self.locks[profile],
            metrics=self.metrics,
            readiness=self.readiness,
            stop_requested=self.stop_requested,
        )
        return self.workers[profile]

    def open_workers(self) -> list[Worker]:
        """A worker for each opened profile (what ``run()`` starts with)."""
        return [self._worker(r) for r in self.runtimes]

    def _open(self, settings: Settings) -> Runtime:
        """The runtime of ``settings``, admitted (``CrmSyncError`` when it cannot open)."""
        runtime = build_runtime(settings, hook=self.hook, state=self.shared(settings))
        try:
            self.admit(runtime)
        except BaseException:
            self._close_runtime(runtime)
            raise
        return runtime

    def open_pending(self) -> list[Worker]:
        """Try once more to open each pending profile; the workers of those that opened
        (the others stay pending, not ready, logged as ``profile_unavailable``)."""
        opened: list[Worker] = []
        for settings in list(self.pending):
            profile = settings.profile
            try:
                runtime = self._open(settings)
            except CrmSyncError as exc:
                _unavailable(self.metrics, self.readiness, settings, exc, retried=True)
                continue
            self.pending.remove(settings)
            self.runtimes.append(runtime)
            self.readiness.unavailable.pop(profile, None)
            self.metrics.record_unavailable(profile, False)
            log.info("profile_opened", profile=profile)
            opened.append(self._worker(runtime))
        return opened

    def read_profiles(self) -> ProfileChanges:
        """Read ``profiles_dir`` again and take it in, the other profiles undisturbed: a new
        file's profile joins the pending ones (opened next); a removed file's profile is
        retired; a changed file's profile is opened anew and, once it opened, its old
        worker retired (a retired worker finishes the job it runs first). A bad file is
        logged by name (once) and its profile runs on as it was, as does a changed
        profile that cannot be opened."""
        from crmsync.worker.profile_reading import compare_profiles  # noqa: PLC0415 - the worker
        from crmsync.worker.scheduling import ProfileChanges  # noqa: PLC0415 - the worker

        if self.base is None:
            return ProfileChanges()
        base, problems = self._read_base()
        profiles, more = base.profile_settings_checked(each_table=True)
        problems += more
        for problem in sorted(set(problems) - self.file_problems):
            log.error("profile_file_invalid", error=problem)
        self.file_problems = set(problems)
        running = {r.settings.profile: r.settings for r in self.runtimes}
        running |= {p.profile: p for p in self.pending}
        paths = base.profile_file_paths()
        known = (
            None
            if paths is None and base.profiles_dir is not None
            else set(base.profiles) | {p.stem for p in paths or []}
        )
        reading = compare_profiles(running, profiles, known)
        edited = self._edited_sources(reading)
        reading.changed.extend(edited)
        changed = {s.profile for s in reading.changed}
        self.refused = {p: s for p, s in self.refused.items() if p in changed}
        for settings in reading.added:
            log.info("profile_file_added", profile=settings.profile)
        self.pending += reading.added
        retired: set[str] = set()
        for profile in reading.removed:
            log.info("profile_file_removed", profile=profile)
            self._retire(profile)
            retired.add(profile)
        opened: list[Worker] = []
        for settings in reading.changed:
            worker = self._reopen(settings)
            if worker is not None:
                opened.append(worker)
                retired.add(settings.profile)
        return ProfileChanges(opened, frozenset(retired))

    def _read_base(self) -> tuple[Settings, list[str]]:
        """The settings as they are now (``reload``), and what keeps them from being taken
        in: unreadable settings, or no profile left (then the running ones go on as
        they were). Settings only a restart applies keep their running values."""
        assert self.base is not None
        if self.reload is None:
            return self.base, []
        try:
            fresh = self.reload()
        except ValueError as exc:  # ConfigError naming the file and line, or the setting
            return self.base, [f"configuration not taken in: {exc}"]
        if fresh.single_profile != self.base.single_profile:
            return self.base, [
                f"{config_path()}: [profiles.NAME] tables added to a single-profile setup, or "
                "none left in one of profiles; the profiles run on as they were (a restart "
                "changes the setup)"
            ]
        fixed = {
            name: getattr(self.base, name)
            for name in RESTART_ONLY
            if getattr(fresh, name) != getattr(self.base, name)
        }
        if fixed and set(fixed) != self.restart_needed:
            log.warning("restart_needed", settings=sorted(fixed))
        self.restart_needed = set(fixed)
        self.base = fresh.model_copy(update=fixed) if fixed else fresh
        return self.base, []

    def _edited_sources(self, reading: ProfileReading) -> list[Settings]:
        """The running profiles, otherwise unchanged, whose charter or mapping file was
        edited since they opened."""
        left = {s.profile for s in reading.changed} | set(reading.removed)
        edited = []
        for runtime in self.runtimes:
            settings = runtime.settings
            if settings.profile in left:
                continue
            now = source_files(settings)
            if now != self.sources.get(settings.profile, now):
                log.info("profile_sources_changed", profile=settings.profile)
                edited.append(settings)
        return edited

    def _reopen(self, settings: Settings) -> Worker | None:
        """Swap a changed profile's old runtime for one of ``settings``: its new worker, or
        None when there is none to run (still pending, or it could not be opened: the
        old one runs on)."""
        profile = settings.profile
        if self.refused.get(profile) == (settings, source_files(settings)):
            return None  # reported already
        pending = [p for p in self.pending if p.profile == profile]
        if pending:  # nothing runs yet: the new settings are tried next
            self.pending[self.pending.index(pending[0])] = settings
            log.info("profile_file_changed", profile=profile)
            return None
        try:
            runtime = self._open(settings)
        except CrmSyncError as exc:
            log.error(
                "profile_file_changed",
                profile=profile,
                error=f"{self._file_of(profile)}: {exc}",
                kept="the profile runs on with its settings as they were",
            )
            if isinstance(exc, ConfigError):  # fixed by people: not tried until it changes
                self.refused[profile] = (settings, source_files(settings))
            return None
        self._retire(profile)
        self.runtimes.append(runtime)
        log.info("profile_file_changed", profile=profile)
        return self._worker(runtime)

    def _file_of(self, profile: str) -> Path | str:
        folder = self.base.profiles_dir if self.base is not None else None
        return profile if folder is None else folder / f"{profile}.toml"

    def _retire(self, profile: str) -> None:
        """Stop working ``profile``: its worker finishes its job and stops, its lock is
        given back, its runtime closed, its readiness and metrics dropped."""
        self.pending = [p for p in self.pending if p.profile != profile]
        self.refused.pop(profile, None)
        self.sources.pop(profile, None)
        worker = self.workers.pop(profile, None)
        if worker is not None:
            worker.retire()
        lock = self.locks.pop(profile, None)
        if lock is not None:
            lock.close()
        for runtime in [r for r in self.runtimes if r.settings.profile == profile]:
            self.runtimes.remove(runtime)
            self._close_runtime(runtime)
        self.readiness.forget(profile)
        self.metrics.forget(profile)

    def _close_runtime(self, runtime: Runtime) -> None:
        """Close a runtime's CRM and its state store unless other profiles share it."""
        shared = self.shared
        if isinstance(shared, SharedStates) and shared.holds(runtime.state):
            runtime.crm.close()
        else:
            runtime.close()

    def _opening(self) -> ProfileChanges:
        from crmsync.worker.scheduling import ProfileChanges  # noqa: PLC0415 - the worker

        changes = self.read_profiles()
        opened = self.open_pending()
        return ProfileChanges(changes.opened + opened, changes.retired)

    def _retry_every(self) -> int:
        every = [p.sync_interval for p in self.pending]
        if self.base is not None:
            every += [r.settings.sync_interval for r in self.runtimes] + [self.base.sync_interval]
        return min(every, default=300)

    def run(self) -> None:
        """Take each profile's lock when free, serve ``/healthz``, ``/readyz`` and
        ``/metrics``, and run every profile's worker until a stop is requested; the
        pending profiles are tried again every (shortest) interval of theirs."""
        from crmsync.worker.scheduling import run_profiles  # noqa: PLC0415 - the worker

        self.metrics.record_replica(self.replica)
        self.server.start()
        log.info(
            "crmsync_started",
            port=self.server.port,
            profiles=[startup_summary(r.settings) for r in self.runtimes],
            pending=[startup_summary(p) for p in self.pending],
        )
        workers = self.open_workers()
        if self.queue is not None:
            self._run_queue(workers)
            return
        run_profiles(
            workers,
            self.stop_requested,
            opening=self._opening if self.pending or self.base is not None else None,
            retry_every=self._retry_every(),
        )

    def _run_queue(self, workers: list[Worker]) -> None:
        """Work the shared queue as one replica (see ``worker.replicas``)."""
        from crmsync.adapters._postgres_session import connection_parameters  # noqa: PLC0415 - an adapter
        from crmsync.adapters.job_queue import QueueTables  # noqa: PLC0415 - an adapter
        from crmsync.worker.replicas import ReplicaQueue  # noqa: PLC0415 - the worker

        queue = self.queue
        assert queue is not None
        replica = ReplicaQueue(
            url=queue.url,
            schema=queue.schema,
            replica=queue.replica,
            connection=connection_parameters(queue.url),
            tables=lambda: QueueTables(
                queue.url, schema=queue.schema, application_name=queue.replica
            ),
            workers={w.profile: w for w in workers},
            serves=frozenset(w.profile for w in workers) | {p.profile for p in self.pending},
            stop_requested=self.stop_requested,
            stalled_after=queue.stalled_after,
            opening=self._opening if self.pending or self.base is not None else None,
            retry_every=self._retry_every(),
            on_health=self._queue_health,
            on_gauges=self._queue_gauges,
        )
        # the replica's name on every line it logs while it runs (and only then)
        with structlog.contextvars.bound_contextvars(replica=queue.replica):
            replica.run()

    def _queue_gauges(self, lag: dict[str, float], depth: dict[str, int]) -> None:
        """The queue's gauges of the profiles still worked (one retired meanwhile is not
        brought back into ``/metrics``)."""
        working = set(self.workers)
        self.metrics.record_queue(
            {p: v for p, v in lag.items() if p in working},
            {p: v for p, v in depth.items() if p in working},
        )

    def _queue_health(self, reachable: bool) -> None:
        assert self.queue is not None
        self.readiness.queue_ok = reachable
        self.metrics.record_queue_reachable(self.queue.replica, reachable)

    def close(self) -> None:
        self.server.stop()
        for lock in self.locks.values():
            lock.close()
        for runtime in self.runtimes:
            runtime.close()

    def __enter__(self) -> WorkerFleet:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class QueueSettings:
    """The shared job queue of the replicas: the state store's PostgreSQL URL, the queue's
    schema, this replica's name and the stalled-job timeout."""

    url: str
    schema: str
    replica: str
    stalled_after: int


def replica_name(settings: Settings) -> str:
    """``CRMSYNC_REPLICA``, or the host name and process id."""
    import os  # noqa: PLC0415 - only here
    import socket  # noqa: PLC0415 - only here

    return settings.replica.strip() or f"{socket.gethostname()}-{os.getpid()}"


def queue_settings(settings: Settings) -> QueueSettings | None:
    """The shared queue when the state store is PostgreSQL, else None (one process,
    APScheduler). ``ConfigError`` for a state URL no store takes."""
    kind, target = state_store_target(settings.state_url_value, settings.data_dir)
    if kind != "postgresql":
        return None
    return QueueSettings(
        str(target), settings.queue_schema, replica_name(settings), settings.stalled_after
    )


def open_queue_tables(settings: Settings) -> QueueTablesPort:
    """The replicas' runs and schedule beside the shared queue (read by ``crmsync runs``):
    ``ConfigError`` unless the state store is PostgreSQL, ``StateStoreError`` if it cannot
    be reached. Creates nothing: a queue no replica has worked yet has no runs."""
    from crmsync.adapters.job_queue import QueueTables  # noqa: PLC0415 - an adapter

    queue = queue_settings(settings)
    if queue is None:
        raise ConfigError(
            "crmsync runs lists the jobs of replicas sharing a PostgreSQL state store: "
            "CRMSYNC_STATE_URL names none"
        )
    return QueueTables(queue.url, schema=queue.schema, application_name="crmsync runs")


def startup_summary(settings: Settings) -> dict[str, str]:
    """What a profile works, for the worker's start-up line: its charter and mapping files,
    CRM, state store (a URL without its password) and data directory."""
    try:
        kind, target = state_store_target(settings.state_url_value, settings.data_dir)
        store = f"sqlite {target}" if kind == "sqlite" else redact_url(str(target))
    except ConfigError:
        store = "(invalid CRMSYNC_STATE_URL)"
    return {
        "profile": settings.profile,
        "charter": str(settings.charter),
        "mapping": str(settings.mapping),
        "crm": settings.crm,
        "state_store": store,
        "data_dir": str(settings.data_dir),
    }


RESTART_ONLY = (
    "http_port",
    "state_url",
    "queue_schema",
    "replica",
    "stalled_after",
    "log_format",
    "log_level",
    "profiles_dir",
)
"""Settings a running ``crmsync run`` keeps as it started with (the port it serves, the
queue it works, its logging, where its profile files are): an edit is reported, applied
at the next start."""


def source_files(settings: Settings) -> tuple[object, ...]:
    """A profile's charter and mapping files as they are now: each one's path, size and
    modification time (None when it cannot be read)."""
    out: list[object] = []
    for path in (settings.charter, settings.mapping):
        try:
            stat = path.stat()
        except OSError:
            out.append((str(path), None))
        else:
            out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def build_fleet(
    settings: Settings,
    *,
    hook: Hook | None = None,
    reload: Callable[[], Settings] | None = None,
) -> WorkerFleet:
    """Every profile of the settings wired for ``crmsync run``, the HTTP port bound.

    Raises ``ConfigError`` (a ``ValueError``) for a profile that does not validate or a
    port that cannot be listened on, before any profile is opened. A profile that cannot
    be opened (its charter, state store or CRM fails) is logged as
    ``profile_unavailable`` and left out: one broken profile never stops the others, and
    the fleet may be left with none. A profile whose files are fine but whose state store
    or CRM fails (``StateStoreError``, ``CrmError``: down while the worker starts) is kept
    pending instead: ``/readyz`` says not ready and ``crmsync_profile_unavailable`` names
    it until ``run()`` opens it (tried every interval). With ``reload`` (the settings read
    afresh), the ``[profiles.NAME]`` tables are taken in while it runs as the profile
    files are, and an edited charter or mapping file opens its profile anew."""
    import time  # noqa: PLC0415 - only this command waits

    from crmsync.worker.ops_http import Metrics, OpsServer, Readiness  # noqa: PLC0415 - the worker

    profiles, problems = settings.profile_settings_checked()
    for problem in problems:  # a bad profile file: named; the other profiles go on
        log.error("profile_file_invalid", error=problem)
    runtimes: list[Runtime] = []
    locks: dict[str, ProfileLock] = {}
    metrics = Metrics()
    readiness = Readiness(
        interval=max((p.sync_interval for p in profiles), default=settings.sync_interval),
        clock=time.time,
        state_ok=lambda: all(r.state.next_check(r.settings.profile) or True for r in runtimes),
        started_at=time.time(),
        owned=lambda: {p for p, lock in list(locks.items()) if lock.held(p)},
    )
    server = OpsServer(settings.http_port, metrics, readiness)
    pending: list[Settings] = []
    shared = SharedStates()
    for profile in profiles:
        try:
            runtimes.append(build_runtime(profile, hook=hook, state=shared(profile)))
        except ConfigError as exc:  # its files or settings: fixed by people, not by waiting
            log.error("profile_unavailable", profile=profile.profile, error=str(exc))
        except CrmSyncError as exc:
            pending.append(profile)
            _unavailable(metrics, readiness, profile, exc, retried=False)
    queue = queue_settings(settings)
    return WorkerFleet(
        server,
        metrics,
        readiness,
        runtimes,
        locks,
        pending=pending,
        hook=hook,
        queue=queue,
        shared=shared,
        base=settings if reload is not None or not settings.single_profile else None,
        reload=reload,
        file_problems=set(problems),
        replica=queue.replica if queue is not None else replica_name(settings),
    )


def _unavailable(
    metrics: Metrics, readiness: Readiness, settings: Settings, exc: CrmSyncError, *, retried: bool
) -> None:
    """A profile that could not be opened this time: logged, not ready, counted."""
    profile = settings.profile
    readiness.unavailable[profile] = type(exc).__name__
    metrics.record_unavailable(profile, True)
    log.error(
        "profile_unavailable",
        profile=profile,
        error=str(exc),
        kind=type(exc).__name__,
        retry_in_s=settings.sync_interval,
        retried=retried,
    )
