"""Text from outside (ids, paths, CRM values) made safe to show on a terminal."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

# C0 and C1 controls, DEL and the bidirectional overrides: what could move the cursor,
# recolour the terminal or reorder the text a person reads
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\u202e``),
    so an id or a path from the outside cannot drive the terminal (newlines kept on request)."""

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        if keep_newlines and char == "\n":
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escaped, text)


def escape_string_values(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: control characters in every string value escaped, for the
    readable renderer on a terminal (a traceback keeps its lines; the JSON renderer
    escapes them itself)."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = escape_controls(value, keep_newlines=key == "exception")
    return event
