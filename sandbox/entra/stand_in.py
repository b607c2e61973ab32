"""`EntraStandIn`: Entra ID for one set of identities, its routes and the helpers the sandbox and tests call.

It answers what the real libraries ask for (msal, azure-identity, PyJWT's JWKS client), mints the tokens
Microsoft puts on webhook calls (R39) and checks the publisher's bearer tokens for the Fulfillment API
stand-in. Paths mirror Entra's, with {tenant} a tenant GUID, "common", "organizations" or "consumers":
    GET  /{tenant}/v2.0/.well-known/openid-configuration    GET /{tenant}/.well-known/openid-configuration
    GET  /{tenant}/discovery/v2.0/keys                       GET /{tenant}/discovery/keys
    POST /{tenant}/oauth2/v2.0/token                         POST /{tenant}/oauth2/token (v1, `resource=`)
    GET|POST /{tenant}/oauth2/v2.0/authorize
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.entra import discovery
from sandbox.entra.codes import AuthorizationCodes
from sandbox.entra.discovery import TENANT_ALIASES, V1_ISSUER_HOST
from sandbox.entra.responses import OAuthError, json_error, json_response
from sandbox.entra.signin import SignInPages
from sandbox.entra.signing import TokenSigner, denied
from sandbox.entra.tokens import GRAPH_APP_ID, MARKETPLACE_API_APP_ID, TOKEN_LIFETIME_SECONDS, TokenIssuer
from sandbox.identities import Identities

log = logging.getLogger("sandbox.entra")


class EntraStandIn:
    """Plays Entra ID for one set of identities; `dispatch` is mounted into the sandbox's WSGI app."""

    def __init__(
        self,
        base_url: str,
        identities: Identities,
        signing_key: rsa.RSAPrivateKey | None = None,
        *,
        clock: Callable[[], float] = time.time,
        app_redirect_uris: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.identities = identities
        self._signer = TokenSigner(signing_key, clock)
        codes = AuthorizationCodes(clock)
        self._tokens = TokenIssuer(self.base_url, identities, self._signer, codes)
        # Redirect URIs registered for every SSO app besides the identities file's: the app's own callback.
        self._signin = SignInPages(identities, codes, app_redirect_uris)
        self._urls = _url_map()

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    # ----- public helpers -------------------------------------------------------------------------------

    def openid_configuration_url(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}/v2.0/.well-known/openid-configuration"

    def authority(self, tenant: str = "common") -> str:
        """What to pass as `authority` to msal (and, without the tenant, to azure-identity)."""
        return f"{self.base_url}/{tenant}"

    def issuer(self, tenant_id: str) -> str:
        return discovery.issuer(self.base_url, tenant_id)

    def jwks(self) -> dict[str, Any]:
        return self._signer.jwks()

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """The v2 metadata document for a tenant segment (GUID or alias), as Entra serves it."""
        return discovery.openid_configuration(self.base_url, tenant)

    def openid_configuration_v1(self, tenant: str) -> dict[str, Any]:
        """The v1 metadata document: what S19's webhook check reads to find `jwks_uri`."""
        return discovery.openid_configuration_v1(self.base_url, tenant)

    def publisher_token_claims(self) -> dict[str, Any]:
        """Claims of the v2 access token the publisher's app gets for the marketplace API (R43, R45)."""
        return self._tokens.publisher_token_claims()

    def webhook_token_claims(self) -> dict[str, Any]:
        """Claims of the token Microsoft puts on webhook calls to the publisher (R39)."""
        return self._tokens.webhook_token_claims()

    def mint_webhook_token(
        self,
        *,
        overrides: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        sign_with: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        kid: str | None = None,
    ) -> str:
        """A webhook bearer token; the keyword arguments break one rule at a time for negative tests.

        `algorithm="none"` gives an unsigned token; "HS256"/"HS384"/"HS512" sign with the public key's PEM
        as the HMAC secret (the classic algorithm-confusion attack a validator must refuse).
        """
        claims = {**self.webhook_token_claims(), **self._signer.lifetime(lifetime)}
        return self._signer.mint(claims, overrides, remove, sign_with, algorithm, kid)

    def mint_publisher_access_token(
        self,
        *,
        overrides: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        sign_with: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        kid: str | None = None,
    ) -> str:
        """A Fulfillment API bearer token as the token endpoint issues it, with the same knobs as above."""
        claims = {**self.publisher_token_claims(), **self._signer.lifetime(lifetime)}
        return self._signer.mint(claims, overrides, remove, sign_with, algorithm, kid)

    def verify_access_token(self, authorization_header: str | None) -> dict[str, Any]:
        """Checks a Fulfillment API `Authorization` header; returns the claims or raises AccessDenied."""
        publisher = self.identities.publisher
        claims = self._signer.verified_claims(authorization_header, audience=MARKETPLACE_API_APP_ID)
        if claims.get("tid") != publisher.tenant_id:
            raise denied(403, "token is for a tenant other than the publisher's")
        callers = [claims[name] for name in ("appid", "azp") if name in claims]
        if not callers or any(caller != publisher.client_id for caller in callers):
            raise denied(403, "token was issued to an app other than the publisher's registered app")
        accepted_issuers = {self.issuer(publisher.tenant_id), f"{V1_ISSUER_HOST}/{publisher.tenant_id}/"}
        if claims.get("iss") not in accepted_issuers:
            raise denied(401, "token issuer is not the publisher tenant")
        return claims

    def verify_graph_access_token(self, authorization_header: str | None) -> dict[str, Any]:
        """Checks a user's Graph token (as a Graph /me stand-in would, R11); returns its claims."""
        claims = self._signer.verified_claims(authorization_header, audience=GRAPH_APP_ID)
        if self.identities.user(str(claims.get("oid"))) is None:
            raise denied(401, "token names no known user")
        return claims

    # ----- WSGI entry --------------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | None:
        """Answers an Entra path; None when the path is not one, so the caller can try its own routes."""
        adapter = self._urls.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match()
        except NotFound:
            return None
        except MethodNotAllowed as exc:
            return json_error(
                OAuthError(405, "invalid_request", 900561, f"{request.method} not allowed"), exc
            )
        except HTTPException:
            return None
        handler: Callable[..., Response] = getattr(self, f"_serve_{endpoint}")
        try:
            self._check_tenant(arguments["tenant"])
            return handler(request, **arguments)
        except OAuthError as error:
            log.warning(
                "entra request refused",
                extra={"path": request.path, "error": error.error, "reason": error.description},
            )
            return json_error(error)

    def _check_tenant(self, tenant: str) -> None:
        if tenant not in TENANT_ALIASES and tenant not in self.identities.known_tenant_ids():
            raise OAuthError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")

    def _serve_metadata(self, request: Request, tenant: str) -> Response:
        return json_response(self.openid_configuration(tenant))

    def _serve_metadata_v1(self, request: Request, tenant: str) -> Response:
        return json_response(self.openid_configuration_v1(tenant))

    def _serve_keys(self, request: Request, tenant: str) -> Response:
        return json_response(self.jwks())

    def _serve_token(self, request: Request, tenant: str) -> Response:
        return json_response(self._tokens.token(request, tenant))

    def _serve_token_v1(self, request: Request, tenant: str) -> Response:
        return json_response(self._tokens.token_v1(request, tenant))

    def _serve_authorize(self, request: Request, tenant: str) -> Response:
        return self._signin.serve_authorize(request, tenant)


def _url_map() -> Map:
    return Map(
        [
            Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="metadata", methods=["GET"]),
            Rule("/<tenant>/.well-known/openid-configuration", endpoint="metadata_v1", methods=["GET"]),
            Rule("/<tenant>/discovery/v2.0/keys", endpoint="keys", methods=["GET"]),
            Rule("/<tenant>/discovery/keys", endpoint="keys", methods=["GET"]),
            Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
            Rule("/<tenant>/oauth2/token", endpoint="token_v1", methods=["POST"]),
            Rule("/<tenant>/oauth2/v2.0/authorize", endpoint="authorize", methods=["GET", "POST"]),
        ],
        strict_slashes=False,
    )
