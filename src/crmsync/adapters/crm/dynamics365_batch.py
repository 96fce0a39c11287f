"""Dataverse ``$batch`` bodies: writes packed as ``multipart/mixed``, answers read back.

Each operation goes in a change set of its own (a change set is atomic, so one failing
write never undoes another), and the batch is sent with ``Prefer: odata.continue-on-error``
so that a failed change set does not stop the ones after it. The answer holds one HTTP
response per operation, matched to its operation by ``Content-ID``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_OPERATIONS = 1000  # Dataverse refuses a $batch of more


@dataclass(frozen=True)
class Operation:
    """One write: ``method`` on ``url`` (absolute), JSON ``body`` and extra ``headers``."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationResult:
    """The HTTP answer to one operation of a batch (body parsed as JSON when it is)."""

    status: int
    headers: Mapping[str, str]
    body: Any


def encode(operations: Sequence[Operation]) -> tuple[str, bytes]:
    """The ``Content-Type`` and body of a ``$batch`` request, one change set per operation
    (``Content-ID`` = the operation's 1-based position)."""
    if not 0 < len(operations) <= MAX_OPERATIONS:
        raise ValueError(f"a $batch holds 1 to {MAX_OPERATIONS} operations, not {len(operations)}")
    batch = f"batch_{uuid.uuid4().hex}"
    lines: list[str] = []
    for number, op in enumerate(operations, start=1):
        changeset = f"changeset_{uuid.uuid4().hex}"
        lines += [
            f"--{batch}",
            f"Content-Type: multipart/mixed; boundary={changeset}",
            "",
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {number}",
            "",
            f"{op.method} {op.url} HTTP/1.1",
            "Content-Type: application/json; type=entry",
        ]
        lines += [f"{name}: {value}" for name, value in op.headers.items()]
        lines += ["", json.dumps(op.body, separators=(",", ":")) if op.body is not None else ""]
        lines += [f"--{changeset}--"]
    lines += [f"--{batch}--", ""]
    return f"multipart/mixed; boundary={batch}", "\r\n".join(lines).encode("utf-8")


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_STATUS_LINE = re.compile(r"HTTP/1\.1 (\d{3})")


def boundary_of(content_type: str) -> str:
    """The multipart boundary named in a ``Content-Type`` header."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ValueError(f"no multipart boundary in Content-Type '{content_type[:100]}'")
    return match.group(1)


def _parts(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    if delimiter not in text:
        raise ValueError(f"the boundary '{boundary}' does not occur in the answer")
    pieces = text.split(delimiter)[1:]
    return [p for p in pieces if not p.startswith("--")]


def _split_head(part: str) -> tuple[dict[str, str], str]:
    part = part.lstrip("\r\n")
    head, _, rest = part.replace("\r\n", "\n").partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_response(text: str) -> OperationResult:
    """The HTTP response inside one ``application/http`` part."""
    mime, inner = _split_head(text)
    match = _STATUS_LINE.match(inner.lstrip("\n"))
    if match is None:
        raise ValueError("a batch part holds no HTTP status line")
    headers, body_text = _split_head(inner.lstrip("\n").partition("\n")[2])
    body_text = body_text.strip()
    body: Any = None
    if body_text:
        try:
            body = json.loads(body_text)
        except ValueError:
            body = body_text
    del mime
    return OperationResult(int(match.group(1)), headers, body)


def decode(content_type: str, payload: str, count: int) -> list[OperationResult | None]:
    """The answers to ``count`` operations, in their order: the n-th change set of the
    answer answers the n-th operation (one operation per change set). None for an
    operation the answer does not reach (the caller treats it as not done, transiently).

    Raises ``ValueError`` (naming what is wrong, never quoting the body) when the answer
    is not a multipart batch answer."""
    results: list[OperationResult | None] = []
    for part in _parts(payload, boundary_of(content_type)):
        headers, body = _split_head(part)
        kind = headers.get("content-type", "").lower()
        if kind.startswith("multipart/mixed"):
            inner = _parts(body, boundary_of(headers["content-type"]))
            if not inner:
                raise ValueError("a change set of the answer holds no response")
            results.append(_http_response(inner[0]))
        elif kind.startswith("application/http"):
            results.append(_http_response(part))
        else:
            raise ValueError(f"a batch part of type '{kind[:60]}' is not an HTTP response")
    if len(results) > count:
        raise ValueError(f"{len(results)} answers to {count} operations")
    return results + [None] * (count - len(results))
