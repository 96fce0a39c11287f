"""The Dataverse ``$batch`` body, read back with the standard library's MIME parser: one
change set per write, so one failing write never undoes another."""

from __future__ import annotations

import email
import email.policy

import pytest

from crmsync.adapters.crm.dynamics365_batch import MAX_OPERATIONS, Operation, encode

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"


def test_each_write_is_a_change_set_of_its_own_with_its_content_id() -> None:
    """Three writes: three change sets in the batch, each holding one HTTP request."""
    operations = [
        Operation("PATCH", f"{BASE}incidents(1)", {"title": "a"}, {"If-Match": "*"}),
        Operation("PATCH", f"{BASE}tasks(crmsync_key='k')", {"subject": "b"}),
        Operation("PATCH", f"{BASE}incidents(2)", {"title": "c"}, {"If-Match": "*"}),
    ]
    content_type, body = encode(operations)
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    change_sets = list(message.iter_parts())
    assert [part.get_content_type() for part in change_sets] == ["multipart/mixed"] * 3
    requests = [list(change_set.iter_parts()) for change_set in change_sets]
    assert [len(parts) for parts in requests] == [1, 1, 1]
    assert [parts[0]["Content-ID"] for parts in requests] == ["1", "2", "3"]
    first_lines = [str(parts[0].get_payload()).splitlines()[0] for parts in requests]
    assert first_lines == [f"{op.method} {op.url} HTTP/1.1" for op in operations]


@pytest.mark.parametrize("count", [0, MAX_OPERATIONS + 1])
def test_a_batch_holds_one_to_a_thousand_writes(count: int) -> None:
    """Dataverse refuses a $batch of more than 1,000 requests: never built."""
    with pytest.raises(ValueError, match="1 to 1000 operations"):
        encode([Operation("PATCH", f"{BASE}incidents(1)", {})] * count)
