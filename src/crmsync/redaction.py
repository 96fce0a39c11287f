"""Passwords out of connection strings, before they reach a log line or an error."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
