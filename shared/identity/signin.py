"""Buyer sign-in with Entra ID: OpenID Connect authorization code flow with PKCE through msal (R8-R11).

The SSO app is multi-tenant and signs in through `<SSO_AUTHORITY>/common`, so work/school accounts and
personal Microsoft accounts are both accepted. Only basic scopes are requested (openid, profile, email and
Graph User.Read, R9); msal's default `offline_access` is excluded, as no refresh token is ever wanted.

The flow state msal needs at the callback (state, nonce, PKCE verifier, redirect URI) is handed to the
caller, which keeps it in the browser (see `shared.entrypoints.auth`); the server keeps no per-sign-in rows.
The ID token is validated again by the app's one `TokenValidator` (msal does not check its signature).
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msal

from shared.config import PUBLIC_ENTRA_AUTHORITY, Settings
from shared.identity.contact_email import contact_email_for
from shared.identity.id_token import IdTokenClaims, claims_of
from shared.identity.signing_keys import SigningKeysUnavailableError
from shared.identity.tokens import InvalidTokenError, TokenValidator
from shared.logs import get_logger
from shared.tls import tls_verify

log = get_logger(__name__)

CALLBACK_PATH = "/api/auth/callback"
# msal adds "openid" and "profile" itself; "email" and Graph "User.Read" are the only other asks (R9).
REQUESTED_SCOPES = ("email", "User.Read")
EXCLUDED_SCOPES = ("offline_access",)
_FLOW_KEYS = ("state", "nonce", "code_verifier", "redirect_uri", "scope", "claims_challenge")
# Entra's and the sandbox's OpenID metadata, shared by every msal app of this process.
_msal_http_cache: dict[Any, Any] = {}


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
    flow: dict[str, Any]  # what the callback needs back, untampered (the caller signs it)


@dataclass(frozen=True)
class SignInResult:
    claims: IdTokenClaims
    contact_email: str


def authority_url(settings: Settings) -> str:
    return f"{settings.sso_authority.rstrip('/')}/common"


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}{CALLBACK_PATH}"


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
        verify=tls_verify(),
    )


def start_sign_in(settings: Settings) -> SignInStart:
    """The Entra authorize URL to send the browser to, and the flow state the callback needs back."""
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
    return SignInStart(authorize_url=flow["auth_uri"], flow=remembered)


def finish_sign_in(
    settings: Settings,
    validator: TokenValidator,
    flow: object,
    auth_response: Mapping[str, str],
) -> SignInResult:
    """Checks the callback against the remembered flow, redeems the code, validates the ID token."""
    if not isinstance(flow, dict) or not flow.get("state"):
        raise SignInError("no sign-in in progress (flow cookie missing, expired or altered)")
    _check_auth_response(flow, auth_response)
    tokens = _redeem(settings, dict(flow), auth_response)
    claims = _validated_claims(validator, tokens, flow)
    email = contact_email_for(claims, tokens.get("access_token"), settings.graph_base_url)
    return SignInResult(claims=claims, contact_email=email)


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
        result: dict[str, Any] = msal_app(settings).acquire_token_by_auth_code_flow(flow, dict(auth_response))
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
    validator: TokenValidator, tokens: Mapping[str, Any], flow: Mapping[str, Any]
) -> IdTokenClaims:
    try:
        return claims_of(validator.validate(str(tokens["id_token"]), nonce=sent_nonce(flow)))
    except InvalidTokenError as exc:
        raise SignInError(f"ID token refused: {exc.reason}") from exc
    except SigningKeysUnavailableError as exc:
        raise SignInError(
            f"ID token signing keys unavailable: {exc}",
            status=503,
            message="We can't reach Microsoft's sign-in service right now. Please try again in a minute.",
        ) from exc
