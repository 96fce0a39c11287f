"""Secrets out of what people see: passwords out of connection strings, secret settings
masked at every level of the configuration, before they reach a log line, an error or
``config show``."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

SECRET_MASK = "**********"
"""How a secret that is not a URL is shown."""

DSN_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")


def redact_url(url: str) -> str:
    """The URL or libpq DSN with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return DSN_PASSWORD.sub(r"\1***", url)
    if not parts.scheme or not parts.netloc:
        return DSN_PASSWORD.sub(r"\1***", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = DSN_PASSWORD.sub(r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The password strings held by a URL or DSN (raw and percent-decoded), longest first."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found.update({parts.password, unquote(parts.password)})
    except ValueError:
        pass
    for match in DSN_PASSWORD.finditer(url):
        value = match.group(2).strip("'")
        found.update({value, unquote(value)})
    return sorted((s for s in found if s), key=len, reverse=True)


def redact_text(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***`` (longest first, so
    a secret that holds another is replaced whole; empty strings are ignored)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redact_secret(secret: str) -> str:
    """A secret setting's text for people: a URL or DSN without its password (where it
    points stays visible), anything else ``SECRET_MASK``."""
    return redact_url(secret) if "://" in secret else SECRET_MASK


def redact_setting(value: Any, *, secret: bool, secret_names: Collection[str]) -> Any:
    """The one redaction rule for settings, at every level: a secret's value is masked
    (``redact_secret``; inside a table or list, every string in it), every other string
    loses any URL or DSN password, and tables (``[profiles.NAME]``, ``CRMSYNC_PROFILES``)
    are redacted key by key, a key named in ``secret_names`` being secret."""
    if isinstance(value, dict):
        return {
            key: redact_setting(
                item, secret=secret or key in secret_names, secret_names=secret_names
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_setting(item, secret=secret, secret_names=secret_names) for item in value]
    if isinstance(value, str):
        return redact_secret(value) if secret else redact_url(value)
    if secret and value is not None:
        return SECRET_MASK
    return value
