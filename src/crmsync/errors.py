"""The whole crmsync error hierarchy.

::

    CrmSyncError
    ├── ConfigError(ValueError)            settings, mapping or charter files that do not validate
    │   └── CharterFileError               a charter file: carries every problem with file and line
    ├── BadComplaintError(ValueError)      one complaint cannot be read; the others go on
    ├── CalendarError(ValueError)          a business duration that can never end (no working time)
    ├── CrmError                           the CRM refused or failed
    │   ├── CrmTransientError              worth retrying (timeouts, 5xx, row locks)
    │   ├── CrmAuthError                   credentials rejected or session expired for good
    │   └── CrmLimitError                  the org's API budget is spent: end the cycle, keep state
    ├── StateStoreError                    the state store failed
    ├── ArchiveError                       the archive failed or was found tampered with
    └── ProfileBusyError                   another process holds the profile's lock

Errors carry messages that name the file, line, record or field, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class ProfileBusyError(CrmSyncError):
    """Another process works the profile (``holder`` says who, as far as it is known)."""

    def __init__(self, profile: str, holder: str) -> None:
        self.profile = profile
        self.holder = holder
        super().__init__(f"profile '{profile}' is being worked by {holder}")
