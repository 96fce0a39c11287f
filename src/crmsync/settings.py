"""Configuration: ``CRMSYNC_*`` environment variables and an optional ``crmsync.toml``.

Environment variables win over the file; the file is looked up at ``CRMSYNC_CONFIG`` or
``./crmsync.toml``. Secrets are ``SecretStr`` and print as ``**********``.

``Settings`` holds the settings every CRM shares; each CRM adapter declares its own settings
group beside it, and the composition root joins them into the settings crmsync reads
(``with_crm_settings``, called by ``bootstrap.settings_model``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from copy import copy
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from crmsync.domain.durations import elapsed_seconds
from crmsync.errors import ConfigError, did_you_mean
from crmsync.redaction import (
    redact_setting,
    redact_url,  # noqa: F401 - re-exported: callers import it from here
)


def duration_seconds(value: object, name: str) -> int:
    """Whole seconds (at least 1) from a number of seconds or elapsed-time text
    (``domain.durations.elapsed_seconds``: ``30 seconds``, ``30s``, ``PT5M``...).
    ``ValueError`` names the setting ``name``."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = elapsed_seconds(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
    else:
        raise ValueError(f"{name}: {value!r} is not a duration")
    if seconds < 1:
        raise ValueError(f"{name} must be at least 1 second")
    return seconds


MAX_CONFIG_BYTES = 1 << 20
"""Largest ``crmsync.toml`` read (1 MiB)."""


_GIVEN_ONLY: ContextVar[bool] = ContextVar("crmsync_settings_given_only", default=False)
"""True while a profile's settings are built from values read already (no source read)."""


def config_path() -> Path:
    """The ``crmsync.toml`` in force: ``CRMSYNC_CONFIG``, else ``./crmsync.toml``."""
    return Path(os.environ.get("CRMSYNC_CONFIG") or "crmsync.toml")


def read_config_file(path: Path, known: Iterable[str]) -> dict[str, Any]:
    """The settings in the TOML file ``path``; every key must be one of the settings
    ``known`` (top level and in each ``[profiles.NAME]``). ``ConfigError`` names the file,
    line and key, with a suggestion, for each unknown key; and the file for bad TOML, a file
    over ``MAX_CONFIG_BYTES`` or one that is not UTF-8. A missing file is no settings."""
    file = str(path)
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the settings file: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{file}: larger than {MAX_CONFIG_BYTES >> 20} MiB: not read")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        failure = f"{file}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})"
    except tomllib.TOMLDecodeError as exc:
        failure = f"{file}: not valid TOML: {exc}"
    else:
        failure = ""
    if failure:
        # no cause, no context (raised past the except block): the decode error holds
        # the whole file (its passwords and keys too) in .object or .doc
        raise ConfigError(failure) from None
    problems = _unknown_keys(data, text, file, set(known))
    if problems:
        lines = "".join(f"\n  {p}" for p in problems)
        raise ConfigError(f"{file}: {len(problems)} problem(s){lines}")
    return data


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The first line of each table header and key in TOML ``text``, by dotted path."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            table = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
            for end in range(1, len(table) + 1):
                lines.setdefault(table[:end], number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, key.group(1).strip("\"'")), number)
    return lines


def _unknown_keys(data: dict[str, Any], text: str, file: str, known: set[str]) -> list[str]:
    lines = _key_lines(text)

    def problem(path: tuple[str, ...], allowed: set[str], where: str) -> str:
        line = lines.get(path)
        at = f"{file}:{line}" if line else file
        return f"{at}: {where}unknown setting '{path[-1]}'{did_you_mean(path[-1], allowed)}"

    problems = [problem((key,), known, "") for key in data if key not in known]
    profiles = data.get("profiles", {})
    if isinstance(profiles, dict):
        allowed = known - {"profiles", "profile"}
        for name, table in profiles.items():
            if not isinstance(table, dict):
                problems.append(f"{file}: profiles.{name} must be a table ([profiles.{name}])")
                continue
            problems += [
                problem(("profiles", name, key), allowed, f"profile '{name}': ")
                for key in table
                if key not in allowed and key != "name"
            ]
    return problems


def _validation_problems(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors():
        name = f"CRMSYNC_{'_'.join(str(p) for p in error['loc']).upper()}"
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(message if message.startswith(name) else f"{name}: {message}")
    return out


class Settings(BaseSettings):
    """Every setting the CRMs share, its default and its meaning (``crmsync config show``
    prints them). Alone it knows no CRM and refuses every ``crm``: the settings crmsync
    reads are these and the registered CRMs' groups (``with_crm_settings``)."""

    model_config = SettingsConfigDict(env_prefix="CRMSYNC_", extra="ignore", validate_default=True)

    crm_names: ClassVar[tuple[str, ...]] = ()
    """The CRMs the ``crm`` setting may name (the composition root's registry)."""

    data_dir: Path = Field(
        default=Path("crmsync-data"),
        description="where the local CRM, the SQLite state and the local archive live",
    )
    charter: Path = Field(
        default=Path("mappings/charters/aston.yaml"), description="the charter file"
    )
    mapping: Path = Field(default=Path("mappings/salesforce.yaml"), description="the field mapping")
    crm: str = Field(default="local", description="which CRM adapter")
    state_url: SecretStr | None = Field(
        default=None,
        description="state store: empty = SQLite in data_dir; postgresql://user:pw@host/db",
    )
    profile: str = Field(default="default", description="name of this org/charter profile")
    sync_interval: int = Field(
        default=300, description="seconds between cycles (or a duration: '5 minutes')"
    )
    overlap: int = Field(
        default=300, description="incremental pull overlap window in seconds (or a duration)"
    )
    archive_after: int = Field(
        default=30 * 86400, description="archive closed complaints this long after closing"
    )
    archive_url: SecretStr | None = Field(
        default=None,
        description="archive store: empty = data_dir/archive; postgresql://... (or 'state': "
        "the state store's server); s3://bucket/prefix?lock=COMPLIANCE&retain_days=N",
    )
    archive_key: SecretStr | None = Field(
        default=None,
        description="base64 32-byte key: archive entries encrypted at rest (AES-256-GCM)",
    )
    archive_keys: SecretStr | None = Field(
        default=None,
        description="earlier archive keys, to read entries sealed before a rotation: base64 "
        "keys separated by commas, spaces or lines (new entries use CRMSYNC_ARCHIVE_KEY)",
    )
    keep_closed: int | None = Field(
        default=180 * 86400,
        description="forget a closed complaint (and its finished follow-ups) in the state store "
        "this long after closing, at least a day; 'never' keeps it (the archive keeps it anyway)",
    )
    keep_runs: int | None = Field(
        default=90 * 86400,
        description="forget cycle history older than this (the newest run stays); 'never' keeps it",
    )
    follow_up_since: AwareDatetime | None = Field(
        default=None,
        description="no follow-up for a state made before this instant (ISO 8601 with offset); "
        "empty = the profile's first cycle minus 7 days, kept in the state store",
    )
    monthly_report: str = Field(
        default="reports",
        description="where the worker writes last month's report (HTML and JSON) on the 1st "
        "of each month: a folder (relative to data_dir unless absolute), or 'off'",
    )
    replica: str = Field(
        default="",
        description="this replica's name in log lines, metrics and `crmsync runs` "
        "(empty: host name and process id)",
    )
    queue_schema: str = Field(
        default="crmsync_queue",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="with the state on PostgreSQL: the schema of the job queue the replicas "
        "share (its tables, the schedule and the runs)",
    )
    stalled_after: int = Field(
        default=30,
        ge=3,
        description="seconds without a heartbeat after which a replica's job is given up "
        "(its work is deferred afresh to a live replica)",
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="health and metrics port (0: any free port)"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable on a terminal, JSON otherwise"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    write_batch: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="most writes handed to the CRM per write call (a page's follow-ups to "
        "create and to complete, then its flags); each call is filled as far as the CRM's "
        "request carries: Dynamics 365 one $batch request of up to 1,000, Salesforce one "
        "Composite request (one API call) of five Collections of 200, the creates in their "
        "own, completions and flags sharing theirs",
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named profiles ([profiles.NAME] tables in crmsync.toml): each overrides any "
        "of these settings for one org/charter; its data_dir defaults to data_dir/NAME",
    )
    profiles_dir: Path | None = Field(
        default=None,
        description="a folder of one TOML file per profile (NAME.toml holds what a "
        "[profiles.NAME] table would); crmsync run reads it again every interval and starts, "
        "restarts or stops the profiles of new, changed or removed files, and a bad file is "
        "reported by name while the other profiles go on",
    )

    @field_validator("sync_interval", "overlap", "archive_after", mode="before")
    @classmethod
    def _duration(cls, value: object, info: Any) -> int:
        return duration_seconds(value, f"CRMSYNC_{info.field_name.upper()}")

    @field_validator("crm")
    @classmethod
    def _registered_crm(cls, value: str) -> str:
        if value in cls.crm_names:
            return value
        if not cls.crm_names:
            raise ValueError(f"'{value}': no CRM is registered (see bootstrap.settings_model)")
        *first, last = (f"'{name}'" for name in cls.crm_names)
        choices = f"{', '.join(first)} or {last}" if first else last
        raise ValueError(f"'{value}' is not a CRM crmsync has: use {choices}")

    @field_validator("keep_closed", "keep_runs", mode="before")
    @classmethod
    def _retention(cls, value: object, info: Any) -> int | None:
        name = f"CRMSYNC_{info.field_name.upper()}"
        if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
            return None
        seconds = duration_seconds(value, name)
        if seconds < 86400:
            raise ValueError(f"{name} must be at least 1 day, or 'never'")
        return seconds

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _GIVEN_ONLY.get():  # a profile over settings read already: the values given
            return (init_settings,)
        path = config_path()
        toml = InitSettingsSource(settings_cls, read_config_file(path, settings_cls.model_fields))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("CRMSYNC_SECRETS_DIR", "/run/secrets")
        if Path(secrets_dir).is_dir():
            # docker/kubernetes secrets as files: /run/secrets/crmsync_state_url etc.
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        sources.append(toml)
        return tuple(sources)

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Settings from ``overrides``, the environment, secret files and ``crmsync.toml``,
        every one validated; ``ConfigError`` lists each problem with the setting (or file
        and line)."""
        from pydantic_settings import SettingsError  # noqa: PLC0415 - only on this path

        try:
            return cls(**overrides)
        except ValidationError as exc:
            failure = "; ".join(_validation_problems(exc))
        except SettingsError as exc:
            # a value that must be JSON (CRMSYNC_PROFILES) is not: name the setting and the place
            field = re.search(r'field "(\w+)"', str(exc))
            name = f"CRMSYNC_{field.group(1).upper()}" if field else "a setting"
            cause = f": {exc.__cause__}" if exc.__cause__ else ""
            failure = f"{name}: not valid JSON{cause}"
        # no cause, no context (raised past the except block): pydantic's errors quote the
        # input values (passwords, tokens, keys); the JSON error holds the whole value (.doc)
        raise ConfigError(failure) from None

    @classmethod
    def sources(cls) -> dict[str, str]:
        """Where each top-level setting's value comes from, by the order the settings are
        read: ``environment`` (``CRMSYNC_NAME``), ``secret file`` (``CRMSYNC_SECRETS_DIR``),
        the ``crmsync.toml`` in force (its path), else ``default``."""
        environment = {name.upper() for name in os.environ}
        secrets = Path(os.environ.get("CRMSYNC_SECRETS_DIR", "/run/secrets"))
        path = config_path()
        try:
            in_file = set(read_config_file(path, cls.model_fields))
        except ConfigError:
            in_file = set()
        out: dict[str, str] = {}
        for name in cls.model_fields:
            variable = f"CRMSYNC_{name.upper()}"
            if variable in environment:
                out[name] = "environment"
            elif secrets.is_dir() and (secrets / variable.lower()).is_file():
                out[name] = "secret file"
            elif name in in_file:
                out[name] = str(path)
            else:
                out[name] = "default"
        return out

    def profile_settings(self) -> list[Settings]:
        """One Settings per profile: this one when no profiles are configured, else each
        ``[profiles.NAME]`` table and each good file of ``profiles_dir`` over these values
        (raises ``ValueError`` naming the profile and setting when a table does not
        validate; a bad file is left out, see ``profile_settings_checked``)."""
        return self.profile_settings_checked()[0]

    def profile_file_paths(self) -> list[Path] | None:
        """The profile files in ``profiles_dir`` now (``NAME.toml``, sorted), good or bad;
        None when it is not set or not a folder."""
        folder = self.profiles_dir
        if folder is None or not folder.is_dir():
            return None
        return sorted(folder.glob("*.toml"))

    def profile_files(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The profiles of ``profiles_dir`` (``NAME.toml``: its settings) and, for each
        file that cannot be one, a problem naming the file (and line and key)."""
        folder = self.profiles_dir
        if folder is None:
            return {}, []
        paths = self.profile_file_paths()
        if paths is None:
            return {}, [f"{folder}: CRMSYNC_PROFILES_DIR is not a folder"]
        allowed = set(type(self).model_fields) - {"profiles", "profile", "profiles_dir"}
        tables: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for path in paths:
            try:
                data = read_config_file(path, type(self).model_fields)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            unknown = sorted(set(data) - allowed - {"name"})
            if unknown:
                problems.append(
                    f"{path}: not a profile setting: "
                    + ", ".join(f"'{key}'{did_you_mean(key, allowed)}" for key in unknown)
                )
                continue
            if path.stem in self.profiles:
                problems.append(f"{path}: profile '{path.stem}' is also a [profiles] table")
                continue
            tables[path.stem] = data
        return tables, problems

    def profile_settings_checked(
        self, *, each_table: bool = False
    ) -> tuple[list[Settings], list[str]]:
        """``profile_settings`` and the problems of the files of ``profiles_dir`` left out
        (each naming its file). ``each_table``: a ``[profiles.NAME]`` table that does not
        validate is left out too, named in a problem, instead of raising (a running worker
        reading its configuration again: one bad profile never stops the others)."""
        files, problems = self.profile_files()
        if self.single_profile:
            return [self], []
        folder = self.profiles_dir or Path()  # files only come from a folder
        given = [
            (name, table, f"{config_path()} [profiles.{name}]", each_table)
            for name, table in self.profiles.items()
        ]
        given += [
            (name, table, f"{folder / (name + '.toml')}", True) for name, table in files.items()
        ]
        out: list[Settings] = []
        for name, table, where, kept_going in given:
            try:
                out += self._profiles_of({name: table})
            except ValueError as exc:
                if not kept_going:
                    raise
                problems.append(f"{where}: {exc}")
        return out, problems

    def _profiles_of(self, tables: dict[str, dict[str, Any]]) -> list[Settings]:
        base = {k: v for k, v in self.__dict__.items() if k not in {"profiles", "profiles_dir"}}
        out: list[Settings] = []
        for name, overrides in tables.items():
            known = set(type(self).model_fields) - {"profiles", "profile", "profiles_dir"}
            unknown = sorted(set(overrides) - known - {"name"})
            if unknown:
                raise ValueError(
                    f"profile '{name}': unknown setting(s) "
                    + ", ".join(f"'{key}'{did_you_mean(key, known)}" for key in unknown)
                )
            values = {
                **base,
                "data_dir": self.data_dir / name,
                **overrides,
                "profile": name,
                "profiles": {},
                "profiles_dir": None,
            }
            try:
                # validated as given: the sources (the environment, crmsync.toml) were
                # read into ``self`` already, and may have changed since
                token = _GIVEN_ONLY.set(True)
                try:
                    out.append(type(self)(**values))
                finally:
                    _GIVEN_ONLY.reset(token)
                continue
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
            # no cause, no context (raised past the except block): pydantic's errors
            # quote the input values (the profile's passwords and tokens)
            raise ValueError(f"profile '{name}': {problems}") from None
        return out

    @property
    def single_profile(self) -> bool:
        """True for the single-profile setup: no ``[profiles.NAME]`` table and no
        ``profiles_dir`` (the settings are the one profile's)."""
        return not self.profiles and self.profiles_dir is None

    @property
    def state_url_value(self) -> str | None:
        return self.state_url.get_secret_value() if self.state_url else None

    @classmethod
    def secret_names(cls) -> frozenset[str]:
        """The settings that hold secrets (typed ``SecretStr``): masked wherever they appear,
        at the top level and in every profile."""
        return frozenset(
            name
            for name, field in cls.model_fields.items()
            if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
        )

    def shown(self) -> dict[str, str]:
        """Every setting as text for people, secrets redacted at every level
        (``redaction.redact_setting``); the profiles as JSON."""
        names = self.secret_names()
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            value = redact_setting(value, secret=name in names, secret_names=names)
            if isinstance(value, dict):
                text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
            else:
                text = "" if value is None else str(value)
            out[name] = text
        return out


def with_crm_settings(groups: Mapping[str, type[BaseModel] | None]) -> type[Settings]:
    """The settings crmsync reads: ``Settings`` and the settings group of each CRM in
    ``groups`` (by its ``crm`` name; None: it has none), whose fields become settings of
    the same names after the shared ones (a field ``x``: ``CRMSYNC_X``, the TOML key ``x``,
    the secret file ``crmsync_x``); ``crm`` takes exactly these names.

    A group declares fields only (constraints in ``Field``): ``TypeError`` for a group with
    validators of its own, or a field that is a setting already."""
    names = tuple(groups)
    fields: dict[str, Any] = {}
    for crm, group in groups.items():
        if group is None:
            continue
        if (
            group.__pydantic_decorators__.field_validators
            or group.__pydantic_decorators__.model_validators
        ):
            raise TypeError(
                f"the settings group of CRM '{crm}' has validators: use Field constraints"
            )
        for name, info in group.model_fields.items():
            if name in Settings.model_fields or name in fields:
                raise TypeError(f"the settings group of CRM '{crm}': '{name}' is a setting already")
            fields[name] = (info.annotation, copy(info))
    choice = copy(Settings.model_fields["crm"])
    choice.description = f"which CRM adapter: {', '.join(names)}"
    return create_model(
        "Settings",
        __base__=Settings,
        __module__=__name__,
        crm_names=(ClassVar[tuple[str, ...]], names),
        crm=(str, choice),
        **fields,
    )
