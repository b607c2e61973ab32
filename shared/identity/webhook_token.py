"""Validates the Entra ID bearer token Microsoft sends with every webhook call (R39, R40).

Only the signature proves the call comes from the marketplace, so nothing is read from the token before its
RS256 signature is checked against a key from the publisher tenant's JWKS. The JWKS is found through the
OpenID metadata, which is fetched once (on first use) and cached; keys are cached too and refreshed when a
token names an unknown `kid`, at most once per cooldown so a flood of made-up kids cannot hammer Entra ID.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import jwt

from shared.config import MARKETPLACE_API_APP_ID, Settings
from shared.identity.openid import SigningKeysUnavailableError, default_ssl_context, fetch_openid_metadata
from shared.logs import get_logger

log = get_logger(__name__)

ALGORITHMS = ["RS256"]
V1_ISSUER_HOST = "https://sts.windows.net"
METADATA_SUFFIX = "/.well-known/openid-configuration"
HTTP_TIMEOUT_SECONDS = 5.0
__all__ = ["InvalidTokenError", "SigningKeysUnavailableError", "WebhookTokenValidator"]
# A rotated key is announced in the JWKS well before Entra ID signs with it, so an hour-old key set is fresh
# enough; a removed key stops being trusted within the hour.
JWKS_LIFESPAN_SECONDS = 3600.0
REFRESH_COOLDOWN_SECONDS = 30.0


class InvalidTokenError(Exception):
    """The caller did not prove it is the marketplace; `reason` says which rule failed (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookTokenValidator:
    """Checks signature, lifetime, issuer, audience, tenant and calling app of a webhook bearer token."""

    def __init__(
        self,
        openid_config_url: str,
        audience: str,
        tenant_id: str,
        allowed_app_ids: Iterable[str] = (MARKETPLACE_API_APP_ID,),
        clock_skew_seconds: int = 300,
        *,
        ssl_context: ssl.SSLContext | None = None,
        refresh_cooldown_seconds: float = REFRESH_COOLDOWN_SECONDS,
        http_timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        if not (openid_config_url and audience and tenant_id):
            raise ValueError("openid_config_url, audience and tenant_id are all required")
        self.openid_config_url = openid_config_url
        self.audience = audience
        self.tenant_id = tenant_id.lower()
        self.allowed_app_ids = frozenset(app_id.lower() for app_id in allowed_app_ids)
        self.clock_skew_seconds = clock_skew_seconds
        self._ssl_context = ssl_context or default_ssl_context()
        self._refresh_cooldown = refresh_cooldown_seconds
        self._http_timeout = http_timeout_seconds
        self._lock = threading.Lock()
        self._jwks_client: jwt.PyJWKClient | None = None
        self._issuers: frozenset[str] = frozenset()
        self._last_metadata_failure: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTokenValidator:
        return cls(
            openid_config_url=settings.webhook_openid_config_url,
            audience=settings.webhook_audience,
            tenant_id=settings.publisher_tenant_id,
            clock_skew_seconds=settings.webhook_clock_skew_seconds,
        )

    def validate(self, authorization_header: str | None) -> dict[str, Any]:
        """Returns the verified claims, or raises `InvalidTokenError` / `SigningKeysUnavailableError`."""
        token = _bearer_token(authorization_header)
        key = self._signing_key(_key_id(token))
        claims = self._decode(token, key)
        self._check_tenant(claims)
        self._check_caller_app(claims)
        return claims

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        client = self._keys_client()
        try:
            return client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise SigningKeysUnavailableError(f"JWKS could not be fetched: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise InvalidTokenError("token is signed with an unknown key") from exc
        except jwt.PyJWKSetError as exc:
            raise SigningKeysUnavailableError(f"JWKS holds no usable key: {exc}") from exc

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self._issuers,
                leeway=self.clock_skew_seconds,
                options={"require": ["exp", "iss", "aud", "tid"], "verify_nbf": True, "verify_iat": True},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError(_describe(exc)) from exc

    def _check_tenant(self, claims: dict[str, Any]) -> None:
        if str(claims.get("tid", "")).lower() != self.tenant_id:
            raise InvalidTokenError("token is for another tenant (tid)")

    def _check_caller_app(self, claims: dict[str, Any]) -> None:
        # v1 tokens name the caller in appid, v2 tokens in azp; whichever is present must be the marketplace.
        callers = [str(claims[name]).lower() for name in ("appid", "azp") if name in claims]
        if not callers:
            raise InvalidTokenError("token names no calling application (appid/azp)")
        if any(caller not in self.allowed_app_ids for caller in callers):
            raise InvalidTokenError("token was issued to an application that is not the marketplace")

    def _keys_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks_client is None:
                self._jwks_client = self._client_from_metadata()
            return self._jwks_client

    def _client_from_metadata(self) -> jwt.PyJWKClient:
        failed_at = self._last_metadata_failure
        if failed_at is not None and time.monotonic() - failed_at < self._refresh_cooldown:
            raise SigningKeysUnavailableError("OpenID metadata failed recently; not asking again yet")
        try:
            metadata = fetch_openid_metadata(
                self.openid_config_url, ssl_context=self._ssl_context, timeout=self._http_timeout
            )
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise SigningKeysUnavailableError("OpenID metadata unavailable: it names no jwks_uri")
        except SigningKeysUnavailableError as exc:
            self._last_metadata_failure = time.monotonic()
            log.warning(
                "OpenID metadata unavailable", extra={"url": self.openid_config_url, "error": str(exc)}
            )
            raise
        self._issuers = self._accepted_issuers(str(metadata.get("issuer", "")))
        try:
            return jwt.PyJWKClient(
                jwks_uri,
                cache_jwk_set=True,
                lifespan=JWKS_LIFESPAN_SECONDS,
                timeout=self._http_timeout,
                ssl_context=self._ssl_context,
                cooldown_duration=self._refresh_cooldown,
            )
        except jwt.PyJWKClientError as exc:
            self._last_metadata_failure = time.monotonic()
            raise SigningKeysUnavailableError(f"OpenID metadata names an unusable jwks_uri: {exc}") from exc

    def _accepted_issuers(self, metadata_issuer: str) -> frozenset[str]:
        authority = _authority(self.openid_config_url, metadata_issuer, self.tenant_id)
        return frozenset({f"{V1_ISSUER_HOST}/{self.tenant_id}/", f"{authority}/{self.tenant_id}/v2.0"})


def _authority(metadata_url: str, metadata_issuer: str, tenant_id: str) -> str:
    """The Entra ID host (with any path prefix) in front of `/{tenant}`: from the URL, else the issuer."""
    for url in (metadata_url, metadata_issuer.replace("{tenantid}", tenant_id)):
        position = url.lower().find(f"/{tenant_id}")
        if position > len("https://"):
            return url[:position]
    parts = urlsplit(metadata_url)
    return f"{parts.scheme}://{parts.netloc}"


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header or not authorization_header.strip():
        raise InvalidTokenError("missing bearer token")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("authorization header is not a bearer token")
    token = token.strip()
    if token.count(".") != 2:
        raise InvalidTokenError("bearer token is not a JWT")
    return token


def _key_id(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidTokenError("bearer token is not a readable JWT") from exc
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidTokenError(f"token algorithm {str(algorithm)[:20]!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("token header has no key id (kid)")
    return kid


def _describe(exc: jwt.InvalidTokenError) -> str:
    """A short reason per rule; PyJWT's own messages never contain the token, but ours are steadier."""
    reasons: list[tuple[type[jwt.InvalidTokenError], str]] = [
        (jwt.ExpiredSignatureError, "token has expired"),
        (jwt.ImmatureSignatureError, "token is not valid yet"),
        (jwt.InvalidAudienceError, "token is for another audience (aud)"),
        (jwt.InvalidIssuerError, "token is from an unexpected issuer (iss)"),
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
