"""OpenID metadata as Entra serves it, per tenant segment, and the stand-in's routing contract."""

from __future__ import annotations

import requests
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from sandbox.identities import MSA_TENANT_ID
from tests.sandbox_entra.conftest import RunningEntra


def _get(entra: RunningEntra, path: str) -> requests.Response:
    return requests.get(f"{entra.base_url}/{path}", verify=entra.ca_cert, timeout=10)


def test_tenant_metadata_names_the_tenant_issuer_and_its_endpoints(entra: RunningEntra) -> None:
    tenant = entra.identities.publisher.tenant_id

    metadata = _get(entra, f"{tenant}/v2.0/.well-known/openid-configuration").json()

    assert metadata["issuer"] == f"{entra.base_url}/{tenant}/v2.0"
    assert metadata["token_endpoint"] == f"{entra.base_url}/{tenant}/oauth2/v2.0/token"
    assert metadata["authorization_endpoint"] == f"{entra.base_url}/{tenant}/oauth2/v2.0/authorize"
    assert metadata["jwks_uri"] == f"{entra.base_url}/{tenant}/discovery/v2.0/keys"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in metadata["response_types_supported"]
    assert (
        entra.stand_in.openid_configuration_url(tenant)
        == f"{entra.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
    )


def test_multi_tenant_metadata_carries_the_issuer_placeholder(entra: RunningEntra) -> None:
    for alias in ("common", "organizations"):
        metadata = _get(entra, f"{alias}/v2.0/.well-known/openid-configuration").json()
        assert metadata["issuer"] == f"{entra.base_url}/{{tenantid}}/v2.0"
        assert metadata["jwks_uri"] == f"{entra.base_url}/{alias}/discovery/v2.0/keys"


def test_consumers_metadata_names_the_msa_tenant(entra: RunningEntra) -> None:
    metadata = _get(entra, "consumers/v2.0/.well-known/openid-configuration").json()

    assert metadata["issuer"] == f"{entra.base_url}/{MSA_TENANT_ID}/v2.0"


def test_v1_metadata_points_at_the_v1_key_set(entra: RunningEntra) -> None:
    tenant = entra.identities.publisher.tenant_id

    metadata = _get(entra, f"{tenant}/.well-known/openid-configuration").json()

    assert metadata["issuer"] == f"https://sts.windows.net/{tenant}/"
    assert metadata["jwks_uri"] == f"{entra.base_url}/{tenant}/discovery/keys"
    assert _get(entra, f"{tenant}/discovery/keys").json() == entra.stand_in.jwks()


def test_unknown_tenant_is_an_entra_error(entra: RunningEntra) -> None:
    response = _get(entra, "99999999-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]


def test_wrong_method_on_an_entra_path_is_405(entra: RunningEntra) -> None:
    response = _get(entra, "common/oauth2/v2.0/token")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_paths_that_are_not_entra_s_are_left_to_the_caller(entra: RunningEntra) -> None:
    for path in ("/api/saas/subscriptions", "/", "/common", "/common/oauth2/v2.0/logout"):
        request = Request(EnvironBuilder(path=path, base_url=entra.base_url).get_environ())
        assert entra.stand_in.dispatch(request) is None, path


def test_metadata_is_served_over_plain_http_routing_too(entra: RunningEntra) -> None:
    # The sandbox also listens on plain HTTP; issuers stay the HTTPS origin whichever listener answers.
    environ = EnvironBuilder(
        path="/common/v2.0/.well-known/openid-configuration", base_url="http://127.0.0.1:1"
    )
    response = entra.stand_in.dispatch(Request(environ.get_environ()))

    assert response is not None
    assert response.status_code == 200
    assert response.json["issuer"].startswith(entra.base_url)
