"""Configuration: ``CRMSYNC_*`` environment variables and an optional ``crmsync.toml``.

Environment variables win over the file; the file is looked up at ``CRMSYNC_CONFIG`` or
``./crmsync.toml``. Secrets are ``SecretStr`` and print as ``**********``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AwareDatetime, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from crmsync.domain.durations import Unit, parse_duration

_SECONDS = {
    Unit.MINUTES: 60,
    Unit.HOURS: 3600,
    Unit.DAYS: 86400,
    Unit.WEEKS: 7 * 86400,
}


def duration_seconds(value: object, name: str) -> int:
    """A whole number of seconds, or an elapsed duration such as ``5 minutes``."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str):
        duration = parse_duration(value)
        if duration.unit not in _SECONDS:
            raise ValueError(f"{name} must be elapsed time (minutes, hours, days, weeks)")
        seconds = duration.amount * _SECONDS[duration.unit]
    else:
        raise ValueError(f"{name}: {value!r} is not a duration")
    if seconds < 1:
        raise ValueError(f"{name} must be at least 1 second")
    return seconds


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    """Every setting, its default and its meaning (``crmsync config show`` prints them)."""

    model_config = SettingsConfigDict(
        env_prefix="CRMSYNC_", extra="ignore", validate_default=True, toml_file="crmsync.toml"
    )

    data_dir: Path = Field(
        default=Path("crmsync-data"),
        description="where the local CRM, the SQLite state and the local archive live",
    )
    charter: Path = Field(
        default=Path("mappings/charters/aston.yaml"), description="the charter file"
    )
    mapping: Path = Field(default=Path("mappings/salesforce.yaml"), description="the field mapping")
    crm: Literal["local", "salesforce"] = Field(default="local", description="which CRM adapter")
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
    http_port: int = Field(default=8080, description="health and metrics port")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable on a terminal, JSON otherwise"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    write_batch: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="records handed to the CRM per write call; Salesforce sends them as "
        "Collections of 200 packed five to a Composite request (one API call)",
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named profiles ([profiles.NAME] tables in crmsync.toml): each overrides any "
        "of these settings for one org/charter; its data_dir defaults to data_dir/NAME",
    )
    # Salesforce (CRMSYNC_CRM=salesforce); see adapters/salesforce_auth.py for what each mode needs
    sf_auth: Literal["jwt", "client_credentials", "password", "session"] = Field(
        default="jwt", description="Salesforce auth: jwt, client_credentials, password, session"
    )
    sf_login_url: str = Field(
        default="https://login.salesforce.com",
        description="login server (https://test.salesforce.com for sandboxes, or My Domain)",
    )
    sf_instance_url: str | None = Field(
        default=None, description="org URL (needed for session mode; else from the login)"
    )
    sf_consumer_key: str | None = Field(default=None, description="connected app consumer key")
    sf_consumer_secret: SecretStr | None = Field(
        default=None, description="connected app secret (client_credentials)"
    )
    sf_private_key_file: Path | None = Field(
        default=None, description="PEM RSA private key of the connected app certificate (jwt)"
    )
    sf_username: str | None = Field(default=None, description="integration user (jwt, password)")
    sf_password: SecretStr | None = Field(default=None, description="password (password mode)")
    sf_security_token: SecretStr | None = Field(
        default=None, description="security token (password mode)"
    )
    sf_session_id: SecretStr | None = Field(
        default=None, description="an existing session id (session mode)"
    )
    sf_api_version: str = Field(
        default="62.0", pattern=r"^\d+\.\d$", description="REST API version"
    )
    sf_timeout: float = Field(
        default=30.0, gt=0, description="seconds before an HTTP request fails"
    )
    sf_api_budget_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="stop a cycle before using more than this share of the org's daily API limit",
    )
    sf_bulk_threshold: int = Field(
        default=10_000, ge=1, description="read with Bulk API 2.0 above this many records"
    )

    @field_validator("sync_interval", "overlap", "archive_after", mode="before")
    @classmethod
    def _duration(cls, value: object, info: Any) -> int:
        return duration_seconds(value, f"CRMSYNC_{info.field_name.upper()}")

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
        toml = TomlConfigSettingsSource(
            settings_cls, toml_file=os.environ.get("CRMSYNC_CONFIG", "crmsync.toml")
        )
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("CRMSYNC_SECRETS_DIR", "/run/secrets")
        if Path(secrets_dir).is_dir():
            # docker/kubernetes secrets as files: /run/secrets/crmsync_sf_password etc.
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        sources.append(toml)
        return tuple(sources)

    def profile_settings(self) -> list[Settings]:
        """One Settings per profile: this one when no profiles are configured, else each
        ``[profiles.NAME]`` table over these values (raises ``ValueError`` naming the profile
        and setting when one does not validate)."""
        if not self.profiles:
            return [self]
        base = {k: v for k, v in self.__dict__.items() if k != "profiles"}
        out: list[Settings] = []
        for name, overrides in self.profiles.items():
            unknown = sorted(set(overrides) - set(type(self).model_fields) - {"name"})
            if unknown:
                raise ValueError(f"profile '{name}': unknown setting(s) {', '.join(unknown)}")
            values = {
                **base,
                "data_dir": self.data_dir / name,
                **overrides,
                "profile": name,
                "profiles": {},
            }
            try:
                out.append(type(self)(**values))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"profile '{name}': {problems}") from None
        return out

    @property
    def state_url_value(self) -> str | None:
        return self.state_url.get_secret_value() if self.state_url else None

    def shown(self) -> dict[str, str]:
        """Every setting as text for people, secrets redacted."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                text = redact_url(secret) if "://" in secret else "**********"
            else:
                text = "" if value is None else str(value)
            out[name] = text
        return out
