"""The one byte-order-mark sniffer (crmsync.inputs.encoding) every input reader uses."""

from __future__ import annotations

import pytest

from crmsync.errors import InputFileError
from crmsync.inputs.encoding import byte_order_mark, refuse_wide_text, wide_encoding


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("utf-32-le", "UTF-32LE"),  # FF FE 00 00: UTF-16LE's mark and then two zero bytes
        ("utf-32-be", "UTF-32BE"),
        ("utf-16-le", "UTF-16LE"),
        ("utf-16-be", "UTF-16BE"),
    ],
)
def test_wide_text_is_named_by_its_mark(codec: str, expected: str) -> None:
    head = ("\ufeff" + "Id").encode(codec)[:4]
    assert wide_encoding(head) == expected
    with pytest.raises(InputFileError) as caught:
        refuse_wide_text("in.csv", head, "pass --encoding {encoding}")
    assert str(caught.value).startswith(f"in.csv is {expected} text (byte-order mark ")
    assert str(caught.value).endswith(f"pass --encoding {expected[:6].lower()}")


def test_utf8_with_or_without_a_mark_passes() -> None:
    assert byte_order_mark(b"\xef\xbb\xbfId") == (b"\xef\xbb\xbf", "UTF-8")
    assert wide_encoding(b"\xef\xbb\xbfId") is None
    assert byte_order_mark(b'{"id') is None
    refuse_wide_text("in.jsonl", b'{"id')  # no exception
    refuse_wide_text("in.jsonl", b"")
