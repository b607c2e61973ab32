"""The webhook's cache of validated tokens, against a real JWKS server: what a hit must still prove.

Microsoft reuses one token for many webhooks, so a repeat skips the RSA check; these tests pin what it may
not skip: the token's lifetime against the clock, its key still being published, the entry's own age
bound, the bound on entries, and that only the exact bytes of a token that passed are ever remembered,
under their digest. The cache's clocks are moved by the tests (the monotonic one that ages entries and the
wall clock a hit reads `exp`/`nbf` against); full validation keeps PyJWT's real clock.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from shared.identity.signing_keys import SigningKeys
from shared.identity.token_cache import ValidatedTokens, token_digest
from shared.identity.token_policies import webhook_policy
from shared.identity.tokens import InvalidTokenError, TokenValidator
from tests.support.oidc_server import OidcServer
from tests.support.tokens import SigningKey, marketplace_claims, mint, new_signing_key

TENANT = str(uuid.uuid4())
AUDIENCE = str(uuid.uuid4())
LEEWAY = 300


class Clock:
    """Time moved by the test, never by the machine."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[OidcServer]:
    with OidcServer() as running:
        yield running


def validator(server: OidcServer, cache: ValidatedTokens, keys: SigningKeys | None = None) -> TokenValidator:
    policy = webhook_policy(server.metadata_url(TENANT), AUDIENCE, TENANT, leeway_seconds=LEEWAY)
    return TokenValidator(policy, keys or SigningKeys(), cache=cache)


def token(server: OidcServer, key: SigningKey | None = None, **claims: object) -> str:
    return mint(
        marketplace_claims(TENANT, AUDIENCE, authority=server.base_url, **claims), key or server.signing_key
    )


def refusal(checker: TokenValidator, candidate: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        checker.validate(candidate)
    return caught.value.reason


def test_a_remembered_token_past_its_expiry_and_leeway_is_refused(server: OidcServer) -> None:
    wall = Clock(time.time())
    cache = ValidatedTokens(clock=Clock(0.0), wall_clock=wall)
    checker = validator(server, cache)
    genuine = token(server, lifetime_seconds=60, now=wall.now)
    expires = int(wall.now) + 60

    assert checker.validate(genuine)["tid"] == TENANT
    assert token_digest(genuine) in cache
    wall.now = expires + LEEWAY - 0.5
    assert checker.validate(genuine)["tid"] == TENANT
    wall.now = expires + LEEWAY
    assert refusal(checker, genuine) == "token has expired"


def test_a_remembered_token_is_refused_before_its_not_before_time(server: OidcServer) -> None:
    wall = Clock(time.time())
    checker = validator(server, ValidatedTokens(clock=Clock(0.0), wall_clock=wall))
    genuine = token(server, now=wall.now)
    assert checker.validate(genuine)

    # The machine's clock stepped back: the token is not valid yet, remembered or not.
    wall.now = int(wall.now) - LEEWAY - 1
    assert refusal(checker, genuine) == "token is not valid yet"


def test_a_remembered_token_whose_key_left_the_key_set_is_refused_after_the_refresh(
    server: OidcServer,
) -> None:
    clock = Clock(1000.0)
    keys = SigningKeys(lifespan_seconds=3600, refresh_cooldown_seconds=30, clock=clock)
    checker = validator(server, ValidatedTokens(clock=Clock(0.0)), keys)  # entries never age here
    genuine = token(server)
    assert checker.validate(genuine)
    server.set_keys([new_signing_key()])

    clock.now += 3599  # the key set is not due yet: the old key is still trusted, and so is the token
    assert checker.validate(genuine)
    assert server.jwks_fetches == 1
    clock.now += 1
    assert refusal(checker, genuine) == "token is signed with an unknown key"
    assert server.jwks_fetches == 2


def expire_for_the_cache(wall: Clock) -> None:
    """Moves the cache's wall clock past the token's expiry and leeway: a hit now refuses the token, while
    full validation (PyJWT's real clock) still accepts it, so each answer tells which path was taken."""
    wall.now += 3600 + LEEWAY


def test_a_key_set_refresh_sends_every_remembered_token_back_to_full_validation(server: OidcServer) -> None:
    clock, wall = Clock(1000.0), Clock(time.time())
    keys = SigningKeys(lifespan_seconds=3600, clock=clock)
    checker = validator(server, ValidatedTokens(clock=Clock(0.0), wall_clock=wall), keys)
    genuine = token(server, now=wall.now)
    assert checker.validate(genuine)
    expire_for_the_cache(wall)
    assert refusal(checker, genuine) == "token has expired"

    clock.now += 3600  # the same key, published again: a new key object, so the entry no longer counts
    assert checker.validate(genuine)["tid"] == TENANT
    assert server.jwks_fetches == 2


def test_a_metadata_refresh_sends_every_remembered_token_back_to_full_validation(server: OidcServer) -> None:
    clock, wall = Clock(1000.0), Clock(time.time())
    keys = SigningKeys(lifespan_seconds=10 * 24 * 3600, metadata_lifespan_seconds=3600, clock=clock)
    checker = validator(server, ValidatedTokens(clock=Clock(0.0), wall_clock=wall), keys)
    genuine = token(server, now=wall.now)
    assert checker.validate(genuine)
    expire_for_the_cache(wall)
    assert refusal(checker, genuine) == "token has expired"

    clock.now += 3600  # the metadata names the accepted issuers: a new document, the token is checked again
    assert checker.validate(genuine)["tid"] == TENANT
    assert (server.metadata_fetches, server.jwks_fetches) == (2, 1)


def test_entries_are_forgotten_after_their_age_bound(server: OidcServer) -> None:
    age, wall = Clock(0.0), Clock(time.time())
    checker = validator(server, ValidatedTokens(max_age_seconds=300, clock=age, wall_clock=wall))
    genuine = token(server, now=wall.now)
    assert checker.validate(genuine)
    expire_for_the_cache(wall)

    age.now += 299.9
    assert refusal(checker, genuine) == "token has expired"
    age.now += 0.1
    assert checker.validate(genuine)["tid"] == TENANT


def test_the_cache_never_grows_past_its_bound(server: OidcServer) -> None:
    cache = ValidatedTokens(max_entries=4)
    checker = validator(server, cache)
    tokens = [token(server) for _ in range(10)]
    for index, genuine in enumerate(tokens):
        assert checker.validate(genuine)
        assert len(cache) == min(index + 1, 4)
        checker.validate(tokens[0])  # used again and again: the least recently used goes first, not it

    assert [token_digest(genuine) in cache for genuine in tokens] == [True] + [False] * 6 + [True] * 3


def test_a_token_differing_in_one_byte_is_validated_in_full_and_refused_if_forged(server: OidcServer) -> None:
    cache = ValidatedTokens()
    checker = validator(server, cache)
    genuine = token(server)
    assert checker.validate(genuine)

    header, payload, signature = genuine.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    forged = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    assert refusal(checker, forged) == "token signature does not verify"
    assert token_digest(forged) not in cache
    assert len(cache) == 1


def test_only_tokens_that_passed_every_rule_are_remembered(server: OidcServer) -> None:
    cache = ValidatedTokens()
    checker = validator(server, cache)
    other_audience = token(server, aud=str(uuid.uuid4()))
    other_app = token(server, azp=str(uuid.uuid4()))

    assert refusal(checker, other_audience) == "token is for another audience (aud)"
    assert refusal(checker, other_app) == "token was issued to an application that is not the marketplace"
    assert len(cache) == 0


def test_the_cache_holds_digests_never_tokens(server: OidcServer) -> None:
    cache = ValidatedTokens()
    checker = validator(server, cache)
    genuine = token(server)
    assert checker.validate(genuine)

    stored = cache.keys()
    assert stored == [hashlib.sha256(genuine.encode()).digest()]
    assert all(genuine.encode() not in key and genuine.split(".")[2].encode() not in key for key in stored)


def test_a_hit_returns_a_copy_the_caller_cannot_poison(server: OidcServer) -> None:
    checker = validator(server, ValidatedTokens())
    genuine = token(server)
    checker.validate(genuine)["tid"] = "someone else"  # validated in full, then remembered
    checker.validate(genuine)["tid"] = "someone else"  # a hit

    assert checker.validate(genuine)["tid"] == TENANT


def test_concurrent_repeats_of_one_token_are_all_accepted_and_remembered_once(server: OidcServer) -> None:
    cache = ValidatedTokens()
    checker = validator(server, cache)
    genuine = token(server)
    results: list[str] = []
    start = threading.Barrier(16)

    def validate() -> None:
        start.wait()
        for _ in range(20):
            results.append(str(checker.validate(genuine)["tid"]))

    threads = [threading.Thread(target=validate) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [TENANT] * 320
    assert len(cache) == 1
