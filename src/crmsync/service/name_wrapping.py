"""Where a name shown on a report page (a group's value under ``--by``) may wrap: at white
space and after ``-``, ``/`` and ``_``, and inside a piece of text only when that piece
alone is too long for its place, where it is hyphenated visibly.

The page's tables and its charts wrap names by this one rule: the tables as HTML that a
browser wraps (``name_html``), the charts as lines of text (``wrapped``).
"""

from __future__ import annotations

import re
import unicodedata
from html import escape

from markupsafe import Markup

WRAP_AFTER = "-/_"
"""Characters a name may wrap after, besides white space."""
LONGEST_PIECE = 12
"""The longest piece of a name (characters between places it may wrap) that a table
never breaks. A longer one gets soft hyphens, at most this many characters apart, and is
set as one box that a line breaks around: a column at least as wide as it shows it
whole, a narrower one breaks it at a soft hyphen and shows ``-`` there, instead of
cutting it anywhere or overflowing the page."""
_TOKEN = re.compile(r"[ \t\n\r\f]+|[^ \t\n\r\f/_-]*[/_-]|[^ \t\n\r\f/_-]+")
_SPACE = " \t\n\r\f"
_JOINER = "\u200d"
_SOFT_HYPHEN = "\u00ad"


def pieces(name: str) -> list[str]:
    """``name`` cut at every place it may wrap: runs of white space, and runs of other
    characters ending with one of ``WRAP_AFTER`` or before white space or the end.
    Joined, they give ``name`` back."""
    return _TOKEN.findall(name)


def _joined(before: str, after: str) -> bool:
    """Whether two characters belong to one letter as shown (a combining mark, a variation
    selector or a zero-width joiner between them): never cut there."""
    return _JOINER in (before, after) or unicodedata.category(after) in ("Mn", "Mc", "Me")


def hyphenated(piece: str, longest: int) -> list[str]:
    """``piece`` cut into parts of at most ``longest`` characters, as even in length as
    can be, never inside a letter made of several characters (``_joined``: a cut that
    would be moves back, its next part that much longer): where a long word may be
    hyphenated. A piece of ``longest`` or fewer comes back whole."""
    if len(piece) <= longest:
        return [piece]
    count = -(-len(piece) // longest)
    parts: list[str] = []
    start = 0
    for k in range(1, count):
        cut = max(start + 1, -(-k * len(piece) // count))  # the earlier parts longer
        while cut > start + 1 and _joined(piece[cut - 1], piece[cut]):
            cut -= 1  # at most a few characters back: a letter is short
        parts.append(piece[start:cut])
        start = cut
    parts.append(piece[start:])
    return parts


def _split(piece: str) -> tuple[str, str]:
    """A piece as its text and the ``WRAP_AFTER`` character ending it (or "")."""
    if piece and piece[-1] in WRAP_AFTER:
        return piece[:-1], piece[-1]
    return piece, ""


def name_html(name: str) -> Markup:
    """``name`` as HTML (escaped) in a ``<span class="name">`` that wraps only where
    ``pieces`` allows: at white space, and at a ``<wbr>`` after each ``-``, ``/`` and ``_``
    (a browser would not break after ``_``). A piece longer than ``LONGEST_PIECE`` is a
    ``<span class="word">`` (set as one box by the page's style) with soft hyphens that a
    browser shows as ``-`` where it breaks; a name with one also has itself whole in the
    ``title``."""
    out: list[str] = []
    split = False
    tokens = pieces(name)
    for i, token in enumerate(tokens):
        if token[0] in _SPACE:
            out.append(escape(token))
            continue
        text, after = _split(token)
        parts = hyphenated(text, LONGEST_PIECE)
        if len(parts) > 1:
            split = True
            hyphens = _SOFT_HYPHEN.join(escape(part) for part in parts)
            out.append(f'<span class="word">{hyphens}{escape(after)}</span>')
        else:
            out.append(escape(token))
        if after and i + 1 < len(tokens) and tokens[i + 1][0] not in _SPACE:
            out.append("<wbr>")
    title = f' title="{escape(name)}"' if split else ""
    return Markup(f'<span class="name"{title}>{"".join(out)}</span>')  # every part escaped


def _lines(name: str, width: int, most: int) -> tuple[list[str], bool]:
    """``wrapped``'s lines, and whether text was left out."""
    lines: list[str] = [""]
    for token in pieces(name):
        if token[0] in _SPACE:
            if lines[-1]:
                lines[-1] += " "
            continue
        if len(lines[-1]) + len(token) > width and lines[-1].strip():
            lines[-1] = lines[-1].rstrip()
            lines.append("")
        if len(lines[-1]) + len(token) <= width:
            lines[-1] += token
            continue
        text, after = _split(token)
        parts = hyphenated(text, width - 1)
        for part in parts[:-1]:
            lines[-1] += part + "-"
            lines.append("")
        lines[-1] += parts[-1] + after
    lines = [line.rstrip() for line in lines]
    if len(lines) <= most:
        return lines, False
    lines = lines[:most]
    lines[-1] = lines[-1][: width - 1].rstrip(" -") + "…"
    return lines, True


def wrapped(name: str, width: int, most: int) -> str:
    """``name`` in at most ``most`` lines of at most ``width`` characters (``width`` at least
    2), joined by newlines: wrapped where ``pieces`` allows (white space between lines
    dropped), a piece longer than a line hyphenated (``-`` ending its line), and the text
    beyond the last line left out, that line ending with ``…``."""
    return "\n".join(_lines(name, width, most)[0])


def shortened(name: str, width: int, most: int) -> bool:
    """Whether ``wrapped(name, width, most)`` leaves part of ``name`` out."""
    return _lines(name, width, most)[1]
