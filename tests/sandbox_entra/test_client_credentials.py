"""The publisher's app gets Fulfillment API tokens the way production code does: azure-identity over HTTPS."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from sandbox.entra.tokens import MARKETPLACE_API_APP_ID, MARKETPLACE_SCOPE
from tests.sandbox_entra.conftest import RunningEntra


def _credential(entra: RunningEntra, *, tenant: str | None = None, secret: str | None = None):
    publisher = entra.identities.publisher
    return ClientSecretCredential(
        tenant or publisher.tenant_id,
        publisher.client_id,
        secret or publisher.client_secret,
        authority=entra.base_url,
        disable_instance_discovery=True,
        connection_verify=entra.ca_cert,
    )


def test_azure_identity_token_is_accepted_by_the_fulfillment_check(entra: RunningEntra) -> None:
    publisher = entra.identities.publisher

    token = _credential(entra).get_token(MARKETPLACE_SCOPE)

    claims = entra.stand_in.verify_access_token(f"Bearer {token.token}")
    assert claims["aud"] == MARKETPLACE_API_APP_ID
    assert claims["iss"] == f"{entra.base_url}/{publisher.tenant_id}/v2.0"
    assert claims["tid"] == publisher.tenant_id
    assert claims["azp"] == claims["appid"] == publisher.client_id
    assert claims["oid"] == claims["sub"] == publisher.service_principal_id
    assert claims["exp"] - claims["iat"] == 3600
    assert 3500 < token.expires_on - time.time() <= 3600


def test_wrong_secret_is_refused(entra: RunningEntra) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        _credential(entra, secret="not-the-secret").get_token(MARKETPLACE_SCOPE)


def test_token_for_another_tenant_is_refused(entra: RunningEntra) -> None:
    contoso = entra.identities.tenants[0].tenant_id

    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        _credential(entra, tenant=contoso).get_token(MARKETPLACE_SCOPE)


def test_scope_other_than_the_marketplace_api_is_refused(entra: RunningEntra) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS1002012"):
        _credential(entra).get_token("https://graph.microsoft.com/.default")


def _token_endpoint(entra: RunningEntra, tenant: str, version: str = "v2.0") -> str:
    path = "oauth2/token" if version == "v1" else "oauth2/v2.0/token"
    return f"{entra.base_url}/{tenant}/{path}"


@pytest.mark.parametrize(
    ("change", "expected_error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, "invalid_client"),
        ({"client_secret": ""}, "invalid_client"),
    ],
)
def test_bad_client_gets_entra_error_json_with_401(
    entra: RunningEntra, change: dict, expected_error: str
) -> None:
    publisher = entra.identities.publisher
    form = {
        "grant_type": "client_credentials",
        "client_id": publisher.client_id,
        "client_secret": publisher.client_secret,
        "scope": MARKETPLACE_SCOPE,
        **change,
    }

    response = requests.post(
        _token_endpoint(entra, publisher.tenant_id), data=form, verify=entra.ca_cert, timeout=10
    )

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == expected_error
    assert body["error_description"].startswith("AADSTS")
    assert "wrong" not in response.text  # the offered secret is never echoed


def test_client_secret_basic_is_accepted(entra: RunningEntra) -> None:
    publisher = entra.identities.publisher

    response = requests.post(
        _token_endpoint(entra, publisher.tenant_id),
        data={"grant_type": "client_credentials", "scope": MARKETPLACE_SCOPE},
        auth=(publisher.client_id, publisher.client_secret),
        verify=entra.ca_cert,
        timeout=10,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    entra.stand_in.verify_access_token(f"Bearer {body['access_token']}")


def test_v1_endpoint_with_resource_issues_a_v1_token_the_check_accepts(entra: RunningEntra) -> None:
    publisher = entra.identities.publisher
    form = {
        "grant_type": "client_credentials",
        "client_id": publisher.client_id,
        "client_secret": publisher.client_secret,
        "resource": MARKETPLACE_API_APP_ID,
    }

    response = requests.post(
        _token_endpoint(entra, publisher.tenant_id, "v1"), data=form, verify=entra.ca_cert, timeout=10
    )

    assert response.status_code == 200, response.text
    claims = entra.stand_in.verify_access_token(f"Bearer {response.json()['access_token']}")
    assert claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{publisher.tenant_id}/"
    assert claims["appid"] == publisher.client_id
    assert "azp" not in claims


def test_retired_fulfillment_resource_is_refused_on_v1(entra: RunningEntra) -> None:
    publisher = entra.identities.publisher
    form = {
        "grant_type": "client_credentials",
        "client_id": publisher.client_id,
        "client_secret": publisher.client_secret,
        "resource": "62d94f6c-d599-489b-a797-3e10e42fbe22",
    }

    response = requests.post(
        _token_endpoint(entra, publisher.tenant_id, "v1"), data=form, verify=entra.ca_cert, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_unsupported_grant_type_is_refused(entra: RunningEntra) -> None:
    response = requests.post(
        _token_endpoint(entra, entra.identities.publisher.tenant_id),
        data={"grant_type": "password", "username": "x", "password": "y"},
        verify=entra.ca_cert,
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_client_assertion_is_reported_as_unsupported(entra: RunningEntra) -> None:
    publisher = entra.identities.publisher
    form = {
        "grant_type": "client_credentials",
        "client_id": publisher.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "eyJhbGciOiJub25lIn0.e30.",
        "scope": MARKETPLACE_SCOPE,
    }

    response = requests.post(
        _token_endpoint(entra, publisher.tenant_id), data=form, verify=entra.ca_cert, timeout=10
    )

    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]
