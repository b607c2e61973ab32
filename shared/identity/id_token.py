"""Independent validation of the ID token the landing page's sign-in returns (R8, R10).

msal checks `state` and `nonce` but not the signature, so the token is checked again here before anything
in it is trusted: RS256 signature against a key from the JWKS named by the authority's OpenID metadata,
audience = our SSO app's client id, lifetime, and an issuer that belongs to the token's own tenant. The SSO
app is multi-tenant, so there is no single expected issuer: `iss` must be `<authority>/<tid>/v2.0` for the
`tid` inside the same signed token (personal accounts carry the MSA tenant there). Users are then keyed by
`tid` + `oid`, never by email.
"""

from __future__ import annotations

import hmac
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from shared.config import Settings
from shared.domain.identity import entra_addresses
from shared.identity.openid import SigningKeysUnavailableError, default_ssl_context, fetch_openid_metadata
from shared.logs import get_logger

log = get_logger(__name__)

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "aud", "iss", "tid", "oid", "sub"]
HTTP_TIMEOUT_SECONDS = 5.0
__all__ = ["IdTokenClaims", "IdTokenError", "IdTokenValidator", "SigningKeysUnavailableError"]
# Keys are announced in the JWKS long before Entra signs with them; an unknown kid triggers a refetch anyway.
METADATA_LIFESPAN_SECONDS = 24 * 3600.0
JWKS_LIFESPAN_SECONDS = 3600.0
DEFAULT_LEEWAY_SECONDS = 300


class IdTokenError(Exception):
    """The ID token cannot be trusted; `reason` names the rule it broke (never the token itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IdTokenClaims:
    """What the landing page uses from a validated ID token."""

    tenant_id: str
    object_id: str
    name: str = ""
    email: str = ""  # as the token says: a contact suggestion, identifying only if listed in `addresses`
    preferred_username: str = ""
    # The addresses Entra ID vouches for (UPN / sign-in name, `email` when `xms_edov` is true, the
    # verified_*_email optional claims): the only ones a seat assigned by address may bind through.
    addresses: tuple[str, ...] = ()


def claims_of(payload: dict[str, Any]) -> IdTokenClaims:
    return IdTokenClaims(
        tenant_id=str(payload["tid"]).strip().lower(),
        object_id=str(payload["oid"]).strip().lower(),
        name=str(payload.get("name") or ""),
        email=str(payload.get("email") or ""),
        preferred_username=str(payload.get("preferred_username") or ""),
        addresses=entra_addresses(payload),
    )


class IdTokenValidator:
    """Validates ID tokens of one SSO app issued under one authority host (Entra's or the sandbox's)."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (authority and client_id):
            raise ValueError("authority and client_id are required to validate ID tokens")
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self.leeway_seconds = leeway_seconds
        self._ssl_context = ssl_context or default_ssl_context()
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_client_built_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> IdTokenValidator:
        return cls(settings.sso_authority, settings.sso_client_id)

    @property
    def metadata_url(self) -> str:
        return f"{self.authority}/common/v2.0/.well-known/openid-configuration"

    def expected_issuer(self, tenant_id: str) -> str:
        return f"{self.authority}/{tenant_id}/v2.0"

    def validate(self, id_token: str, *, nonce: str | None = None) -> IdTokenClaims:
        """The verified claims, or IdTokenError / SigningKeysUnavailableError."""
        key = self._signing_key(_key_id(id_token))
        payload = self._decode(id_token, key)
        self._check_issuer(payload)
        _check_nonce(payload, nonce)
        return claims_of(payload)

    def _decode(self, id_token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                id_token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.client_id,
                leeway=self.leeway_seconds,
                # The issuer depends on the tid inside the token, so it is checked after decoding.
                options={"require": REQUIRED_CLAIMS, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise IdTokenError("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise IdTokenError("token audience is not this app") from exc
        except jwt.InvalidSignatureError as exc:
            raise IdTokenError("token signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise IdTokenError(f"token is invalid: {type(exc).__name__}") from exc

    def _check_issuer(self, payload: dict[str, Any]) -> None:
        tenant_id = str(payload.get("tid", ""))
        expected = self.expected_issuer(tenant_id)
        if not tenant_id or not hmac.compare_digest(str(payload.get("iss", "")), expected):
            raise IdTokenError("token issuer does not match its tenant")

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        client = self._keys_client()
        try:
            return client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise SigningKeysUnavailableError(f"JWKS could not be fetched: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise IdTokenError("token is signed with an unknown key") from exc
        except jwt.PyJWKSetError as exc:
            raise SigningKeysUnavailableError(f"JWKS holds no usable key: {exc}") from exc

    def _keys_client(self) -> jwt.PyJWKClient:
        with self._lock:
            stale = self._clock() - self._jwks_client_built_at > METADATA_LIFESPAN_SECONDS
            if self._jwks_client is None or stale:
                self._jwks_client = jwt.PyJWKClient(
                    self._jwks_uri(),
                    cache_keys=True,
                    lifespan=JWKS_LIFESPAN_SECONDS,
                    timeout=HTTP_TIMEOUT_SECONDS,
                    ssl_context=self._ssl_context,
                )
                self._jwks_client_built_at = self._clock()
            return self._jwks_client

    def _jwks_uri(self) -> str:
        metadata = fetch_openid_metadata(
            self.metadata_url, ssl_context=self._ssl_context, timeout=HTTP_TIMEOUT_SECONDS
        )
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise SigningKeysUnavailableError("OpenID metadata names no https jwks_uri")
        return jwks_uri


def _key_id(id_token: str) -> str:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.InvalidTokenError as exc:
        raise IdTokenError("token is not a JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise IdTokenError("token is not signed with RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise IdTokenError("token names no signing key (kid)")
    return kid


def _check_nonce(payload: dict[str, Any], nonce: str | None) -> None:
    if nonce is None:
        return
    if not hmac.compare_digest(str(payload.get("nonce", "")), nonce):
        raise IdTokenError("token nonce does not match this sign-in")
