"""Salesforce's failures as the one retry policy needs them declared.

``UNABLE_TO_LOCK_ROW`` and ``SERVER_UNAVAILABLE`` are transient whatever the HTTP status
(a row lock comes as 400); ``REQUEST_LIMIT_EXCEEDED`` ends the cycle (``CrmLimitError``);
``INVALID_SESSION_ID`` / ``INVALID_AUTH_HEADER`` mean the session expired (renewed once by
the adapter, then ``CrmAuthError``).
"""

from __future__ import annotations

from crmsync.adapters.crm.retry_policy import ApiFailures

TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
AUTH_CODES = frozenset({"INVALID_SESSION_ID", "INVALID_AUTH_HEADER"})

SALESFORCE_FAILURES = ApiFailures(
    transient_codes=TRANSIENT_CODES, limit_codes=LIMIT_CODES, auth_codes=AUTH_CODES
)
is_transient = SALESFORCE_FAILURES.is_transient
translate = SALESFORCE_FAILURES.translate
