"""Authorization codes: issued at sign-in for one validated /authorize request, redeemed once, soon gone."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.entra.responses import OAuthError
from sandbox.entra.signing import base64url_json
from sandbox.identities import TestUser

AUTHORIZATION_CODE_LIFETIME_SECONDS = 300


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated /authorize request, as remembered between the sign-in page and the token call."""

    tenant: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    response_mode: str
    wants_client_info: bool


@dataclass(frozen=True)
class IssuedCode:
    request: AuthorizationRequest
    user: TestUser
    expires_at: float


class AuthorizationCodes:
    """Codes waiting to be redeemed, and those already redeemed (a second redemption gets Entra's error)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._codes: dict[str, IssuedCode] = {}
        self._redeemed_codes: set[str] = set()
        self._lock = threading.Lock()

    def issue(self, authorization: AuthorizationRequest, user: TestUser) -> str:
        code = secrets.token_urlsafe(32)
        expires_at = self._clock() + AUTHORIZATION_CODE_LIFETIME_SECONDS
        with self._lock:
            self._codes[code] = IssuedCode(authorization, user, expires_at)
        return code

    def take(self, code: str) -> IssuedCode:
        """The code's sign-in; OAuthError (invalid_grant) when unknown, already redeemed or expired."""
        # Popped before any other check: a code is single-use even when the redemption fails.
        with self._lock:
            issued = self._codes.pop(code, None)
            already_used = code in self._redeemed_codes
            self._redeemed_codes.add(code)
        if issued is None:
            if already_used:
                raise OAuthError(
                    400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
                )
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request: the authorization code is unknown."
            )
        if self._clock() > issued.expires_at:
            raise OAuthError(400, "invalid_grant", 70008, "The provided authorization code has expired.")
        return issued


def client_info(user: TestUser) -> str:
    # msal builds its account (home_account_id = uid.utid) from this, not from the id_token.
    return base64url_json({"uid": user.object_id, "utid": user.tenant_id})
