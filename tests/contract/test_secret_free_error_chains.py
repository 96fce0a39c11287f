"""No secret anywhere in an error's chain: not in the error, its ``__cause__`` or its
``__context__`` (``str`` and ``repr`` of each), whatever a log handler or an error tracker
walks. The boundaries where a library's error may quote a secret (the PostgreSQL driver,
the Salesforce logins and deploys, the settings) raise their own error past the ``except``
block, so the library's error is neither cause nor context.

The PostgreSQL query path needs the server at ``CRMSYNC_TEST_POSTGRES_URL`` (skipped,
saying so, without it); the others need no server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import responses
from pydantic import SecretStr

from crmsync.adapters._postgres_session import PostgresSession
from crmsync.adapters.crm.retry_policy import NO_WAIT
from crmsync.adapters.crm.salesforce_auth import (
    SalesforceAuth,
    SalesforceCredentials,
    TimeoutSession,
)
from crmsync.bootstrap import load_settings
from crmsync.errors import ConfigError, CrmAuthError, CrmSyncError, StateStoreError

PASSWORD = "pw-Sentinel-7f3a"
TOKEN = "tok-Sentinel-91c2"


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception behind it (causes and contexts, each once)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]


def chain_text(error: BaseException) -> str:
    """``str`` and ``repr`` of every exception in ``error``'s chain."""
    return "\n".join(f"{e}\n{e!r}" for e in chain(error))


def test_the_chain_walker_sees_causes_and_contexts() -> None:
    """The helper itself: a secret in a context two levels down is found."""
    try:
        try:
            raise ValueError(PASSWORD)
        except ValueError:
            raise KeyError("middle") from None  # suppressed, but still the context
    except KeyError as middle:
        outer = RuntimeError("outer")
        outer.__cause__ = middle
    assert PASSWORD in chain_text(outer)
    assert len(list(chain(outer))) == 3


# ------------------------------------------------------------------------------ PostgreSQL


def test_a_connection_string_the_driver_quotes_leaves_no_password_in_the_chain() -> None:
    """libpq quotes a badly percent-encoded password in its error: the store's error
    names the failure, and no exception in its chain holds the password."""
    url = f"postgresql://crm:{PASSWORD}%zz@127.0.0.1:1/crm"
    with pytest.raises(StateStoreError, match="cannot connect") as caught:
        PostgresSession(url, schema="crm", kind="state store", error=StateStoreError)
    assert PASSWORD not in chain_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.postgres
def test_a_failed_query_quoting_the_password_leaves_it_nowhere_in_the_chain(
    postgres_url: str,
) -> None:
    """A query whose server error quotes the password (here: the password as a number)
    fails with the store's error; the password is in no exception of the chain."""
    parts = urlsplit(postgres_url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    # the test server trusts local connections: a password in the URL is not checked
    url = urlunsplit((parts.scheme, f"{user}:{PASSWORD}@{host}", parts.path, "", ""))
    session = PostgresSession(
        url,
        schema=f"crmsync_test_{uuid.uuid4().hex[:12]}",
        kind="state store",
        error=StateStoreError,
    )
    try:

        def leak(conn: psycopg.Connection[object]) -> object:
            return conn.execute("SELECT %s::int", (PASSWORD,)).fetchone()

        with pytest.raises(StateStoreError, match="failed") as caught:
            session.run("read", leak)
    finally:
        session.close()
    assert PASSWORD not in chain_text(caught.value)
    assert "invalid input syntax" in str(caught.value)  # the server's reason is kept


# ------------------------------------------------------------------------------ Salesforce

LOGIN = "https://login.salesforce.com"


def password_auth() -> SalesforceAuth:
    credentials = SalesforceCredentials(
        mode="password",
        login_url=LOGIN,
        username="worker@example.com",
        password=SecretStr(PASSWORD),
        security_token=SecretStr(TOKEN),
        api_version="62.0",
    )
    return SalesforceAuth(credentials, TimeoutSession(5.0), policy=NO_WAIT)


def soap_fault(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        "<faultcode>INVALID_LOGIN</faultcode><detail><sf:LoginFault>"
        "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def test_a_refused_password_login_echoing_the_credentials_leaves_them_nowhere() -> None:
    """A login server that echoes the password and token in its refusal: the CrmAuthError
    says the login was refused, and no exception in its chain holds either secret."""
    with responses.RequestsMock() as server:
        server.post(
            f"{LOGIN}/services/Soap/u/62.0",
            status=500,
            body=soap_fault(f"no user with password {PASSWORD}{TOKEN} ({PASSWORD}, {TOKEN})"),
        )
        with pytest.raises(CrmAuthError, match="login \\(password\\) refused") as caught:
            password_auth().login()
    text = chain_text(caught.value)
    assert [s for s in (PASSWORD, TOKEN) if s in text] == []
    # the server's reason is shown, scrubbed (not simple-salesforce's message template)
    assert str(caught.value) == (
        "login (password) refused: INVALID_LOGIN: no user with password *** (***, ***)"
    )


def test_a_login_server_failure_echoing_the_credentials_leaves_them_nowhere() -> None:
    """A 5xx login answer (not XML) that echoes the credentials, on every retry: the
    transient error's chain holds neither secret."""
    with responses.RequestsMock() as server:
        server.post(
            f"{LOGIN}/services/Soap/u/62.0",
            status=503,
            body=f"upstream said: password={PASSWORD} token={TOKEN}",
        )
        with pytest.raises(CrmSyncError) as caught:
            password_auth().login()
    text = chain_text(caught.value)
    assert [s for s in (PASSWORD, TOKEN) if s in text] == []


def test_a_private_key_that_does_not_parse_leaves_no_key_material_in_the_chain(
    tmp_path: Path,
) -> None:
    """JWT mode with a key file holding text that is no key: ConfigError names the file,
    and no exception in its chain holds the file's content."""
    key = tmp_path / "key.pem"
    material = f"MIIEvQ{PASSWORD}QEFAASCBKcwggSjAgEAAoIBAQ"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{material}\n-----END PRIVATE KEY-----\n")
    credentials = SalesforceCredentials(
        mode="jwt",
        login_url=LOGIN,
        consumer_key="3MVG9-consumer",
        private_key_file=key,
        username="worker@example.com",
    )
    with pytest.raises(ConfigError, match="not a usable RSA private key") as caught:
        SalesforceAuth(credentials, TimeoutSession(5.0), policy=NO_WAIT).login()
    assert PASSWORD not in chain_text(caught.value)


# ------------------------------------------------------------------------------ settings


def test_a_setting_that_does_not_validate_leaves_its_value_nowhere_in_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state URL given as a list (pydantic quotes the input value in its errors): the
    ConfigError names the setting, and no exception in its chain holds the password."""
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="CRMSYNC_STATE_URL") as caught:
        load_settings(state_url=[f"postgresql://crm:{PASSWORD}@db/crm"])
    assert PASSWORD not in chain_text(caught.value)


def test_a_settings_file_that_is_not_toml_leaves_its_secrets_nowhere_in_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crmsync.toml with a syntax error after a password: the ConfigError names the file
    and line, and no exception in its chain holds the file's content."""
    config = tmp_path / "crmsync.toml"
    config.write_text(f'sf_password = "{PASSWORD}"\nstate_url = = "x"\n')
    monkeypatch.setenv("CRMSYNC_CONFIG", str(config))
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings()
    assert PASSWORD not in chain_text(caught.value)
    assert caught.value.__context__ is None
