"""Webhook tokens verify against the JWKS served over HTTPS; the Fulfillment check refuses each bad rule."""

from __future__ import annotations

import ssl
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.entra.signing import AccessDenied
from sandbox.entra.stand_in import EntraStandIn
from sandbox.entra.tokens import MARKETPLACE_API_APP_ID
from tests.sandbox_entra.conftest import RunningEntra

OTHER_TENANT = "22222222-0000-4000-8000-000000000000"


def _keys_from_metadata(entra: RunningEntra) -> jwt.PyJWKClient:
    publisher_tenant = entra.identities.publisher.tenant_id
    metadata_url = entra.stand_in.openid_configuration_url(publisher_tenant)
    metadata = requests.get(metadata_url, verify=entra.ca_cert, timeout=10).json()
    return jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=ssl.create_default_context(cafile=entra.ca_cert))


def _verify_webhook_token(entra: RunningEntra, token: str) -> dict[str, Any]:
    publisher = entra.identities.publisher
    key = _keys_from_metadata(entra).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=publisher.client_id,
        issuer=f"{entra.base_url}/{publisher.tenant_id}/v2.0",
        options={"require": ["exp", "nbf", "iat", "tid", "azp"]},
    )


def test_webhook_token_verifies_with_the_served_jwks_and_carries_microsofts_claims(
    entra: RunningEntra,
) -> None:
    publisher = entra.identities.publisher

    claims = _verify_webhook_token(entra, entra.stand_in.mint_webhook_token())

    assert claims["aud"] == publisher.client_id
    assert claims["tid"] == publisher.tenant_id
    assert claims["azp"] == MARKETPLACE_API_APP_ID
    assert claims["ver"] == "2.0"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] <= claims["iat"]


def test_overrides_and_removals_change_exactly_those_claims(entra: RunningEntra) -> None:
    token = entra.stand_in.mint_webhook_token(overrides={"tid": OTHER_TENANT}, remove=("azp",))

    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["tid"] == OTHER_TENANT
    assert "azp" not in claims
    assert claims["aud"] == entra.identities.publisher.client_id


def test_negative_lifetime_gives_an_expired_token(entra: RunningEntra) -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify_webhook_token(entra, entra.stand_in.mint_webhook_token(lifetime=-60))


def test_token_signed_with_another_key_does_not_verify(entra: RunningEntra) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(jwt.InvalidSignatureError):
        _verify_webhook_token(entra, entra.stand_in.mint_webhook_token(sign_with=stranger))


def test_unknown_kid_is_not_in_the_jwks(entra: RunningEntra) -> None:
    with pytest.raises(jwt.PyJWKClientError):
        _verify_webhook_token(entra, entra.stand_in.mint_webhook_token(kid="rotated-away"))


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_forged_algorithms_are_produced_and_refused_by_an_rs256_validator(
    entra: RunningEntra, algorithm: str
) -> None:
    token = entra.stand_in.mint_webhook_token(algorithm=algorithm)

    assert jwt.get_unverified_header(token)["alg"] == algorithm
    with pytest.raises(jwt.InvalidTokenError):
        _verify_webhook_token(entra, token)


def test_jwks_endpoint_serves_the_helper_s_key_set(entra: RunningEntra) -> None:
    tenant = entra.identities.publisher.tenant_id
    for path in (f"{tenant}/discovery/v2.0/keys", f"{tenant}/discovery/keys", "common/discovery/v2.0/keys"):
        served = requests.get(f"{entra.base_url}/{path}", verify=entra.ca_cert, timeout=10).json()
        assert served == entra.stand_in.jwks()
    [key] = entra.stand_in.jwks()["keys"]
    assert key["kty"] == "RSA"
    assert key["kid"] == entra.stand_in.key_id
    assert "d" not in key  # never the private part


def _refusal(stand_in: EntraStandIn, header: str | None) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        stand_in.verify_access_token(header)
    return caught.value


def test_missing_or_malformed_authorization_is_401(entra: RunningEntra) -> None:
    token = entra.stand_in.mint_publisher_access_token()
    for header in (None, "", "Bearer", f"Basic {token}", "Bearer not-a-jwt"):
        assert _refusal(entra.stand_in, header).status == 401


@pytest.mark.parametrize(
    ("mint", "status"),
    [
        ({"overrides": {"aud": "api://something-else"}}, 401),
        ({"lifetime": -1}, 401),
        ({"overrides": {"nbf": 2**31}}, 401),
        ({"remove": ("exp",)}, 401),
        ({"algorithm": "none"}, 401),
        ({"algorithm": "HS256"}, 401),
        ({"kid": "unknown"}, 401),
        ({"overrides": {"iss": "https://attacker.example/x/v2.0"}}, 401),
        ({"overrides": {"tid": OTHER_TENANT}}, 403),
        ({"overrides": {"appid": MARKETPLACE_API_APP_ID}}, 403),
        ({"overrides": {"azp": MARKETPLACE_API_APP_ID}}, 403),
        ({"remove": ("azp", "appid")}, 403),
    ],
    ids=str,
)
def test_each_broken_rule_is_refused_with_its_status(entra: RunningEntra, mint: dict, status: int) -> None:
    token = entra.stand_in.mint_publisher_access_token(**mint)

    refusal = _refusal(entra.stand_in, f"Bearer {token}")

    assert refusal.status == status
    assert token not in refusal.reason


def test_token_signed_with_another_key_is_401(entra: RunningEntra) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = entra.stand_in.mint_publisher_access_token(sign_with=stranger)

    assert _refusal(entra.stand_in, f"Bearer {token}").status == 401


def test_access_token_expires_after_an_hour_on_the_stand_in_clock(entra: RunningEntra) -> None:
    header = f"Bearer {entra.stand_in.mint_publisher_access_token()}"
    entra.stand_in.verify_access_token(header)

    entra.clock.advance(3600)

    assert _refusal(entra.stand_in, header).reason == "token has expired"


def test_webhook_token_is_not_a_fulfillment_api_token(entra: RunningEntra) -> None:
    refusal = _refusal(entra.stand_in, f"Bearer {entra.stand_in.mint_webhook_token()}")

    assert refusal.status == 401


def test_a_token_verified_once_is_still_refused_for_another_audience(entra: RunningEntra) -> None:
    header = f"Bearer {entra.stand_in.mint_publisher_access_token()}"
    claims = entra.stand_in.verify_access_token(header)
    claims["tid"] = OTHER_TENANT  # what one caller does to its claims reaches no later caller

    assert entra.stand_in.verify_access_token(header)["tid"] != OTHER_TENANT
    with pytest.raises(AccessDenied) as caught:
        entra.stand_in.verify_graph_access_token(header)
    assert "audience" in caught.value.reason
