"""The token validator under the ID-token policy, against the sandbox's Entra ID over HTTPS: each rule
refuses a token on its own."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.server import RunningSandbox
from shared.identity.id_token import IdTokenClaims, claims_of
from shared.identity.signing_keys import SigningKeys, SigningKeysUnavailableError
from shared.identity.token_policies import id_token_policy
from shared.identity.tokens import InvalidTokenError, TokenValidator
from tests.support.sandbox import running_sandbox

SSO_CLIENT_ID = "bbbbbbbb-0000-4000-8000-000000000001"
CONTOSO = "11111111-0000-4000-8000-000000000000"
FABRIKAM = "22222222-0000-4000-8000-000000000000"
ADELE = "11111111-0000-4000-8000-000000000001"
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
PAT = "00000000-0000-0000-4a1b-000000000001"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as running:
        yield running


def id_token_validator(sandbox: RunningSandbox, context: ssl.SSLContext) -> TokenValidator:
    return TokenValidator(id_token_policy(sandbox.https_url, SSO_CLIENT_ID), SigningKeys(ssl_context=context))


@pytest.fixture
def validator(sandbox: RunningSandbox) -> TokenValidator:
    return id_token_validator(sandbox, ssl.create_default_context(cafile=str(sandbox.ca_bundle)))


def validate(validator: TokenValidator, token: str, nonce: str | None = None) -> IdTokenClaims:
    """What the sign-in does with the ID token msal hands back."""
    return claims_of(validator.validate(token, nonce=nonce))


def id_token(sandbox: RunningSandbox, tenant_id: str = CONTOSO, object_id: str = ADELE, **knobs: Any) -> str:
    """An ID token as the sandbox's Entra signs them; `knobs` break one rule (see mint_webhook_token)."""
    overrides = {
        "aud": SSO_CLIENT_ID,
        "iss": sandbox.entra.issuer(tenant_id),
        "tid": tenant_id,
        "oid": object_id,
        "sub": "pairwise-subject",
        "name": "Adele Vance",
        "preferred_username": "adele.vance@contoso.onmicrosoft.com",
        "email": "adele.vance@contoso.com",
        "nonce": "expected-nonce",
        **knobs.pop("overrides", {}),
    }
    return sandbox.entra.mint_webhook_token(overrides=overrides, **knobs)


def test_a_genuine_token_gives_tenant_and_object_id(
    sandbox: RunningSandbox, validator: TokenValidator
) -> None:
    claims = validate(validator, id_token(sandbox), nonce="expected-nonce")
    assert (claims.tenant_id, claims.object_id) == (CONTOSO, ADELE)
    assert claims.email == "adele.vance@contoso.com"
    assert claims.preferred_username == "adele.vance@contoso.onmicrosoft.com"


def test_a_personal_account_token_is_accepted_with_the_msa_issuer(
    sandbox: RunningSandbox, validator: TokenValidator
) -> None:
    claims = validate(validator, id_token(sandbox, MSA_TENANT, PAT))
    assert claims.tenant_id == MSA_TENANT


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"sign_with": rsa.generate_private_key(public_exponent=65537, key_size=2048)}, "signature"),
        ({"kid": "unknown-key"}, "unknown key"),
        ({"algorithm": "HS256"}, "algorithm 'HS256' is not allowed"),
        ({"algorithm": "none"}, "algorithm 'none' is not allowed"),
        ({"overrides": {"aud": "another-app"}}, "audience"),
        ({"lifetime": -900}, "expired"),
        ({"overrides": {"iss": "https://login.example/11111111-0000-4000-8000-000000000000/v2.0"}}, "issuer"),
        ({"remove": ("oid",)}, "lacks the required claim 'oid'"),
        ({"remove": ("tid",)}, "lacks the required claim 'tid'"),
    ],
    ids=[
        "other-key",
        "unknown-kid",
        "hs256",
        "none",
        "wrong-aud",
        "expired",
        "foreign-issuer",
        "no-oid",
        "no-tid",
    ],
)
def test_a_token_breaking_one_rule_is_refused(
    sandbox: RunningSandbox, validator: TokenValidator, knobs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidTokenError, match=reason):
        validate(validator, id_token(sandbox, **knobs))


def test_the_issuer_must_be_that_of_the_tokens_own_tenant(
    sandbox: RunningSandbox, validator: TokenValidator
) -> None:
    # Signed by Entra, but a Fabrikam tid inside a Contoso-issued token: one tenant posing as another.
    forged = id_token(sandbox, overrides={"tid": FABRIKAM, "iss": sandbox.entra.issuer(CONTOSO)})
    with pytest.raises(InvalidTokenError, match="issuer does not match its tenant"):
        validate(validator, forged)


def test_a_nonce_from_another_sign_in_is_refused(sandbox: RunningSandbox, validator: TokenValidator) -> None:
    with pytest.raises(InvalidTokenError, match="nonce"):
        validate(validator, id_token(sandbox), nonce="another-sign-in")


def test_garbage_is_refused_before_any_key_lookup(validator: TokenValidator) -> None:
    with pytest.raises(InvalidTokenError, match="not a JWT"):
        validate(validator, "not-a-token")


def test_unreachable_metadata_is_our_problem_not_the_buyers(sandbox: RunningSandbox) -> None:
    untrusted = id_token_validator(sandbox, ssl.create_default_context())
    with pytest.raises(SigningKeysUnavailableError):
        validate(untrusted, id_token(sandbox))
