"""Text that is not text: a lone surrogate (U+D800..U+DFFF on its own).

JSON may spell one (``"\\ud800"``) and Python's ``json`` reads it into a ``str``, but no
UTF-8 file, terminal, database or CRM can hold it: the first write of such a value fails.
A record holding one is that record's error, named by the field, never the whole run's.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
NUL = "\x00"
REPLACEMENT = "\ufffd"
_NUL_ONLY = frozenset({"nul"})
_NOTHING: frozenset[str] = frozenset()


def lone_surrogate_at(value: object, path: str = "") -> str | None:
    """The dotted path (keys, list positions) of the first text in ``value`` (JSON: keys
    too) holding a lone surrogate, ``""`` when ``value`` itself is such a text, or
    ``None`` when there is none."""
    if isinstance(value, str):
        return path if _LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{shown(str(key))}" if path else shown(str(key))
            if isinstance(key, str) and _LONE_SURROGATE.search(key):
                return inner
            found = lone_surrogate_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def shown(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``): printable."""
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def lone_surrogate_problem(path: str) -> str:
    """The reason given for a record whose ``path`` holds a lone surrogate."""
    where = f"field '{path}'" if path else "the value"
    return f"{where} holds a lone surrogate (such as \\ud800), which is not text"


def unkeepable_in(text: str) -> frozenset[str]:
    """What in ``text`` no store can keep: ``"nul"`` (a NUL character) and/or
    ``"surrogate"`` (a lone surrogate); empty when it is fine."""
    if text.isascii():  # the common case, and no surrogate is ASCII
        return _NUL_ONLY if NUL in text else _NOTHING
    found = set()
    if NUL in text:
        found.add("nul")
    if _LONE_SURROGATE.search(text):
        found.add("surrogate")
    return frozenset(found)


def kept_as_text(text: str) -> str:
    """``text`` with every NUL character and lone surrogate replaced by U+FFFD."""
    return _LONE_SURROGATE.sub(REPLACEMENT, text.replace(NUL, REPLACEMENT))
