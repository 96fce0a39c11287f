"""Salesforce sessions: JWT bearer, OAuth client credentials, username + password + security
token, or an existing session id, all over the adapter's one ``requests.Session``.

``CRMSYNC_SF_AUTH`` picks the mode; each mode needs its settings (a missing one is a
``ConfigError`` naming the ``CRMSYNC_SF_*`` variable, never its value):

=================== ==================================================================
jwt                 SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE (PEM, RS256), SF_USERNAME
client_credentials  SF_CONSUMER_KEY, SF_CONSUMER_SECRET (SF_LOGIN_URL = the My Domain URL)
password            SF_USERNAME, SF_PASSWORD, SF_SECURITY_TOKEN (SOAP login through
                    simple-salesforce's ``SalesforceLogin``)
session             SF_SESSION_ID, SF_INSTANCE_URL (cannot be renewed)
=================== ==================================================================

Every mode but ``session`` can be renewed: the adapter calls ``renew`` once when a request
answers ``INVALID_SESSION_ID`` and sends the request again. Secrets never reach a log line
or an error message: server messages are scrubbed of every configured secret value
and every session token the adapter has held (``SalesforceAuth.scrub``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
import requests
import structlog
from pydantic import SecretStr

from crmsync.adapters.crm.retry_policy import RetryPolicy
from crmsync.adapters.crm.salesforce_errors import SALESFORCE_FAILURES
from crmsync.errors import ApiError, ConfigError, CrmAuthError
from crmsync.redaction import redact_text

log = structlog.get_logger("crmsync.crm.auth")

AuthMode = Literal["jwt", "client_credentials", "password", "session"]
JWT_LIFETIME_S = 180
_TOKEN_PATH = "/services/oauth2/token"


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that puts a default timeout on every request it sends
    (simple-salesforce and ``requests`` send none by default)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class SalesforceCredentials:
    """What one auth mode needs (filled from ``CRMSYNC_SF_*`` settings)."""

    mode: AuthMode
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    session_id: SecretStr | None = None
    api_version: str = "62.0"

    def secrets(self) -> list[str]:
        """The secret values (to scrub from any text that leaves the adapter)."""
        out = [
            s.get_secret_value()
            for s in (self.consumer_secret, self.password, self.security_token, self.session_id)
            if s is not None and s.get_secret_value()
        ]
        if self.password and self.security_token:
            out.append(self.password.get_secret_value() + self.security_token.get_secret_value())
        return out

    def check(self) -> None:
        """Raise ``ConfigError`` naming every setting the mode needs and lacks."""
        needs: dict[str, tuple[str, ...]] = {
            "jwt": ("consumer_key", "private_key_file", "username"),
            "client_credentials": ("consumer_key", "consumer_secret"),
            "password": ("username", "password", "security_token"),
            "session": ("session_id", "instance_url"),
        }
        missing = [
            f"CRMSYNC_SF_{n.upper()}" for n in needs[self.mode] if not _given(getattr(self, n))
        ]
        if missing:
            raise ConfigError(f"CRMSYNC_SF_AUTH={self.mode} needs {', '.join(missing)} (not set)")
        for setting, url in (("LOGIN_URL", self.login_url), ("INSTANCE_URL", self.instance_url)):
            if url is not None and urlsplit(url).scheme not in ("https", "http"):
                raise ConfigError(f"CRMSYNC_SF_{setting} must be an https:// URL")
        key_file = self.private_key_file
        if self.mode == "jwt" and key_file is not None and not key_file.is_file():
            raise ConfigError(f"CRMSYNC_SF_PRIVATE_KEY_FILE: {key_file} is not a readable file")


def _given(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value is not None and value != ""


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (``redaction.redact_text``)."""
    return redact_text(text, secrets)
    return text


@dataclass
class SalesforceAuth:
    """The current session (token + instance URL) and how to get a new one."""

    credentials: SalesforceCredentials
    session: requests.Session
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    token: str | None = None
    instance_url: str | None = None
    logins: int = 0
    _held: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.credentials.check()
        if self.credentials.mode == "session":
            assert self.credentials.session_id is not None  # checked above
            self.token = self.credentials.session_id.get_secret_value()
            self.instance_url = (self.credentials.instance_url or "").rstrip("/")

    @property
    def renewable(self) -> bool:
        """Whether a new session can be had without a person (every mode but ``session``)."""
        return self.credentials.mode != "session"

    def ensure(self) -> None:
        """Log in if there is no session yet."""
        if self.token is None:
            self.login()

    def renew(self) -> bool:
        """Get a fresh session after ``INVALID_SESSION_ID``; False if the mode cannot."""
        if not self.renewable:
            return False
        log.info("sf_session_renewing", mode=self.credentials.mode)
        self.token = None
        self.login()
        return True

    def headers(self) -> dict[str, str]:
        """The Authorization header of the current session."""
        self.ensure()
        if self.token:
            self._held.add(self.token)
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        """Every credential this session holds or has sent: the configured secrets and
        each session token used (a server may echo the request's headers in its answer).
        Any text the adapter raises or reports is scrubbed of them (``scrub``)."""
        held = set(self._held)
        if self.token:
            held.add(self.token)
        return [*self.credentials.secrets(), *held]

    def scrub(self, text: str) -> str:
        """``text`` without any credential this session holds (``secrets``)."""
        return scrub(text, self.secrets())

    def login(self) -> None:
        """Obtain a session for the configured mode.

        Raises ``CrmAuthError`` when the credentials are refused, ``CrmTransientError``
        when the login server cannot be reached after retries.
        """
        mode = self.credentials.mode
        if mode == "session":
            raise CrmAuthError(
                "the configured session (CRMSYNC_SF_SESSION_ID) is invalid or expired "
                "and cannot be renewed in session mode"
            )
        self.logins += 1
        token, instance = self.policy.run(
            self._login_once, operation=f"login ({mode})", failures=SALESFORCE_FAILURES
        )
        self.token = token
        self.instance_url = (self.credentials.instance_url or instance).rstrip("/")
        log.info("sf_logged_in", mode=mode, instance_url=self.instance_url)

    # ------------------------------------------------------------------ the modes

    def _login_once(self) -> tuple[str, str]:
        mode = self.credentials.mode
        if mode == "jwt":
            return self._token_request(self._jwt_form(), self.credentials.login_url)
        if mode == "client_credentials":
            c = self.credentials
            assert c.consumer_key is not None and c.consumer_secret is not None
            form = {
                "grant_type": "client_credentials",
                "client_id": c.consumer_key,
                "client_secret": c.consumer_secret.get_secret_value(),
            }
            return self._token_request(form, c.instance_url or c.login_url)
        return self._password_login()

    def _jwt_form(self) -> dict[str, str]:
        c = self.credentials
        assert c.private_key_file is not None and c.consumer_key and c.username
        try:
            key = c.private_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"CRMSYNC_SF_PRIVATE_KEY_FILE: cannot read {c.private_key_file} ({exc.strerror})"
            ) from exc
        now = int(self.clock())
        claims = {
            "iss": c.consumer_key,
            "sub": c.username,
            "aud": c.login_url.rstrip("/"),
            "exp": now + JWT_LIFETIME_S,
        }
        try:
            assertion = jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            failure = type(exc).__name__
        else:
            failure = ""
        if failure:
            # no cause, no context (raised past the except block): the parser's error
            # may quote the private key's material
            raise ConfigError(
                f"CRMSYNC_SF_PRIVATE_KEY_FILE: {c.private_key_file} is not a usable RSA "
                f"private key ({failure})"
            ) from None
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}

    def _token_request(self, form: dict[str, str], base_url: str) -> tuple[str, str]:
        url = base_url.rstrip("/") + _TOKEN_PATH
        response = self.session.post(url, data=form, headers={"Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise ApiError(response.status_code, "SERVER_UNAVAILABLE", "login server error")
        if response.status_code != 200 or not isinstance(body, dict):
            code = str(body.get("error", "invalid_grant")) if isinstance(body, dict) else "error"
            text = str(body.get("error_description", "")) if isinstance(body, dict) else ""
            raise CrmAuthError(
                f"login ({self.credentials.mode}) refused: {code}: "
                f"{scrub(text, self.credentials.secrets())}"
            )
        token, instance = body.get("access_token"), body.get("instance_url")
        if not isinstance(token, str) or not isinstance(instance, str):
            raise CrmAuthError(f"login ({self.credentials.mode}): the answer has no session")
        return token, instance

    def _password_login(self) -> tuple[str, str]:
        from simple_salesforce.exceptions import (  # noqa: PLC0415 - only this mode needs it
            SalesforceAuthenticationFailed,
        )
        from simple_salesforce.login import SalesforceLogin  # noqa: PLC0415 - imported when used

        c = self.credentials
        assert c.username and c.password is not None and c.security_token is not None
        try:
            session_id, host = SalesforceLogin(
                username=c.username,
                password=c.password.get_secret_value(),
                security_token=c.security_token.get_secret_value(),
                domain=_domain(c.login_url),
                sf_version=c.api_version,
                session=self.session,
            )
        except SalesforceAuthenticationFailed as exc:
            code = getattr(exc, "code", "INVALID_LOGIN")
            # the server's reason (``message`` is the class's unformatted template)
            text = scrub(str(getattr(exc, "auth_message", "")), c.secrets())
            failure: Exception
            if isinstance(code, int) and code >= 500:
                failure = ApiError(code, "SERVER_UNAVAILABLE", "login server error")
            else:
                failure = CrmAuthError(f"login (password) refused: {code}: {text}")
        else:
            return str(session_id), f"https://{host}"
        # no cause, no context (raised past the except block): the login answer's body
        # may echo the password and security token
        raise failure from None


def _domain(login_url: str) -> str:
    """simple-salesforce's ``domain`` (``login``, ``test``, ``acme.my``) for a login URL."""
    host = urlsplit(login_url).hostname or ""
    suffix = ".salesforce.com"
    if not host.endswith(suffix):
        raise ConfigError("CRMSYNC_SF_LOGIN_URL: password login needs a *.salesforce.com login URL")
    return host[: -len(suffix)]
