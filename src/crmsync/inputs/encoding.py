"""The one byte-order-mark sniffer every input reader uses."""

from __future__ import annotations

import codecs

from crmsync.errors import InputFileError

BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE"),  # before UTF-16LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)
"""Each byte-order mark and the encoding it announces, longest first where they overlap."""


def byte_order_mark(head: bytes) -> tuple[bytes, str] | None:
    """The byte-order mark ``head`` (a file's first four bytes or more) starts with, and the
    encoding it announces; ``None`` without one."""
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return mark, encoding
    return None


def wide_encoding(head: bytes) -> str | None:
    """``UTF-16LE``, ``UTF-16BE``, ``UTF-32LE`` or ``UTF-32BE`` when ``head`` starts with
    that byte-order mark: text every line of which is garbage as UTF-8."""
    found = byte_order_mark(head)
    return None if found is None or found[1] == "UTF-8" else found[1]


def refuse_wide_text(name: str, head: bytes, remedy: str = "") -> None:
    """Raise ``InputFileError`` when ``head`` starts with a UTF-16/32 byte-order mark:
    ``name`` is that encoding's text, not UTF-8; ``remedy`` (default: convert it with
    iconv) says what to do. ``{encoding}`` in ``remedy`` is the codec's name (utf-16)."""
    found = byte_order_mark(head)
    if found is None or found[1] == "UTF-8":
        return
    mark, encoding = found
    codec = encoding[:6].lower()  # utf-16, utf-32: the codec that reads the mark itself
    advice = (
        remedy.format(encoding=codec)
        if remedy
        else f"convert it, e.g. iconv -f {encoding} -t UTF-8"
    )
    raise InputFileError(
        f"{name} is {encoding} text (byte-order mark {mark.hex(' ').upper()}); crmsync "
        f"reads UTF-8: {advice}"
    )
