"""The one validator of Entra ID tokens: RS256 signature from the authority's JWKS, then the caller's policy.

Nothing in a token is trusted before its signature is checked: only the header's `alg` (RS256, or refused)
and `kid` (which published key to check against) are read first. What differs between the tokens the app
accepts is data, a `TokenPolicy` (see `shared.identity.token_policies`): which metadata names the keys,
the audience, whose issuer is accepted, which claims must be present, which calling apps may present it.
Each refusal names the rule it broke, never the token, so logs and 401 bodies can carry it.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from shared.identity.signing_keys import OpenIdMetadata, SigningKeys, UnknownSigningKeyError
from shared.identity.token_cache import ValidatedTokens, token_digest

ALGORITHMS = ["RS256"]
V1_ISSUER_HOST = "https://sts.windows.net"
# Entra's tenant segment for "any tenant": a policy for it accepts each token under its own tenant's issuer.
ANY_TENANT = "common"


class InvalidTokenError(Exception):
    """The token proves nothing; `reason` says which rule failed (never the token itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must say, beyond a valid RS256 signature by a key the metadata's JWKS publishes.

    `tenant_id` is the tenant segment of `metadata_url`: one tenant (its v1 and v2 issuers are accepted and
    `tid` must name it), or ANY_TENANT (the issuer must be `<authority>/<tid>/v2.0` for the `tid` inside the
    same signed token). `caller_app_ids`, when given, are the only apps the token may have been issued to
    (`azp` in v2 tokens, `appid` in v1; whichever is present must be listed).
    """

    metadata_url: str
    audience: str
    tenant_id: str
    required_claims: tuple[str, ...] = ("exp", "iss", "aud", "tid")
    caller_app_ids: frozenset[str] | None = None
    leeway_seconds: int = 300

    def __post_init__(self) -> None:
        if not (self.metadata_url and self.audience and self.tenant_id):
            raise ValueError("metadata_url, audience and tenant_id are all required")
        object.__setattr__(self, "tenant_id", self.tenant_id.lower())
        if self.caller_app_ids is not None:
            object.__setattr__(self, "caller_app_ids", frozenset(a.lower() for a in self.caller_app_ids))


class TokenValidator:
    """Validates tokens against one policy; keys come from the (shared, process-wide) `SigningKeys`.

    With `cache` (the webhook's), a token that passed every rule is remembered and a repeat of it is
    accepted after the checks `shared.identity.token_cache` lists instead of a second RSA check; tokens
    validated with a nonce (sign-ins, each used once) never go through the cache.
    """

    def __init__(
        self, policy: TokenPolicy, keys: SigningKeys | None = None, *, cache: ValidatedTokens | None = None
    ) -> None:
        self.policy = policy
        self._keys = keys or SigningKeys()
        self._cache = cache
        self._issuers: _Issuers | None = None

    def validate(self, token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """The verified claims, or InvalidTokenError / SigningKeysUnavailableError (our side's fault).

        `nonce`, when given, must equal the token's (the sign-in that asked for this token).
        """
        kid = _key_id(token)
        issuers = self._accepted_issuers()
        try:
            key = self._keys.signing_key(self.policy.metadata_url, kid)
        except UnknownSigningKeyError as exc:
            raise InvalidTokenError("token is signed with an unknown key") from exc
        cache = self._cache if nonce is None else None
        if cache is None:
            return self._verify(token, key, issuers, nonce)
        # What the token was checked against: a new key set or metadata document means new objects.
        basis = (key, issuers)
        digest = token_digest(token)
        cached = cache.claims(digest, basis)
        if cached is not None:
            _check_lifetime(cached, self.policy.leeway_seconds, cache.wall_clock())
            return cached
        claims = self._verify(token, key, issuers, nonce)
        cache.remember(digest, basis, claims)
        return claims

    def _verify(self, token: str, key: jwt.PyJWK, issuers: _Issuers, nonce: str | None) -> dict[str, Any]:
        """Every rule, in full: signature and times (PyJWT), then issuer, tenant, caller app and nonce."""
        claims = self._decode(token, key)
        self._check_issuer(claims, issuers)
        self._check_tenant(claims)
        self._check_caller_app(claims)
        _check_nonce(claims, nonce)
        return claims

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.policy.audience,
                leeway=self.policy.leeway_seconds,
                # The accepted issuers depend on the metadata (and for ANY_TENANT on the token's tid), so
                # `iss` is checked after decoding, by `_check_issuer`.
                options={
                    "require": list(self.policy.required_claims),
                    "verify_iss": False,
                    "verify_nbf": True,
                    "verify_iat": True,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError(_describe(exc)) from exc

    def _check_issuer(self, claims: dict[str, Any], issuers: _Issuers) -> None:
        issuer = str(claims.get("iss", ""))
        if self.policy.tenant_id == ANY_TENANT:
            token_tenant = str(claims.get("tid", ""))
            expected = f"{issuers.authority}/{token_tenant}/v2.0"
            if not token_tenant or not hmac.compare_digest(issuer, expected):
                raise InvalidTokenError("token issuer does not match its tenant (iss)")
        elif issuer not in issuers.accepted:
            raise InvalidTokenError("token is from an unexpected issuer (iss)")

    def _accepted_issuers(self) -> _Issuers:
        """Derived once per metadata document (the object changes only when it is fetched again)."""
        metadata = self._keys.metadata(self.policy.metadata_url)
        issuers = self._issuers
        if issuers is None or issuers.metadata is not metadata:
            # Threads racing here derive the same value; the one attribute is replaced whole.
            issuers = _Issuers.derive(self.policy, metadata)
            self._issuers = issuers
        return issuers

    def _check_tenant(self, claims: dict[str, Any]) -> None:
        tenant = self.policy.tenant_id
        if tenant != ANY_TENANT and str(claims.get("tid", "")).lower() != tenant:
            raise InvalidTokenError("token is for another tenant (tid)")

    def _check_caller_app(self, claims: dict[str, Any]) -> None:
        allowed = self.policy.caller_app_ids
        if allowed is None:
            return
        callers = [str(claims[name]).lower() for name in ("appid", "azp") if name in claims]
        if not callers:
            raise InvalidTokenError("token names no calling application (appid/azp)")
        if any(caller not in allowed for caller in callers):
            raise InvalidTokenError("token was issued to an application that is not the marketplace")


@dataclass(frozen=True)
class _Issuers:
    """The issuers a policy accepts under one metadata document: for one tenant its v1 and v2 issuers; for
    ANY_TENANT the authority each token's own `tid` is appended to."""

    metadata: OpenIdMetadata
    authority: str
    accepted: frozenset[str]

    @classmethod
    def derive(cls, policy: TokenPolicy, metadata: OpenIdMetadata) -> _Issuers:
        tenant = policy.tenant_id
        authority = _authority(policy.metadata_url, metadata.issuer, tenant)
        accepted = (
            set() if tenant == ANY_TENANT else {f"{V1_ISSUER_HOST}/{tenant}/", f"{authority}/{tenant}/v2.0"}
        )
        return cls(metadata=metadata, authority=authority, accepted=frozenset(accepted))


def bearer_token(authorization_header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization_header or not authorization_header.strip():
        raise InvalidTokenError("missing bearer token")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("authorization header is not a bearer token")
    return token.strip()


def _key_id(token: str) -> str:
    """The header's kid, after refusing anything but RS256; reads the header only (no signature yet).

    Only the first segment is decoded: `jwt.get_unverified_header` decodes the whole token (payload and
    signature too), which `jwt.decode` then does again, a quarter of a webhook's CPU. The token's bytes
    are trusted no further than this either way; `jwt.decode` checks the same header again, signed.
    """
    if token.count(".") != 2:
        raise InvalidTokenError("token is not a JWT")
    return _header_key_id(token.partition(".")[0])


# Every token one Entra key signs has the same header, so its reading is remembered (a pure function of
# the segment; only headers that pass are kept, and only a few, so a flood of odd headers grows nothing).
@functools.lru_cache(maxsize=16)
def _header_key_id(segment: str) -> str:
    header = _header(segment)
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidTokenError(f"token algorithm {str(algorithm)[:20]!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("token header has no key id (kid)")
    return kid


def _header(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (ValueError, TypeError):  # binascii.Error and JSONDecodeError (and bad UTF-8) are ValueErrors
        raise InvalidTokenError("token is not a readable JWT") from None
    if not isinstance(header, dict):
        raise InvalidTokenError("token is not a readable JWT")
    return header


def _check_lifetime(claims: dict[str, Any], leeway: float, now: float) -> None:
    """PyJWT's time rules, for a remembered token: its signature held, its lifetime may not any more."""
    if "exp" in claims and int(claims["exp"]) <= now - leeway:
        raise InvalidTokenError("token has expired")
    if "nbf" in claims and int(claims["nbf"]) > now + leeway:
        raise InvalidTokenError("token is not valid yet")
    if "iat" in claims and int(claims["iat"]) > now + leeway:
        raise InvalidTokenError("token is not valid yet")


def _check_nonce(claims: dict[str, Any], nonce: str | None) -> None:
    if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise InvalidTokenError("token nonce does not match this sign-in")


def _authority(metadata_url: str, metadata_issuer: str, tenant: str) -> str:
    """The Entra ID host (with any path prefix) in front of `/{tenant}`: from the URL, else the issuer."""
    for url in (metadata_url, metadata_issuer.replace("{tenantid}", tenant)):
        position = url.lower().find(f"/{tenant}")
        if position > len("https://"):
            return url[:position]
    parts = urlsplit(metadata_url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(exc: jwt.InvalidTokenError) -> str:
    """A short reason per rule; PyJWT's own messages never contain the token, but ours are steadier."""
    reasons: list[tuple[type[jwt.InvalidTokenError], str]] = [
        (jwt.ExpiredSignatureError, "token has expired"),
        (jwt.ImmatureSignatureError, "token is not valid yet"),
        (jwt.InvalidAudienceError, "token is for another audience (aud)"),
        (jwt.InvalidSignatureError, "token signature does not verify"),
        (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
        (jwt.InvalidIssuedAtError, "token issue time (iat) is invalid"),
    ]
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the required claim {exc.claim!r}"
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return f"token is invalid: {exc}"
