"""Mints webhook bearer tokens the way Entra ID does, and the forgeries an attacker would try.

Tests build claims with `marketplace_claims(...)`, change one thing, and sign with `mint(...)`; the
forgeries (`mint_unsigned`, `mint_hs256_with_public_key`) are assembled by hand because PyJWT rightly
refuses to produce them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.config import MARKETPLACE_API_APP_ID


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with the `kid` Entra ID would publish it under."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "kty": "RSA", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_signing_key(kid: str | None = None) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid=kid or uuid.uuid4().hex, private_key=private_key)


def marketplace_claims(
    tenant_id: str,
    audience: str,
    *,
    version: str = "v2",
    authority: str = "https://login.microsoftonline.com",
    lifetime_seconds: int = 3600,
    now: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims of a genuine marketplace webhook token; `overrides` replace claims, None removes one."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "tid": tenant_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "oid": str(uuid.uuid4()),
        "sub": str(uuid.uuid4()),
    }
    if version == "v1":
        claims.update(iss=f"https://sts.windows.net/{tenant_id}/", appid=MARKETPLACE_API_APP_ID, ver="1.0")
    else:
        claims.update(iss=f"{authority}/{tenant_id}/v2.0", azp=MARKETPLACE_API_APP_ID, ver="2.0")
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def mint(claims: dict[str, Any], key: SigningKey, *, headers: dict[str, Any] | None = None) -> str:
    """An RS256 token signed by `key`, with its kid unless `headers` say otherwise (None drops a header)."""
    merged = {"kid": key.kid, **(headers or {})}
    kept = {name: value for name, value in merged.items() if value is not None}
    # PyJWT always adds a kid when given one; without it the header must not mention kid at all.
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=kept or None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def mint_unsigned(claims: dict[str, Any], kid: str = "any") -> str:
    """The `alg: none` forgery: valid-looking claims and an empty signature."""
    return _segments({"alg": "none", "typ": "JWT", "kid": kid}, claims) + "."


def mint_hs256_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The algorithm-confusion forgery: HMAC-signed with the (public) PEM a naive verifier would use."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims)
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
