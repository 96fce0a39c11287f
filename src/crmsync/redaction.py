"""Passwords out of connection strings, before they reach a log line or an error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

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
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
