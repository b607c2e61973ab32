"""Buyer sign-in with Entra ID: OpenID Connect authorization code flow with PKCE through msal (R8-R11).

The SSO app is multi-tenant and signs in through `<SSO_AUTHORITY>/common`, so work/school accounts and
personal Microsoft accounts are both accepted. Only basic scopes are requested (openid, profile, email and
Graph User.Read, R9); msal's default `offline_access` is excluded, as no refresh token is ever wanted.

Where the flow state lives: msal's auth-code flow (state, nonce, PKCE verifier, redirect URI) is kept in a
cookie of its own, separate from the session, signed with SESSION_SECRET under its own salt, HttpOnly,
SameSite=Lax, valid for ten minutes and deleted by the callback. That is safe although the browser can read
it: the signature stops anyone from swapping in another state or nonce; the verifier and nonce only protect
this browser's own sign-in, and the cookie never leaves this browser for this site (no script reads it); a
stolen code is useless without both the verifier and our client secret; and Entra redeems a code once. The
server keeps no per-sign-in rows, so an abandoned sign-in leaves nothing to clean up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal

from shared.config import PUBLIC_ENTRA_AUTHORITY, Settings
from shared.identity.contact_email import contact_email_for
from shared.identity.id_token import (
    IdTokenClaims,
    IdTokenError,
    IdTokenValidator,
    SigningKeysUnavailableError,
)
from shared.logs import get_logger
from shared.web.security import safe_redirect_target
from shared.web.sessions import SessionCodec

log = get_logger(__name__)

CALLBACK_PATH = "/api/auth/callback"
DEFAULT_AFTER_SIGN_IN = "/api/portal"
# msal adds "openid" and "profile" itself; "email" and Graph "User.Read" are the only other asks (R9).
REQUESTED_SCOPES = ("email", "User.Read")
EXCLUDED_SCOPES = ("offline_access",)
FLOW_MAX_AGE_SECONDS = 600
_FLOW_KEYS = ("state", "nonce", "code_verifier", "redirect_uri", "scope", "claims_challenge")
# Entra's and the sandbox's OpenID metadata, shared by every msal app of this process.
_msal_http_cache: dict[Any, Any] = {}
_validators: dict[tuple[str, str, str], IdTokenValidator] = {}
_validators_lock = threading.Lock()


class SignInError(Exception):
    """A sign-in that must not go on; `reason` is for the log, `status` and `message` for the buyer."""

    def __init__(self, reason: str, *, status: int = 400, message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message or "We could not sign you in. Please start again from the link you used."


@dataclass(frozen=True)
class SignInStart:
    authorize_url: str
    flow_cookie: str  # a Set-Cookie value


@dataclass(frozen=True)
class SignInResult:
    claims: IdTokenClaims
    contact_email: str
    next_path: str


def authority_url(settings: Settings) -> str:
    return f"{settings.sso_authority.rstrip('/')}/common"


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}{CALLBACK_PATH}"


def ca_bundle() -> str | bool:
    """The CA bundle requests would use (the sandbox's local CA in dev and tests), else the system's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or True


def flow_codec(settings: Settings) -> SessionCodec:
    secure = urlsplit(settings.public_base_url).scheme == "https"
    return SessionCodec(
        settings.session_secret,
        secure=secure,
        max_age_seconds=FLOW_MAX_AGE_SECONDS,
        cookie_name="__Host-signin" if secure else "signin",
        salt="signin-flow",
    )


def msal_app(settings: Settings) -> msal.ConfidentialClientApplication:
    """A fresh app per sign-in, so its token cache never holds another buyer's tokens; metadata is shared."""
    if not (settings.sso_client_id and settings.sso_client_secret):
        raise SignInError("SSO_CLIENT_ID or SSO_CLIENT_SECRET is not set", status=500)
    return msal.ConfidentialClientApplication(
        settings.sso_client_id,
        client_credential=settings.sso_client_secret,
        authority=authority_url(settings),
        # Instance discovery asks login.microsoftonline.com about the host: wrong for any other authority.
        instance_discovery=settings.sso_authority.rstrip("/") == PUBLIC_ENTRA_AUTHORITY,
        exclude_scopes=list(EXCLUDED_SCOPES),
        token_cache=msal.TokenCache(),
        http_cache=_msal_http_cache,
        verify=ca_bundle(),
    )


def id_token_validator(settings: Settings) -> IdTokenValidator:
    """One validator (and JWKS cache) per authority, client and CA bundle for the life of the process."""
    key = (settings.sso_authority, settings.sso_client_id, str(ca_bundle()))
    with _validators_lock:
        if key not in _validators:
            _validators[key] = IdTokenValidator.from_settings(settings)
        return _validators[key]


def start_sign_in(settings: Settings, next_path: str | None) -> SignInStart:
    """The Entra authorize URL to send the browser to, and the cookie that remembers this flow."""
    try:
        with warnings.catch_warnings():
            # msal recommends form_post, but a cross-site POST back would not carry the SameSite=Lax flow
            # cookie. A code in the query is harmless here: single-use, bound to the PKCE verifier and our
            # client secret, and the callback answers with a redirect from a no-referrer page.
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            flow = msal_app(settings).initiate_auth_code_flow(
                list(REQUESTED_SCOPES), redirect_uri=redirect_uri(settings), response_mode="query"
            )
    except ValueError as exc:
        raise SignInError(f"msal could not start the flow: {exc}", status=500) from exc
    remembered = {key: flow[key] for key in _FLOW_KEYS if flow.get(key) is not None}
    cookie = flow_codec(settings).dump(
        {"flow": remembered, "next": safe_redirect_target(next_path, DEFAULT_AFTER_SIGN_IN)}
    )
    return SignInStart(authorize_url=flow["auth_uri"], flow_cookie=cookie)


def finish_sign_in(
    settings: Settings, cookie_header: str | None, auth_response: Mapping[str, str]
) -> SignInResult:
    """Checks the callback against the remembered flow, redeems the code, validates the ID token."""
    remembered = flow_codec(settings).load(cookie_header)
    flow = remembered.get("flow")
    if not isinstance(flow, dict) or not flow.get("state"):
        raise SignInError("no sign-in in progress (flow cookie missing, expired or altered)")
    _check_auth_response(flow, auth_response)
    tokens = _redeem(settings, dict(flow), auth_response)
    claims = _validated_claims(settings, tokens, flow)
    email = contact_email_for(claims, tokens.get("access_token"), settings.graph_base_url)
    next_path = safe_redirect_target(str(remembered.get("next") or ""), DEFAULT_AFTER_SIGN_IN)
    return SignInResult(claims=claims, contact_email=email, next_path=next_path)


def _check_auth_response(flow: Mapping[str, Any], auth_response: Mapping[str, str]) -> None:
    # msal compares the state too; checking first, in constant time, keeps a forged callback from ever
    # reaching the token endpoint and gives the log a clear reason.
    if not hmac.compare_digest(str(auth_response.get("state", "")), str(flow["state"])):
        raise SignInError("state does not match the sign-in in progress")
    if auth_response.get("error"):
        raise SignInError(
            f"Entra ID answered {auth_response.get('error')!s:.64}",
            message="The sign-in was cancelled or refused. You can try again.",
        )
    if not auth_response.get("code"):
        raise SignInError("callback without an authorization code")


def _redeem(settings: Settings, flow: dict[str, Any], auth_response: Mapping[str, str]) -> dict[str, Any]:
    try:
        result = msal_app(settings).acquire_token_by_auth_code_flow(flow, dict(auth_response))
    except (ValueError, RuntimeError) as exc:
        # ValueError: state mismatch; RuntimeError (msal's IdTokenError): nonce or claims refused.
        raise SignInError(f"msal refused the callback: {type(exc).__name__}") from exc
    if "error" in result:
        raise SignInError(f"code redemption refused: {str(result.get('error'))[:64]}")
    if not result.get("id_token"):
        raise SignInError("token endpoint returned no ID token")
    return result


def sent_nonce(flow: Mapping[str, Any]) -> str:
    """The nonce as sent to Entra: msal keeps the raw value in the flow and sends its SHA-256 hex digest."""
    return hashlib.sha256(str(flow["nonce"]).encode("ascii")).hexdigest()


def _validated_claims(
    settings: Settings, tokens: Mapping[str, Any], flow: Mapping[str, Any]
) -> IdTokenClaims:
    try:
        return id_token_validator(settings).validate(str(tokens["id_token"]), nonce=sent_nonce(flow))
    except IdTokenError as exc:
        raise SignInError(f"ID token refused: {exc.reason}") from exc
    except SigningKeysUnavailableError as exc:
        raise SignInError(
            f"ID token signing keys unavailable: {exc}",
            status=503,
            message="We can't reach Microsoft's sign-in service right now. Please try again in a minute.",
        ) from exc
