"""The stand-in's signing key: JWKS, signing, minting tokens (also deliberately broken ones, for negative
tests) and checking the bearer tokens it issued, against its own clock.

`AccessDenied` is what a resource (the Fulfillment API or Graph stand-in) answers a bad bearer token with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("sandbox.entra")

VERIFIED_TOKENS_KEPT = 256


class AccessDenied(Exception):  # noqa: N818 - the name other modules import
    """A bearer token the Fulfillment API stand-in must refuse: 401 missing/invalid, 403 wrong app/tenant."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def denied(status: int, reason: str) -> AccessDenied:
    log.warning("bearer token refused", extra={"status": status, "reason": reason})
    return AccessDenied(status, reason)


class TokenSigner:
    """One RSA key (generated when none is given) and the clock token lifetimes are measured with."""

    def __init__(self, signing_key: rsa.RSAPrivateKey | None, clock: Callable[[], float] = time.time) -> None:
        self._signing_key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = _key_id(self._signing_key.public_key())
        self.clock = clock
        # (token digest, audience) -> claims of a token that passed every check but its lifetime.
        self._verified: dict[tuple[bytes, str], dict[str, Any]] = {}

    def jwks(self) -> dict[str, Any]:
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**public_jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def lifetime(self, seconds: int) -> dict[str, int]:
        now = int(self.clock())
        return {"iat": now, "nbf": now, "exp": now + seconds}

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._signing_key, algorithm="RS256", headers={"kid": self.key_id})

    def mint(
        self,
        claims: dict[str, Any],
        overrides: dict[str, Any] | None,
        remove: tuple[str, ...],
        sign_with: rsa.RSAPrivateKey | None,
        algorithm: str,
        kid: str | None,
    ) -> str:
        """`claims` with one rule broken at a time: overridden or removed claims, a stranger's key, another
        algorithm ("none", or HS* keyed with the public key's PEM: algorithm confusion) or another kid."""
        claims.update(overrides or {})
        for name in remove:
            claims.pop(name, None)
        headers = {"kid": kid or self.key_id, "typ": "JWT"}
        if algorithm == "none" or algorithm.startswith("HS"):
            return _forged_token(claims, headers, algorithm, self._public_pem())
        return jwt.encode(claims, sign_with or self._signing_key, algorithm=algorithm, headers=headers)

    def verified_claims(self, authorization_header: str | None, *, audience: str) -> dict[str, Any]:
        """The claims of a `Bearer` token this key signed for `audience`; AccessDenied (401) otherwise.

        A publisher sends the same access token for up to an hour, so a token whose signature, audience and
        claims passed once is remembered (by digest, at most `VERIFIED_TOKENS_KEPT`) and only its lifetime is
        checked again. Decoding it anew cost a third of the stand-in's CPU in a burst of changes."""
        token = _bearer_token(authorization_header)
        digest = (hashlib.sha256(token.encode()).digest(), audience)
        claims = self._verified.get(digest)
        if claims is None:
            claims = self._verify(token, audience)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.clear()
            self._verified[digest] = claims
        self._check_lifetime(claims)
        return dict(claims)

    def _verify(self, token: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise denied(401, "token is not a JWT") from None
        if header.get("kid") != self.key_id:
            raise denied(401, "token is signed with an unknown key (kid)")
        try:
            claims = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                # Lifetime: checked by the caller on the stand-in's clock (tests move time without sleeping).
                options={
                    "require": ["exp", "nbf", "iat", "aud", "iss", "tid"],
                    **{"verify_exp": False, "verify_nbf": False, "verify_iat": False},
                },
            )
        except jwt.InvalidAudienceError:
            raise denied(401, f"token audience is not {audience}") from None
        except jwt.InvalidTokenError as exc:
            raise denied(401, f"token is invalid: {exc}") from None
        return claims

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        if not all(isinstance(claims[name], int) for name in ("exp", "nbf", "iat")):
            raise denied(401, "token exp/nbf/iat must be integers")
        if now >= claims["exp"]:
            raise denied(401, "token has expired")
        if now < claims["nbf"]:
            raise denied(401, "token is not valid yet (nbf)")

    def _public_pem(self) -> bytes:
        return self._signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise denied(401, "Authorization header is missing")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise denied(401, "Authorization header is not 'Bearer <token>'")
    return token.strip()


def _forged_token(
    claims: Mapping[str, Any], headers: dict[str, str], algorithm: str, public_pem: bytes
) -> str:
    """An unsigned ("none") or HMAC-with-the-public-key token; PyJWT refuses to make these on purpose."""
    header = {**headers, "alg": algorithm}
    signing_input = f"{base64url_json(header)}.{base64url_json(dict(claims))}"
    if algorithm == "none":
        return f"{signing_input}."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    signature = hmac.new(public_pem, signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64url(signature)}"


def _key_id(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 thumbprint: stable for a key, so a persisted key keeps its kid across restarts."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    return base64url(hashlib.sha256(canonical.encode()).digest())


def unique_token_id() -> str:
    return secrets.token_urlsafe(16)


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def base64url_json(document: Mapping[str, Any]) -> str:
    return base64url(json.dumps(document, separators=(",", ":")).encode())
