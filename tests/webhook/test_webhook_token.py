"""The token validator under the webhook policy, against a real OpenID/JWKS server on 127.0.0.1: one rule
broken at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import MARKETPLACE_API_APP_ID, Settings
from shared.identity.signing_keys import SigningKeys, SigningKeysUnavailableError
from shared.identity.token_policies import webhook_policy, webhook_policy_from_settings
from shared.identity.tokens import InvalidTokenError, TokenValidator, bearer_token
from tests.support.oidc_server import OidcServer
from tests.support.ports import free_port
from tests.support.tokens import (
    marketplace_claims,
    mint,
    mint_hs256_with_public_key,
    mint_unsigned,
    new_signing_key,
)

TENANT = str(uuid.uuid4())
AUDIENCE = str(uuid.uuid4())
OTHER_APP = str(uuid.uuid4())


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcServer]:
    with OidcServer() as server:
        yield server


def webhook_validator(metadata_url: str, keys: SigningKeys | None = None) -> TokenValidator:
    return TokenValidator(webhook_policy(metadata_url, AUDIENCE, TENANT), keys or SigningKeys())


@pytest.fixture
def validator(oidc: OidcServer) -> TokenValidator:
    return webhook_validator(oidc.metadata_url(TENANT))


def claims_for(oidc: OidcServer, **overrides: object) -> dict[str, object]:
    return marketplace_claims(TENANT, AUDIENCE, authority=oidc.base_url, **overrides)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def validate(validator: TokenValidator, header: str | None) -> dict[str, object]:
    """What the webhook does with its Authorization header."""
    return validator.validate(bearer_token(header))


def refusal(validator: TokenValidator, header: str | None) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        validate(validator, header)
    return caught.value.reason


def test_accepts_a_v2_token_naming_the_marketplace_in_azp(oidc: OidcServer, validator: TokenValidator):
    claims = validate(validator, bearer(mint(claims_for(oidc), oidc.signing_key)))

    assert claims["azp"] == MARKETPLACE_API_APP_ID
    assert claims["tid"] == TENANT
    assert claims["iss"] == f"{oidc.base_url}/{TENANT}/v2.0"


def test_accepts_a_v1_token_with_appid_and_the_sts_issuer(oidc: OidcServer, validator: TokenValidator):
    claims = validate(validator, bearer(mint(claims_for(oidc, version="v1"), oidc.signing_key)))

    assert claims["appid"] == MARKETPLACE_API_APP_ID
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"


def test_v1_metadata_url_accepts_the_same_tokens(oidc: OidcServer):
    validator = webhook_validator(oidc.metadata_url(TENANT, version="v1"))

    for version in ("v1", "v2"):
        assert validate(validator, bearer(mint(claims_for(oidc, version=version), oidc.signing_key)))


def test_bearer_scheme_is_case_insensitive(oidc: OidcServer, validator: TokenValidator):
    token = mint(claims_for(oidc), oidc.signing_key)

    assert validate(validator, f"bEaReR   {token}")["tid"] == TENANT


def test_from_settings_takes_tenant_audience_metadata_and_skew(oidc: OidcServer):
    settings = Settings.from_env(
        {
            "PUBLISHER_TENANT_ID": TENANT,
            "PUBLISHER_CLIENT_ID": AUDIENCE,
            "WEBHOOK_OPENID_CONFIG_URL": oidc.metadata_url(TENANT),
            "WEBHOOK_CLOCK_SKEW_SECONDS": "0",
        }
    )
    validator = TokenValidator(webhook_policy_from_settings(settings))
    just_expired = claims_for(oidc, now=time.time() - 3602)

    assert validate(validator, bearer(mint(claims_for(oidc), oidc.signing_key)))
    assert refusal(validator, bearer(mint(just_expired, oidc.signing_key))) == "token has expired"


def test_clock_skew_tolerates_a_token_expired_moments_ago(oidc: OidcServer, validator: TokenValidator):
    expired_a_minute_ago = claims_for(oidc, now=time.time() - 3660)

    assert validate(validator, bearer(mint(expired_a_minute_ago, oidc.signing_key)))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"now": time.time() - 4000}, "token has expired"),
        ({"nbf": int(time.time()) + 900}, "token is not valid yet"),
        ({"aud": str(uuid.uuid4())}, "token is for another audience (aud)"),
        ({"aud": f"api://{AUDIENCE}"}, "token is for another audience (aud)"),
        ({"tid": str(uuid.uuid4())}, "token is for another tenant (tid)"),
        ({"iss": f"https://sts.windows.net/{uuid.uuid4()}/"}, "token is from an unexpected issuer (iss)"),
        (
            {"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0"},
            "token is from an unexpected issuer (iss)",
        ),
        ({"azp": OTHER_APP}, "token was issued to an application that is not the marketplace"),
        (
            {"version": "v1", "appid": OTHER_APP},
            "token was issued to an application that is not the marketplace",
        ),
        ({"azp": None}, "token names no calling application (appid/azp)"),
        (
            {"azp": "62d94f6c-d599-489b-a797-3e10e42fbe22"},
            "token was issued to an application that is not the marketplace",
        ),
        ({"exp": None}, "token lacks the required claim 'exp'"),
        ({"tid": None}, "token lacks the required claim 'tid'"),
        ({"iss": None}, "token lacks the required claim 'iss'"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "other-audience",
        "api-uri-audience",
        "other-tenant",
        "other-tenant-issuer",
        "public-cloud-issuer-for-local-authority",
        "other-app-azp",
        "other-app-appid",
        "no-caller-app",
        "retired-fulfillment-app",
        "no-exp",
        "no-tid",
        "no-iss",
    ],
)
def test_refuses_a_token_breaking_one_rule(
    oidc: OidcServer, validator: TokenValidator, overrides: dict[str, object], reason: str
):
    token = mint(claims_for(oidc, **overrides), oidc.signing_key)

    assert refusal(validator, bearer(token)) == reason


def test_refuses_a_signature_from_another_key_with_the_published_kid(
    oidc: OidcServer, validator: TokenValidator
):
    impostor = new_signing_key(kid=oidc.signing_key.kid)

    assert refusal(validator, bearer(mint(claims_for(oidc), impostor))) == "token signature does not verify"


def test_refuses_alg_none(oidc: OidcServer, validator: TokenValidator):
    token = mint_unsigned(claims_for(oidc), kid=oidc.signing_key.kid)

    assert refusal(validator, bearer(token)) == "token algorithm 'none' is not allowed"


def test_refuses_hs256_signed_with_the_public_key(oidc: OidcServer, validator: TokenValidator):
    token = mint_hs256_with_public_key(claims_for(oidc), oidc.signing_key)

    assert refusal(validator, bearer(token)) == "token algorithm 'HS256' is not allowed"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("   ", "missing bearer token"),
        ("Bearer", "authorization header is not a bearer token"),
        ("Basic dXNlcjpwYXNz", "authorization header is not a bearer token"),
        ("Bearer not-a-jwt", "token is not a JWT"),
        ("Bearer a.b.c", "token is not a readable JWT"),
    ],
)
def test_refuses_a_missing_or_garbled_header(validator: TokenValidator, header: str | None, reason: str):
    assert refusal(validator, header) == reason


def test_refuses_a_token_without_kid(oidc: OidcServer, validator: TokenValidator):
    token = mint(claims_for(oidc), oidc.signing_key, headers={"kid": None})

    assert refusal(validator, bearer(token)) == "token header has no key id (kid)"


def test_validation_is_safe_from_many_threads(oidc: OidcServer, validator: TokenValidator):
    token = bearer(mint(claims_for(oidc), oidc.signing_key))
    results: list[str] = []

    def validate_once() -> None:
        results.append(validate(validator, token)["tid"])

    threads = [threading.Thread(target=validate_once) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [TENANT] * 16


class TestKeyRotation:
    """Unknown kids refresh the JWKS, but never more than once per cooldown; metadata is read once."""

    @pytest.fixture
    def server(self) -> Iterator[OidcServer]:
        with OidcServer() as server:
            yield server

    def test_a_rotated_key_is_found_by_a_refresh_after_the_cooldown(self, server: OidcServer):
        validator = webhook_validator(server.metadata_url(TENANT), SigningKeys(refresh_cooldown_seconds=0.5))
        old_key = server.signing_key
        assert validate(validator, bearer(mint(claims_for(server), old_key)))
        new_key = server.rotate()
        new_token = bearer(mint(claims_for(server), new_key))

        assert refusal(validator, new_token) == "token is signed with an unknown key"
        time.sleep(0.6)
        assert validate(validator, new_token)["tid"] == TENANT
        assert (
            refusal(validator, bearer(mint(claims_for(server), old_key)))
            == "token is signed with an unknown key"
        )
        assert server.metadata_fetches == 1
        assert server.jwks_fetches == 2

    def test_a_flood_of_made_up_kids_fetches_the_jwks_at_most_once_per_cooldown(self, server: OidcServer):
        validator = webhook_validator(server.metadata_url(TENANT), SigningKeys(refresh_cooldown_seconds=60))
        good_token = bearer(mint(claims_for(server), server.signing_key))
        assert validate(validator, good_token)

        for _ in range(50):
            token = mint(claims_for(server), server.signing_key, headers={"kid": uuid.uuid4().hex})
            assert refusal(validator, bearer(token)) == "token is signed with an unknown key"

        assert validate(validator, good_token)
        assert server.metadata_fetches == 1
        assert server.jwks_fetches == 1


def test_unreachable_metadata_is_our_failure_and_is_not_retried_in_a_loop():
    validator = webhook_validator(
        f"http://127.0.0.1:{free_port()}/{TENANT}/v2.0/.well-known/openid-configuration",
        SigningKeys(http_timeout_seconds=2),
    )
    token = bearer(mint(marketplace_claims(TENANT, AUDIENCE), new_signing_key()))

    with pytest.raises(SigningKeysUnavailableError, match="OpenID metadata unavailable"):
        validate(validator, token)
    with pytest.raises(SigningKeysUnavailableError, match="failed recently"):
        validate(validator, token)


def test_refuses_to_start_without_tenant_or_audience(oidc: OidcServer):
    with pytest.raises(ValueError, match="required"):
        webhook_policy(oidc.metadata_url(TENANT), "", TENANT)


def test_https_metadata_is_trusted_through_requests_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with OidcServer(tls_dir=tmp_path) as server:
        token = bearer(mint(claims_for(server), server.signing_key))
        untrusting = webhook_validator(server.metadata_url(TENANT))
        with pytest.raises(SigningKeysUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            validate(untrusting, token)

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
        trusting = webhook_validator(server.metadata_url(TENANT))

        assert server.base_url.startswith("https://")
        assert validate(trusting, token)["iss"] == f"{server.base_url}/{TENANT}/v2.0"
        assert server.jwks_fetches == 1
