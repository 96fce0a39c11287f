"""``crmsync evaluate`` decodes lines with msgspec and falls back to ``json.loads``.

The claim that makes this safe: every line msgspec accepts decodes to exactly the value
``json.loads`` gives (types included: an integer of any size stays an ``int``), and every
line msgspec refuses is handed to ``json.loads``, which then decides.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.service.evaluate_stream import _decode_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@pytest.mark.slow  # 2,000 examples, ~20 s on a shared machine
@settings(max_examples=2000, deadline=None)
@given(value=values, ascii_only=st.booleans())
def test_msgspec_gives_what_json_loads_gives(value: Any, ascii_only: bool) -> None:
    """A JSON text written by json.dumps decodes to the same value through both decoders."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert same(_decode_json(text), json.loads(text))


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet='{}[]":,0123456789.eE+-truefalsnNIy \\u\n', max_size=30))
def test_what_msgspec_accepts_json_loads_reads_the_same(text: str) -> None:
    """On arbitrary near-JSON text msgspec either refuses (json.loads decides) or agrees."""
    try:
        decoded = _decode_json(text)
    except (msgspec.DecodeError, RecursionError):
        return
    assert same(decoded, json.loads(text))


def test_json_that_msgspec_refuses_is_left_to_json_loads() -> None:
    """NaN, 1e400 and lone surrogates are JSON to json.loads: msgspec refuses, so they fall back."""
    for text in ('{"a": NaN}', '{"a": 1e400}', '{"a": "\\ud800"}'):
        try:
            _decode_json(text)
        except msgspec.DecodeError:
            continue
        raise AssertionError(f"msgspec accepted {text}")
