"""What fixes a problem ``crmsync check --online`` finds in a Dataverse org.

crmsync's own columns (publisher prefix ``crmsync_``) are created, with the status
choice's options and the follow-up key, by ``crmsync dynamics365 setup``; any other column
is the org's, added in the maker portal (make.powerapps.com) or named otherwise in the
mapping. Privileges are the application user's security role's (``dynamics365_access``).
"""

from __future__ import annotations

SETUP = "crmsync dynamics365 setup"
_OWN_PREFIX = "crmsync_"


class DataverseRemedies:
    """``OnlineRemedies`` for a Dataverse org."""

    def missing(self, field: str, roles: str) -> str:
        if field.startswith(_OWN_PREFIX):
            return f"missing (used as {roles}): create it with `{SETUP}`"
        return (
            f"missing (used as {roles}): add the column to the table in the maker portal, "
            "or name the org's column in the mapping"
        )

    def not_writable(self, field: str) -> str:
        return "Dataverse lets no one write this column (a system column): map another one"

    def not_a_choice(self, field: str) -> str:
        return "add it as an option of the column's choice in the maker portal"


DATAVERSE_REMEDIES = DataverseRemedies()
