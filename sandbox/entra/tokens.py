"""Token issuing: the token endpoint's grants and the claims of every token the stand-in signs.

Client credentials serve the publisher's app for the marketplace API (R43-R46; v2, and v1 with `resource=`);
the authorization code grant (PKCE) serves the landing page's SSO app (R8-R10) with an ID token and a Graph
access token. The webhook token Microsoft puts on calls to the publisher (R39) has its claims here too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any

from werkzeug.wrappers import Request

from sandbox.entra.codes import AuthorizationCodes, IssuedCode, client_info
from sandbox.entra.discovery import OIDC_SCOPES, V1_ISSUER_HOST, issuer
from sandbox.entra.responses import OAuthError
from sandbox.entra.signing import TokenSigner, base64url, unique_token_id
from sandbox.identities import Identities, TestUser

log = logging.getLogger("sandbox.entra")

MARKETPLACE_API_APP_ID = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
MARKETPLACE_SCOPE = f"{MARKETPLACE_API_APP_ID}/.default"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TOKEN_LIFETIME_SECONDS = 3600


class TokenIssuer:
    """Answers POST /{tenant}/oauth2/v2.0/token and /oauth2/token, and builds every token's claims."""

    def __init__(
        self, base_url: str, identities: Identities, signer: TokenSigner, codes: AuthorizationCodes
    ) -> None:
        self._base_url = base_url
        self._identities = identities
        self._signer = signer
        self._codes = codes

    # ----- the token endpoint ---------------------------------------------------------------------------

    def token(self, request: Request, tenant: str) -> dict[str, Any]:
        grant_type = request.form.get("grant_type", "")
        if grant_type == "client_credentials":
            scopes = request.form.get("scope", "").split()
            return self._client_credentials(request, tenant, scopes, version="2.0")
        if grant_type == "authorization_code":
            return self._redeem_code(request, tenant)
        raise OAuthError(400, "unsupported_grant_type", 70003, f"grant_type {grant_type!r} is not supported")

    def token_v1(self, request: Request, tenant: str) -> dict[str, Any]:
        grant_type = request.form.get("grant_type", "")
        if grant_type != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", 70003, "the v1 endpoint serves client_credentials"
            )
        resource = request.form.get("resource", "")
        return self._client_credentials(request, tenant, [f"{resource}/.default"], version="1.0")

    def _client_credentials(
        self, request: Request, tenant: str, scopes: list[str], version: str
    ) -> dict[str, Any]:
        publisher = self._identities.publisher
        client_id, secret = _client_authentication(request)
        if tenant != publisher.tenant_id or client_id != publisher.client_id:
            raise OAuthError(
                401,
                "invalid_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not hmac.compare_digest(secret.encode(), publisher.client_secret.encode()):
            raise OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if scopes != [MARKETPLACE_SCOPE]:
            raise OAuthError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scopes)!r} is not valid: the marketplace API "
                f"accepts only '{MARKETPLACE_SCOPE}'.",
            )
        claims = self.publisher_token_claims()
        if version == "1.0":
            claims = {
                **claims,
                "iss": f"{V1_ISSUER_HOST}/{publisher.tenant_id}/",
                "ver": "1.0",
                "appidacr": "1",
            }
            for v2_only in ("azp", "azpacr"):
                claims.pop(v2_only)
        log.info("publisher token issued", extra={"client_id": client_id, "token_version": version})
        return _token_response(
            self._signer.sign(claims), scopes=None if version == "1.0" else MARKETPLACE_SCOPE
        )

    def _redeem_code(self, request: Request, tenant: str) -> dict[str, Any]:
        client_id, secret = _client_authentication(request)
        app = self._identities.sso_app(client_id)
        if app is None:
            raise OAuthError(401, "invalid_client", 700016, f"Application '{client_id}' was not found.")
        if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            raise OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        issued = self._codes.take(request.form.get("code", ""))
        _check_redemption(issued, request, client_id, tenant)
        response = _token_response(
            self._signer.sign(self._user_access_token_claims(issued)),
            scopes=" ".join(s for s in issued.request.scopes if s != "offline_access"),
            id_token=self._signer.sign(self._id_token_claims(issued)),
        )
        if request.form.get("client_info") == "1":
            response["client_info"] = client_info(issued.user)
        log.info("authorization code redeemed", extra={"client_id": client_id, "oid": issued.user.object_id})
        return response

    # ----- claims ---------------------------------------------------------------------------------------

    def publisher_token_claims(self) -> dict[str, Any]:
        """Claims of the v2 access token the publisher's app gets for the marketplace API (R43, R45)."""
        publisher = self._identities.publisher
        return {
            "aud": MARKETPLACE_API_APP_ID,
            "iss": issuer(self._base_url, publisher.tenant_id),
            **self._signer.lifetime(TOKEN_LIFETIME_SECONDS),
            "tid": publisher.tenant_id,
            "azp": publisher.client_id,
            "azpacr": "1",
            "appid": publisher.client_id,
            "oid": publisher.service_principal_id,
            "sub": publisher.service_principal_id,
            "idtyp": "app",
            "ver": "2.0",
            "uti": unique_token_id(),
        }

    def webhook_token_claims(self) -> dict[str, Any]:
        """Claims of the token Microsoft puts on webhook calls to the publisher (R39)."""
        publisher = self._identities.publisher
        marketplace_principal = _service_principal_id(publisher.tenant_id, MARKETPLACE_API_APP_ID)
        return {
            "aud": publisher.client_id,
            "iss": issuer(self._base_url, publisher.tenant_id),
            **self._signer.lifetime(TOKEN_LIFETIME_SECONDS),
            "tid": publisher.tenant_id,
            "azp": MARKETPLACE_API_APP_ID,
            "azpacr": "2",
            "oid": marketplace_principal,
            "sub": marketplace_principal,
            "idtyp": "app",
            "ver": "2.0",
            "uti": unique_token_id(),
        }

    def _id_token_claims(self, issued: IssuedCode) -> dict[str, Any]:
        user, client_id = issued.user, issued.request.client_id
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": issuer(self._base_url, user.tenant_id),
            **self._signer.lifetime(TOKEN_LIFETIME_SECONDS),
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.username,
            "sub": _pairwise_subject(user, client_id),
            "tid": user.tenant_id,
            "ver": "2.0",
            "uti": unique_token_id(),
        }
        if user.mail:
            claims["email"] = user.mail
            # The app registration asks for the optional claim `xms_edov`, which Entra adds only beside
            # `email`: true when the owner of the address's domain is verified. Without it, `email` is
            # just an attribute someone typed.
            claims["xms_edov"] = user.mail_domain_verified
        if user.app_roles:
            claims["roles"] = list(user.app_roles)
        if issued.request.nonce is not None:
            claims["nonce"] = issued.request.nonce
        return claims

    def _user_access_token_claims(self, issued: IssuedCode) -> dict[str, Any]:
        # Entra issues a Graph token when only OpenID scopes (or Graph scopes) are asked for.
        user, client_id = issued.user, issued.request.client_id
        resource_scopes = [s.rsplit("/", 1)[-1] for s in issued.request.scopes if s not in OIDC_SCOPES]
        return {
            "aud": GRAPH_APP_ID,
            "iss": issuer(self._base_url, user.tenant_id),
            **self._signer.lifetime(TOKEN_LIFETIME_SECONDS),
            "tid": user.tenant_id,
            "oid": user.object_id,
            "sub": _pairwise_subject(user, GRAPH_APP_ID),
            "azp": client_id,
            "appid": client_id,
            "name": user.display_name,
            "preferred_username": user.username,
            "scp": " ".join(resource_scopes or ["User.Read"]),
            "idtyp": "user",
            "ver": "2.0",
            "uti": unique_token_id(),
        }


def _client_authentication(request: Request) -> tuple[str, str]:
    """client_secret_basic or client_secret_post; a client assertion is reported as unsupported."""
    if request.form.get("client_assertion"):
        raise OAuthError(
            401, "invalid_client", 700027, "Client assertions are not supported by the sandbox; use a secret."
        )
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username or "", basic.password or ""
    client_id = request.form.get("client_id", "")
    secret = request.form.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError(
            401, "invalid_client", 7000218, "The request body must contain client_id and client_secret."
        )
    return client_id, secret


def _check_redemption(issued: IssuedCode, request: Request, client_id: str, tenant: str) -> None:
    authorization = issued.request
    if authorization.client_id != client_id:
        raise OAuthError(400, "invalid_grant", 70000, "The code was issued to another application.")
    if authorization.tenant != tenant:
        raise OAuthError(400, "invalid_grant", 700005, "The code was issued for another tenant segment.")
    if request.form.get("redirect_uri") != authorization.redirect_uri:
        raise OAuthError(400, "invalid_grant", 70000, "redirect_uri differs from the authorize request's.")
    verifier = request.form.get("code_verifier", "")
    challenge = base64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    if not verifier or not hmac.compare_digest(challenge, authorization.code_challenge):
        raise OAuthError(
            400,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )


def _token_response(access_token: str, *, scopes: str | None, id_token: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "ext_expires_in": TOKEN_LIFETIME_SECONDS,
        "access_token": access_token,
    }
    if scopes is not None:
        response["scope"] = scopes
    if id_token is not None:
        response["id_token"] = id_token
    return response


def _pairwise_subject(user: TestUser, client_id: str) -> str:
    # Entra's `sub` differs per app for the same user; `oid` is the stable key (R10).
    return base64url(hashlib.sha256(f"{user.object_id}/{client_id}".encode()).digest())


def _service_principal_id(tenant_id: str, app_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tenant_id), app_id))
