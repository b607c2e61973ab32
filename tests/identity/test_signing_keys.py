"""The one signing-key cache, shared by the webhook and ID-token validators, against a real JWKS server.

The server (tests/support/oidc_server.py) listens on 127.0.0.1 and counts what it serves; with
`jwks_tenant="common"` the publisher tenant's metadata and the `/common` sign-in metadata name the same JWKS
URL, so both validators read one key set, as they share one refresh budget.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from shared.app_context import Services
from shared.config import Settings
from shared.identity.signing_keys import SigningKeys
from shared.identity.token_policies import id_token_policy, webhook_policy
from shared.identity.tokens import ANY_TENANT, InvalidTokenError, TokenValidator
from tests.support.oidc_server import OidcServer
from tests.support.tokens import SigningKey, marketplace_claims, mint, new_signing_key

PUBLISHER_TENANT = str(uuid.uuid4())
WEBHOOK_AUDIENCE = str(uuid.uuid4())
SSO_CLIENT_ID = str(uuid.uuid4())
BUYER_TENANT = str(uuid.uuid4())


class Clock:
    """Time for the cache, moved by the test: a slow machine cannot make a cooldown or lifespan pass early."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[OidcServer]:
    with OidcServer(jwks_tenant=ANY_TENANT) as running:
        yield running


def validators(server: OidcServer, keys: SigningKeys) -> tuple[TokenValidator, TokenValidator]:
    webhook = TokenValidator(
        webhook_policy(server.metadata_url(PUBLISHER_TENANT), WEBHOOK_AUDIENCE, PUBLISHER_TENANT), keys
    )
    sign_in = TokenValidator(id_token_policy(server.base_url, SSO_CLIENT_ID), keys)
    return webhook, sign_in


def webhook_token(server: OidcServer, key: SigningKey, **headers: object) -> str:
    claims = marketplace_claims(PUBLISHER_TENANT, WEBHOOK_AUDIENCE, authority=server.base_url)
    return mint(claims, key, headers=dict(headers) or None)


def id_token(server: OidcServer, key: SigningKey, **headers: object) -> str:
    claims = marketplace_claims(BUYER_TENANT, SSO_CLIENT_ID, authority=server.base_url, azp=None)
    return mint(claims, key, headers=dict(headers) or None)


def refusal(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        validator.validate(token)
    return caught.value.reason


def test_both_validators_read_one_key_set_fetched_once(server: OidcServer) -> None:
    webhook, sign_in = validators(server, SigningKeys())

    assert webhook.validate(webhook_token(server, server.signing_key))["tid"] == PUBLISHER_TENANT
    assert sign_in.validate(id_token(server, server.signing_key))["tid"] == BUYER_TENANT

    assert server.jwks_fetches == 1
    # One metadata document per policy (the publisher tenant's and /common), each read once.
    assert server.metadata_fetches == 2


def test_separate_caches_would_each_fetch_the_keys(server: OidcServer) -> None:
    """The control for the test above: sharing comes from the one `SigningKeys`, not from the server."""
    webhook, _ = validators(server, SigningKeys())
    _, sign_in = validators(server, SigningKeys())

    webhook.validate(webhook_token(server, server.signing_key))
    sign_in.validate(id_token(server, server.signing_key))

    assert server.jwks_fetches == 2


def test_unknown_kids_from_both_validators_refresh_once_per_cooldown(server: OidcServer) -> None:
    clock = Clock()
    webhook, sign_in = validators(server, SigningKeys(refresh_cooldown_seconds=30, clock=clock))
    assert webhook.validate(webhook_token(server, server.signing_key))
    clock.now += 31

    # A flood of made-up kids, alternating between the two uses of the JWKS: one refetch for all of them.
    for index in range(40):
        validator, token = (
            (webhook, webhook_token(server, server.signing_key, kid=uuid.uuid4().hex))
            if index % 2
            else (sign_in, id_token(server, server.signing_key, kid=uuid.uuid4().hex))
        )
        assert refusal(validator, token) == "token is signed with an unknown key"
    assert server.jwks_fetches == 2

    # Within the cooldown a genuinely rotated key is not fetched yet, by either validator...
    new_key = server.rotate()
    clock.now += 29
    assert refusal(sign_in, id_token(server, new_key)) == "token is signed with an unknown key"
    assert server.jwks_fetches == 2
    clock.now += 1
    # ...after it, one refresh by one validator makes the new key known to the other one as well.
    assert webhook.validate(webhook_token(server, new_key))
    assert sign_in.validate(id_token(server, new_key))
    assert server.jwks_fetches == 3
    assert server.metadata_fetches == 2


def test_a_removed_key_stops_being_trusted_when_the_key_set_expires(server: OidcServer) -> None:
    clock = Clock()
    keys = SigningKeys(lifespan_seconds=3600, refresh_cooldown_seconds=30, clock=clock)
    webhook, sign_in = validators(server, keys)
    old_key = server.signing_key
    assert webhook.validate(webhook_token(server, old_key))
    server.set_keys([new_signing_key()])

    # Still within the key set's lifespan: the old key is trusted (Entra announces removals in advance).
    clock.now += 3599
    assert sign_in.validate(id_token(server, old_key))
    assert server.jwks_fetches == 1
    clock.now += 1

    # The lifespan bounds the cache whatever the cooldown: the expired set is fetched again, once.
    assert refusal(sign_in, id_token(server, old_key)) == "token is signed with an unknown key"
    assert refusal(webhook, webhook_token(server, old_key)) == "token is signed with an unknown key"
    assert server.jwks_fetches == 2


def test_concurrent_first_use_fetches_metadata_and_keys_once(server: OidcServer) -> None:
    webhook, sign_in = validators(server, SigningKeys())
    tokens = [
        (webhook, webhook_token(server, server.signing_key)),
        (sign_in, id_token(server, server.signing_key)),
    ]
    results: list[str] = []
    start = threading.Barrier(16)

    def validate(validator: TokenValidator, token: str) -> None:
        start.wait()
        results.append(str(validator.validate(token)["tid"]))

    threads = [threading.Thread(target=validate, args=tokens[index % 2]) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == sorted([PUBLISHER_TENANT, BUYER_TENANT] * 8)
    assert server.jwks_fetches == 1
    assert server.metadata_fetches == 2


def test_the_composition_root_gives_both_validators_the_same_cache(server: OidcServer) -> None:
    settings = Settings.from_env(
        {
            "PUBLISHER_TENANT_ID": PUBLISHER_TENANT,
            "PUBLISHER_CLIENT_ID": WEBHOOK_AUDIENCE,
            "WEBHOOK_OPENID_CONFIG_URL": server.metadata_url(PUBLISHER_TENANT),
            "SSO_AUTHORITY": server.base_url,
            "SSO_CLIENT_ID": SSO_CLIENT_ID,
        }
    )
    app = Services(settings)

    assert app.webhook_validator.validate(webhook_token(server, server.signing_key))
    assert app.id_token_validator.validate(id_token(server, server.signing_key))
    assert server.jwks_fetches == 1
