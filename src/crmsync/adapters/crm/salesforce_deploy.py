"""Metadata API deploys (``crmsync salesforce deploy``): send a zip, poll its status, read
each component that failed.

The zip goes out through simple-salesforce (``Salesforce.deploy``, the SOAP ``deploy``
call); the status is read with the SOAP ``checkDeployStatus`` call (``includeDetails``)
because its component failures carry the component's full name, which simple-salesforce's
own summary leaves out. Both use the adapter's session (``SalesforceAuth``): an expired
session is renewed once, transient failures are retried by the one retry policy, and no
message that leaves this module holds a secret.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from xml.etree import ElementTree as ET

from crmsync.adapters.crm.retry_policy import RetryPolicy
from crmsync.adapters.crm.salesforce_auth import SalesforceAuth
from crmsync.adapters.crm.salesforce_errors import (
    AUTH_CODES,
    SALESFORCE_FAILURES,
    TRANSIENT_CODES,
)
from crmsync.errors import ApiError, CrmSyncError

_NS = {
    "soapenv": "http://schemas.xmlsoap.org/soap/envelope/",
    "mt": "http://soap.sforce.com/2006/04/metadata",
}
T = TypeVar("T")
DONE = frozenset({"Succeeded", "SucceededPartial", "Failed", "Canceled"})


@dataclass(frozen=True)
class ComponentFailure:
    """One component the org refused: its type, full name, file and the org's reason."""

    type: str
    name: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.type} {self.name}: {self.problem}"


@dataclass(frozen=True)
class DeployStatus:
    """What ``checkDeployStatus`` says about one deploy."""

    id: str
    status: str
    check_only: bool
    components_total: int
    components_deployed: int
    components_failed: int
    failures: tuple[ComponentFailure, ...] = ()
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"


class MetadataDeployer:
    """Deploys zips to the org ``auth`` logs into (API version ``api_version``)."""

    def __init__(
        self, auth: SalesforceAuth, *, api_version: str, policy: RetryPolicy | None = None
    ) -> None:
        self.auth = auth
        self.api_version = api_version.removeprefix("v")
        self.policy = policy or auth.policy

    def _metadata_url(self) -> str:
        self.auth.ensure()
        return f"{self.auth.instance_url}/services/Soap/m/{self.api_version}/"

    def start(self, zip_bytes: bytes, *, check_only: bool) -> str:
        """Send the zip (``checkOnly`` validates without changing the org); the deploy's id.

        Raises ``CrmAuthError``, ``CrmTransientError`` or ``CrmError`` (the org's reason)."""

        def attempt() -> str:
            from simple_salesforce.api import Salesforce  # noqa: PLC0415 - loads zeep, on use

            self.auth.ensure()
            sf = Salesforce(
                instance_url=self.auth.instance_url,
                session_id=self.auth.token,
                session=self.auth.session,
                version=self.api_version,
            )
            result = sf.deploy(
                io.BytesIO(zip_bytes),
                sandbox=False,
                checkOnly="true" if check_only else "false",
                client="crmsync",
                rollbackOnError=True,
            )
            deploy_id = result.get("asyncId")
            if not deploy_id:
                raise ApiError(500, "UNKNOWN", "the deploy answer holds no id")
            return str(deploy_id)

        return self._run(attempt, "metadata deploy")

    def status(self, deploy_id: str, *, check_only: bool = False) -> DeployStatus:
        """The deploy's state, counts and every component failure."""

        def attempt() -> DeployStatus:
            from simple_salesforce.messages import CHECK_DEPLOY_STATUS_MSG  # noqa: PLC0415 - on use

            url = self._metadata_url() + "deployRequest/" + deploy_id
            body = CHECK_DEPLOY_STATUS_MSG.format(
                client="crmsync",
                sessionId=self.auth.token,
                asyncProcessId=deploy_id,
                includeDetails="true",
            )
            response = self.auth.session.post(
                url,
                data=body.encode("utf-8"),
                headers={"Content-Type": "text/xml", "SOAPAction": "checkDeployStatus"},
            )
            if response.status_code >= 300:
                raise _fault(response.status_code, response.text)
            return _parse_status(response.text, deploy_id, check_only)

        return self._run(attempt, "metadata deploy status")

    def _run(self, fn: Callable[[], T], operation: str) -> T:
        """``fn`` under the retry policy, renewing the session once; errors scrubbed."""
        renewed = False

        def once() -> T:
            nonlocal renewed
            try:
                return fn()
            except ApiError as exc:
                if exc.code in AUTH_CODES and not renewed and self.auth.renewable:
                    renewed = True
                    self.auth.renew()
                    return fn()
                raise
            except Exception as exc:
                translated = _from_simple_salesforce(exc)
                if translated is None:
                    raise
                if translated.code in AUTH_CODES and not renewed and self.auth.renewable:
                    renewed = True
                    self.auth.renew()
                    return fn()
            # no cause, no context (raised past the except block):
            # simple-salesforce's error repeats the request's headers (the session token)
            raise translated from None

        try:
            return self.policy.run(once, operation=operation, failures=SALESFORCE_FAILURES)
        except CrmSyncError as exc:
            failure = type(exc)(self._scrub(str(exc)))
        # no cause, no context (raised past the except block): the caught error is the
        # same message with the session token not yet scrubbed (and simple-salesforce's
        # error, with the request's headers, behind it)
        raise failure from None

    def _scrub(self, text: str) -> str:
        return self.auth.scrub(text)


def wait_for(
    deployer: MetadataDeployer,
    deploy_id: str,
    *,
    check_only: bool,
    on_progress: Callable[[DeployStatus], None],
    sleep: Callable[[float], None],
    poll_seconds: float = 2.0,
    max_wait_seconds: float = 1800.0,
) -> DeployStatus:
    """Poll the deploy until it is done, telling ``on_progress`` each status; the last one.
    A deploy still running after ``max_wait_seconds`` is returned as it is (not done)."""
    waited = 0.0
    while True:
        status = deployer.status(deploy_id, check_only=check_only)
        on_progress(status)
        if status.done or waited >= max_wait_seconds:
            return status
        sleep(poll_seconds)
        waited += poll_seconds


def _text(element: ET.Element, name: str) -> str:
    return (element.findtext(f"mt:{name}", "", _NS) or "").strip()


def _number(element: ET.Element, name: str) -> int:
    try:
        return int(_text(element, name) or 0)
    except ValueError:
        return 0


def _parse_status(text: str, deploy_id: str, check_only: bool) -> DeployStatus:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ApiError(502, "UNKNOWN", "the status answer is not XML") from exc
    result = root.find("soapenv:Body/mt:checkDeployStatusResponse/mt:result", _NS)
    if result is None:
        raise ApiError(502, "UNKNOWN", "the status answer holds no result")
    failures = tuple(
        ComponentFailure(
            type=_text(f, "componentType") or "component",
            name=_text(f, "fullName") or _text(f, "fileName"),
            file=_text(f, "fileName"),
            problem=_text(f, "problem"),
        )
        for f in result.findall("mt:details/mt:componentFailures", _NS)
    )
    return DeployStatus(
        id=deploy_id,
        status=_text(result, "status") or "Unknown",
        check_only=_text(result, "checkOnly") == "true" or check_only,
        components_total=_number(result, "numberComponentsTotal"),
        components_deployed=_number(result, "numberComponentsDeployed"),
        components_failed=_number(result, "numberComponentErrors"),
        failures=failures,
        error=_text(result, "errorMessage") or None,
    )


def _fault(status: int, text: str) -> ApiError:
    """A SOAP fault as an ``ApiError``: its ``faultcode`` (``sf:INVALID_SESSION_ID``) and
    ``faultstring``. A fault naming a code is permanent unless the code is transient."""
    code = re.search(r"<faultcode>(?:[\w-]+:)?([^<]+)</faultcode>", text or "")
    message = re.search(r"<faultstring>([^<]*)</faultstring>", text or "")
    name = code.group(1).strip() if code else "UNKNOWN"
    if code and name not in TRANSIENT_CODES and status >= 500:
        status = 401 if name in AUTH_CODES else 400
    return ApiError(status, name, message.group(1).strip() if message else f"HTTP {status}")


def _from_simple_salesforce(exc: Exception) -> ApiError | None:
    """simple-salesforce's HTTP errors (status and body) as an ``ApiError``."""
    from simple_salesforce.exceptions import SalesforceError  # noqa: PLC0415 - imported when used

    if not isinstance(exc, SalesforceError):
        return None
    content = exc.content
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    return _fault(int(exc.status), text)
