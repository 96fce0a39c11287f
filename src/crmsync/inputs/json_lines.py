"""UTF-8 JSON Lines as the evaluation and report streams read them."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import BinaryIO

from crmsync.inputs.encoding import refuse_wide_text
from crmsync.terminal import escape_controls


class Utf8Source:
    """Text from UTF-8 bytes, read as ``evaluate_stream`` reads a file (``read``/``readline``).

    Blocks are decoded whole (fast); a block that is not all UTF-8 is decoded line by
    line: each bad line is reported through ``warn`` as a bad complaint (with the file
    ``name``), noted in ``undecodable`` and read as a blank line, so the other lines keep
    their numbers and are still evaluated. A UTF-8 byte-order mark before the first line
    is dropped; ``check_encoding`` refuses a UTF-16 or UTF-32 one.
    """

    def __init__(
        self, raw: BinaryIO, undecodable: list[int], name: str, warn: Callable[[str], None]
    ) -> None:
        self._raw = raw
        self._undecodable = undecodable
        self._name = name
        self._warn = warn
        self._next_line = 1
        self._at_start = True

    def check_encoding(self) -> None:
        """Raise ``InputFileError`` when the input starts with a UTF-16/32 byte-order
        mark (every line would be garbage as UTF-8); nothing is consumed."""
        peek = getattr(self._raw, "peek", None)
        refuse_wide_text(self._name, peek(4)[:4] if callable(peek) else b"")

    def read(self, size: int = -1) -> str:
        """About ``size`` characters of whole lines (all that is left if ``size < 0``)."""
        block = self._raw.read(size) if size >= 0 else self._raw.read()
        if block and not block.endswith(b"\n"):
            block += self._raw.readline()
        return self._decode(block)

    def readline(self) -> str:
        return self._decode(self._raw.readline())

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def _decode(self, block: bytes) -> str:
        if self._at_start and block:
            self._at_start = False
            block = block.removeprefix(codecs.BOM_UTF8)
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            parts = block.split(b"\n")
            lines = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
            text = "".join(self._decode_line(self._next_line + i, b) for i, b in enumerate(lines))
        self._next_line += block.count(b"\n")
        return text

    def _decode_line(self, number: int, line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._undecodable.append(number)
            self._warn(
                f"bad complaint line {number}: not UTF-8 text "
                f"(byte 0x{line[exc.start]:02x} at column {exc.start + 1} of "
                f"{escape_controls(self._name)}; crmsync reads UTF-8)"
            )
            return "\n"
