"""The whole crmsync error hierarchy.

::

    CrmSyncError
    ├── ConfigError(ValueError)            settings, mapping or charter files that do not validate
    │   └── CharterFileError               a charter file: carries every problem with file and line
    ├── BadComplaintError(ValueError)      one complaint cannot be read; the others go on
    ├── CalendarError(ValueError)          a business duration that can never end (no working time)
    ├── InputFileError(ValueError)         an input file cannot be read as a whole (file, line)
    ├── CrmError                           the CRM refused or failed
    │   ├── CrmTransientError              worth retrying (timeouts, 5xx, row locks)
    │   ├── CrmAuthError                   credentials rejected or session expired for good
    │   └── CrmLimitError                  the org's API budget is spent: end the cycle, keep state
    ├── StateStoreError                    the state store failed
    ├── ArchiveError                       the archive failed or was found tampered with
    │   ├── ChainConflictError             an append no longer follows the head: re-read, retry
    │   │   └── DuplicateEntryError        that complaint version is archived already: use it
    │   ├── ArchiveIndexError              the index disagrees with the entries: reindex
    │   ├── EntryNotFoundError(LookupError)  no entry has this reference
    │   ├── ArchiveKeyMissingError         an entry is encrypted and no key was given
    │   └── WrongArchiveKeyError           an entry was sealed with a key not given
    ├── ProfileBusyError                   another process holds the profile's lock
    └── ProfileLostError                   this process lost the profile's lock while working

    Raised and caught inside one boundary, never past it (outside ``CrmSyncError`` on
    purpose: the retry policy re-raises a ``CrmSyncError`` as it is and translates the rest)

    ApiError                               a CRM API's error answer -> CrmError (retry_policy)
    QueryValueError(ValueError)            a name or value the CRM's query language cannot hold
                                           -> the record's failure
    InstantError(ValueError)               not an instant the contract takes -> BadComplaintError
    MappingError(ValueError)               a record the mapping cannot read -> the record's failure

Errors carry messages that name the file, line, record or field, never a secret. Where a
boundary translates an error it keeps the cause (``raise ... from exc``) unless the cause
may hold a secret (a database URL with its password, a token, an auth call's HTTP body):
there the new error is raised after the ``except`` block, ``from None``, so that neither
``__cause__`` nor ``__context__`` holds the secret, with a comment saying which secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def closest(word: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known word most like ``word`` (``difflib`` ratio at least ``cutoff``), or None."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, known: Iterable[str], *, cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the known word most like ``word``, or nothing: the one
    way an error message suggests a name."""
    close = closest(word, known, cutoff=cutoff)
    return f" (did you mean '{close}'?)" if close is not None else ""


class CrmSyncError(Exception):
    """Base of every error crmsync raises on purpose."""


class ConfigError(CrmSyncError, ValueError):
    """A settings, mapping or charter file does not validate."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a file: where (file, line, column, dotted path) and what.

    Printed as ``file:line:column (path): message``; the column only when known.
    """

    file: str
    line: int | None
    path: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        at = f" ({self.path})" if self.path else ""
        return f"{where}{at}: {self.message}"


class CharterFileError(ConfigError):
    """A YAML file (charter or mapping) failed validation; ``problems`` lists all of them."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{file}: {len(problems)} problem(s)\n{lines}")


class BadComplaintError(CrmSyncError, ValueError):
    """One complaint cannot be evaluated; ``ref`` is its id or ``line N``."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"{ref}: {reason}")

    def __reduce__(self) -> tuple[type[BadComplaintError], tuple[str, str]]:
        # picklable, so worker processes can hand bad complaints back to the parent
        return (type(self), (self.ref, self.reason))


class CalendarError(CrmSyncError, ValueError):
    """A business duration cannot end because the calendar has no working time ahead."""


class InputFileError(CrmSyncError, ValueError):
    """An input file (JSON Lines, Data Loader CSV) cannot be read as a whole: its encoding,
    format or header is wrong. The message names the file (and line)."""


class CrmError(CrmSyncError):
    """The CRM refused or failed a request."""


class CrmTransientError(CrmError):
    """A CRM failure worth retrying: timeout, connection error, 5xx, row lock."""


class CrmAuthError(CrmError):
    """The CRM rejected the credentials and the session could not be renewed."""


class CrmLimitError(CrmError):
    """The org's API budget is spent; the cycle ends with its state kept."""


class StateStoreError(CrmSyncError):
    """The state store failed."""


class ArchiveError(CrmSyncError):
    """The archive failed, or an entry failed verification."""


class ChainConflictError(ArchiveError):
    """An append whose ``seq``/``prev_hash`` no longer follow the chain's head (someone
    else appended first): re-read the head and try again."""


class DuplicateEntryError(ChainConflictError):
    """An append of a complaint version the chain holds already: look it up and use it."""


class ArchiveIndexError(ArchiveError):
    """A store's index (what search answers from) disagrees with its entries: nothing is
    answered from it until it is rebuilt from the entries (``crmsync archive reindex``)."""


class EntryNotFoundError(ArchiveError, LookupError):
    """No entry has this reference."""


class ArchiveKeyMissingError(ArchiveError):
    """An entry is encrypted and no key was given."""


class WrongArchiveKeyError(ArchiveError):
    """An entry was sealed with another key than the ones given."""


class ProfileBusyError(CrmSyncError):
    """Another process works the profile (``holder`` says who, as far as it is known)."""

    def __init__(self, profile: str, holder: str) -> None:
        self.profile = profile
        self.holder = holder
        super().__init__(f"profile '{profile}' is being worked by {holder}")


class ProfileLostError(CrmSyncError):
    """This process no longer holds the profile it was working (its lock's database
    session ended): the work stops before its next write, so that never two processes
    write one profile."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        super().__init__(
            f"this process lost the lock of profile '{profile}' (its database session "
            "ended); it stopped before writing more, and what it wrote is kept: run again"
        )


# ---------------------------------------------- caught inside one boundary (see the tree)


class ApiError(Exception):
    """A request-level error answered by a CRM's API: HTTP status, error code, the
    server's message (never a request body, never a credential) and the wait it asked for
    (``Retry-After``), if any."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds the server asked to wait (``Retry-After``)


class QueryValueError(ValueError):
    """A name or value the CRM's query language cannot hold (names the offending input)."""


class InstantError(ValueError):
    """A value is not an instant the contract accepts."""


class MappingError(ValueError):
    """One record cannot be read through the mapping: ``field`` says which CRM field."""

    def __init__(self, record_id: str, field: str, message: str) -> None:
        self.record_id = record_id
        self.field = field
        self.message = message
        super().__init__(f"record {record_id}, field {field}: {message}")
