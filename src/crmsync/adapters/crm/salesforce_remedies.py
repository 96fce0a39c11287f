"""What fixes a problem ``crmsync check --online`` finds in a Salesforce org.

A custom field (``__c``) the mapping makes is deployed by ``crmsync salesforce deploy`` and
granted by the ``CrmSync_Integration`` permission set; a standard field the integration
user cannot see or write needs field-level security. Describe shows only the fields the
integration user may read, so a missing field is "missing or hidden".
"""

from __future__ import annotations

from crmsync.adapters.crm.salesforce_metadata import PERMISSION_SET

DEPLOY_HINT = (
    f"create it with `crmsync salesforce deploy` (or `sf project deploy start --source-dir "
    f"salesforce`) and assign the permission set {PERMISSION_SET} to the integration user"
)


def _custom(field: str) -> bool:
    return field.endswith("__c")


class SalesforceRemedies:
    """``OnlineRemedies`` for a Salesforce org."""

    def missing(self, field: str, roles: str) -> str:
        fix = DEPLOY_HINT if _custom(field) else "give the integration user read access to it"
        return f"missing or hidden from the integration user (used as {roles}): {fix}"

    def not_writable(self, field: str) -> str:
        if _custom(field):
            return f"assign the permission set {PERMISSION_SET} to the integration user"
        return "give the integration user edit access to it (field-level security)"

    def not_a_choice(self, field: str) -> str:
        if _custom(field):
            return "run `crmsync salesforce deploy`"
        return "add it to the org's picklist values"


SALESFORCE_REMEDIES = SalesforceRemedies()
