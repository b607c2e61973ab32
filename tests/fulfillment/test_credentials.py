"""build_credential picks the azure-identity credential that PUBLISHER_CREDENTIAL_KIND names, or refuses."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    WorkloadIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from shared.config import MARKETPLACE_API_SCOPE, ConfigurationError, Settings
from shared.fulfillment.client import FulfillmentClient
from shared.fulfillment.credentials import build_credential
from shared.fulfillment.errors import FulfillmentTransportError
from tests.fulfillment import SUBSCRIPTION_ID, StaticTokenCredential
from tests.support.sandbox import running_sandbox
from tests.support.scripted_server import ScriptedResponse, ScriptedServer

TENANT = "7c2bd4f7-8a4d-4bd1-b3a2-61d5e0f8c6a1"
CLIENT = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
SANDBOX_AUTHORITY = "https://127.0.0.1:8443"


def _settings(**changes: Any) -> Settings:
    base: dict[str, Any] = {
        "publisher_tenant_id": TENANT,
        "publisher_client_id": CLIENT,
        "publisher_client_secret": "not-a-real-secret",
    }
    return Settings(**{**base, **changes})


def _self_signed_pem(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "publisher-test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = directory / "publisher.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_secret_kind_builds_a_client_secret_credential_for_the_public_cloud() -> None:
    credential = build_credential(_settings(publisher_credential_kind="secret"))
    assert isinstance(credential, ClientSecretCredential)
    # azure-identity's own fields: where tokens come from, and whether MSAL may run instance discovery.
    assert credential._authority == "https://login.microsoftonline.com"
    assert credential._instance_discovery is None


def test_a_private_authority_turns_instance_discovery_off() -> None:
    credential = build_credential(_settings(entra_authority_host=SANDBOX_AUTHORITY))
    assert isinstance(credential, ClientSecretCredential)
    assert credential._authority == SANDBOX_AUTHORITY
    assert credential._instance_discovery is False


def test_certificate_kind_loads_the_certificate(tmp_path: Path) -> None:
    path = _self_signed_pem(tmp_path)
    credential = build_credential(
        _settings(publisher_credential_kind="certificate", publisher_certificate_path=str(path))
    )
    assert isinstance(credential, CertificateCredential)


def test_certificate_kind_with_an_unreadable_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PUBLISHER_CERTIFICATE_PATH"):
        build_credential(
            _settings(
                publisher_credential_kind="certificate", publisher_certificate_path=str(tmp_path / "none.pem")
            )
        )
    with pytest.raises(ConfigurationError, match="PUBLISHER_CERTIFICATE_PATH"):
        build_credential(_settings(publisher_credential_kind="certificate"))


def test_managed_identity_federated_uses_a_managed_identity_token_as_the_assertion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ScriptedServer() as identity_endpoint:
        # The App Service managed identity protocol: azure-identity reads these two variables.
        monkeypatch.setenv("IDENTITY_ENDPOINT", identity_endpoint.base_url + "/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "local-identity-header")
        identity_endpoint.script(
            ScriptedResponse(
                200,
                body={
                    "access_token": "federation-assertion",
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": "api://AzureADTokenExchange",
                    "token_type": "Bearer",
                },
            )
        )
        credential = build_credential(
            _settings(
                publisher_credential_kind="managed_identity_federated", managed_identity_client_id="mi-client"
            )
        )
        assert isinstance(credential, ClientAssertionCredential)

        assertion = credential._func()  # what the credential will present to Entra as client_assertion

    assert assertion == "federation-assertion"
    [request] = identity_endpoint.requests
    assert request.query["resource"] == ["api://AzureADTokenExchange"]
    assert request.query["client_id"] == ["mi-client"]


def test_workload_identity_kind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    credential = build_credential(_settings(publisher_credential_kind="workload_identity"))
    assert isinstance(credential, WorkloadIdentityCredential)


def test_workload_identity_without_a_token_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="workload_identity"):
        build_credential(_settings(publisher_credential_kind="workload_identity"))


def test_unknown_kind_names_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError, match="PUBLISHER_CREDENTIAL_KIND"):
        build_credential(_settings(publisher_credential_kind="password"))
    assert "publisher credential not built" in caplog.text


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"publisher_client_secret": ""}, "PUBLISHER_CLIENT_SECRET"),
        ({"publisher_tenant_id": ""}, "PUBLISHER_TENANT_ID"),
        ({"publisher_client_id": " "}, "PUBLISHER_CLIENT_ID"),
    ],
)
def test_missing_settings_are_named(changes: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        build_credential(_settings(**changes))


def test_from_settings_builds_the_configured_credential() -> None:
    client = FulfillmentClient.from_settings(_settings())
    assert isinstance(client._credential, ClientSecretCredential)
    assert client.base_url == "https://marketplaceapi.microsoft.com/api"


def test_from_settings_applies_base_url_timeouts_and_attempts() -> None:
    with ScriptedServer() as server:
        server.script(ScriptedResponse(200, delay=1.0), ScriptedResponse(200))
        settings = _settings(
            fulfillment_base_url=server.base_url + "/api",
            fulfillment_read_timeout=0.2,
            fulfillment_max_attempts=1,
        )
        client = FulfillmentClient.from_settings(settings, credential=StaticTokenCredential())

        with pytest.raises(FulfillmentTransportError, match="ReadTimeout"):
            client.get_subscription(SUBSCRIPTION_ID)

    [request] = server.requests
    assert request.path == f"/api/saas/subscriptions/{SUBSCRIPTION_ID}"


def test_many_first_token_requests_at_once_keep_their_connections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The worker's 16 sessions all ask for a token at a cold start; over the SDK's default pool of 10
    # connections, each extra one was thrown away with a warning ("Connection pool is full").
    with running_sandbox() as sandbox:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_bundle))
        credential = build_credential(
            _settings(
                publisher_tenant_id=sandbox.publisher.tenant_id,
                publisher_client_id=sandbox.publisher.client_id,
                publisher_client_secret=sandbox.publisher.client_secret,
                entra_authority_host=sandbox.https_url,
            )
        )
        start = threading.Barrier(24)

        def first_token() -> None:
            start.wait()
            credential.get_token(MARKETPLACE_API_SCOPE)

        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            threads = [threading.Thread(target=first_token) for _ in range(24)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
