"""The sandbox's stand-in for Microsoft Entra ID (login.microsoftonline.com), served over HTTPS on loopback.

It answers what the real libraries ask for: OpenID metadata and JWKS, the token endpoint (client credentials
for the publisher's app, R43-R46; authorization code with PKCE for the landing page's SSO app, R8-R10) and
an authorize endpoint with a sign-in page listing the test users. It also mints the tokens Microsoft puts on
webhook calls (R39) and checks the publisher's bearer tokens for the Fulfillment API stand-in.

Paths mirror Entra's, with {tenant} a tenant GUID, "common", "organizations" or "consumers":
    GET  /{tenant}/v2.0/.well-known/openid-configuration    GET /{tenant}/.well-known/openid-configuration
    GET  /{tenant}/discovery/v2.0/keys                       GET /{tenant}/discovery/keys
    POST /{tenant}/oauth2/v2.0/token                         POST /{tenant}/oauth2/token (v1, `resource=`)
    GET|POST /{tenant}/oauth2/v2.0/authorize
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.identities import MSA_TENANT_ID, Identities, SsoApp, TestUser

log = logging.getLogger("sandbox.entra")

MARKETPLACE_API_APP_ID = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
MARKETPLACE_SCOPE = f"{MARKETPLACE_API_APP_ID}/.default"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TENANT_ALIASES = ("common", "organizations", "consumers")
# Multi-tenant metadata carries this literal placeholder in `issuer`, exactly as Entra's does.
ISSUER_TENANT_PLACEHOLDER = "{tenantid}"
V1_ISSUER_HOST = "https://sts.windows.net"
TOKEN_LIFETIME_SECONDS = 3600
AUTHORIZATION_CODE_LIFETIME_SECONDS = 300
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_SIGNIN_TEMPLATE = "entra_signin.html"
# Authorize parameters carried from the GET to the sign-in form's POST (and nothing else).
_CARRIED_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "client_info",
)


class AccessDenied(Exception):  # noqa: N818 - the name other modules import
    """A bearer token the Fulfillment API stand-in must refuse: 401 missing/invalid, 403 wrong app/tenant."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class _OAuthError(Exception):
    """An error answered as Entra-shaped JSON ({"error", "error_description", "error_codes", ...})."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


class _SignInPageError(Exception):
    """An authorize request that cannot be trusted to redirect anywhere: answered with a 400 page (no open
    redirect)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _RedirectedError(Exception):
    """An authorize error reported to the (already validated) redirect URI, as OAuth prescribes."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


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
class _IssuedCode:
    request: AuthorizationRequest
    user: TestUser
    expires_at: float


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
        # Redirect URIs registered for every SSO app besides the identities file's: the app's own callback,
        # read at each sign-in so it follows the app's URL (a moved port, a changed landing page setting).
        self._app_redirect_uris = app_redirect_uris
        self._signing_key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = _key_id(self._signing_key.public_key())
        self._clock = clock
        self._codes: dict[str, _IssuedCode] = {}
        self._redeemed_codes: set[str] = set()
        self._codes_lock = threading.Lock()
        self._urls = _url_map()

    # ----- public helpers -------------------------------------------------------------------------------

    def openid_configuration_url(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}/v2.0/.well-known/openid-configuration"

    def authority(self, tenant: str = "common") -> str:
        """What to pass as `authority` to msal (and, without the tenant, to azure-identity)."""
        return f"{self.base_url}/{tenant}"

    def issuer(self, tenant_id: str) -> str:
        return f"{self.base_url}/{tenant_id}/v2.0"

    def jwks(self) -> dict[str, Any]:
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**public_jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """The v2 metadata document for a tenant segment (GUID or alias), as Entra serves it."""
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": self.issuer(self._issuer_tenant(tenant)),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(OIDC_SCOPES),
            "claims_supported": [
                *("sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username"),
                *("email", "oid", "tid", "ver"),
            ],
            "request_uri_parameter_supported": False,
            "tenant_region_scope": None,
            "cloud_instance_name": "sandbox.local",
        }

    def openid_configuration_v1(self, tenant: str) -> dict[str, Any]:
        """The v1 metadata document: what S19's webhook check reads to find `jwks_uri`."""
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": f"{V1_ISSUER_HOST}/{self._issuer_tenant(tenant)}/",
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/discovery/keys",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }

    def publisher_token_claims(self) -> dict[str, Any]:
        """Claims of the v2 access token the publisher's app gets for the marketplace API (R43, R45)."""
        publisher = self.identities.publisher
        return {
            "aud": MARKETPLACE_API_APP_ID,
            "iss": self.issuer(publisher.tenant_id),
            **self._lifetime(TOKEN_LIFETIME_SECONDS),
            "tid": publisher.tenant_id,
            "azp": publisher.client_id,
            "azpacr": "1",
            "appid": publisher.client_id,
            "oid": publisher.service_principal_id,
            "sub": publisher.service_principal_id,
            "idtyp": "app",
            "ver": "2.0",
            "uti": _unique_token_id(),
        }

    def webhook_token_claims(self) -> dict[str, Any]:
        """Claims of the token Microsoft puts on webhook calls to the publisher (R39)."""
        publisher = self.identities.publisher
        marketplace_principal = _service_principal_id(publisher.tenant_id, MARKETPLACE_API_APP_ID)
        return {
            "aud": publisher.client_id,
            "iss": self.issuer(publisher.tenant_id),
            **self._lifetime(TOKEN_LIFETIME_SECONDS),
            "tid": publisher.tenant_id,
            "azp": MARKETPLACE_API_APP_ID,
            "azpacr": "2",
            "oid": marketplace_principal,
            "sub": marketplace_principal,
            "idtyp": "app",
            "ver": "2.0",
            "uti": _unique_token_id(),
        }

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
        claims = {**self.webhook_token_claims(), **self._lifetime(lifetime)}
        return self._mint(claims, overrides, remove, sign_with, algorithm, kid)

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
        claims = {**self.publisher_token_claims(), **self._lifetime(lifetime)}
        return self._mint(claims, overrides, remove, sign_with, algorithm, kid)

    def verify_access_token(self, authorization_header: str | None) -> dict[str, Any]:
        """Checks a Fulfillment API `Authorization` header; returns the claims or raises AccessDenied."""
        publisher = self.identities.publisher
        claims = self._verified_claims(authorization_header, audience=MARKETPLACE_API_APP_ID)
        if claims.get("tid") != publisher.tenant_id:
            raise _denied(403, "token is for a tenant other than the publisher's")
        callers = [claims[name] for name in ("appid", "azp") if name in claims]
        if not callers or any(caller != publisher.client_id for caller in callers):
            raise _denied(403, "token was issued to an app other than the publisher's registered app")
        accepted_issuers = {self.issuer(publisher.tenant_id), f"{V1_ISSUER_HOST}/{publisher.tenant_id}/"}
        if claims.get("iss") not in accepted_issuers:
            raise _denied(401, "token issuer is not the publisher tenant")
        return claims

    def verify_graph_access_token(self, authorization_header: str | None) -> dict[str, Any]:
        """Checks a user's Graph token (as a Graph /me stand-in would, R11); returns its claims."""
        claims = self._verified_claims(authorization_header, audience=GRAPH_APP_ID)
        if self.identities.user(str(claims.get("oid"))) is None:
            raise _denied(401, "token names no known user")
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
            return _json_error(
                _OAuthError(405, "invalid_request", 900561, f"{request.method} not allowed"), exc
            )
        except HTTPException:
            return None
        handler: Callable[..., Response] = getattr(self, f"_serve_{endpoint}")
        try:
            self._check_tenant(arguments["tenant"])
            return handler(request, **arguments)
        except _OAuthError as error:
            log.warning(
                "entra request refused",
                extra={"path": request.path, "error": error.error, "reason": error.description},
            )
            return _json_error(error)

    def _serve_metadata(self, request: Request, tenant: str) -> Response:
        return _json(self.openid_configuration(tenant))

    def _serve_metadata_v1(self, request: Request, tenant: str) -> Response:
        return _json(self.openid_configuration_v1(tenant))

    def _serve_keys(self, request: Request, tenant: str) -> Response:
        return _json(self.jwks())

    def _serve_token(self, request: Request, tenant: str) -> Response:
        grant_type = request.form.get("grant_type", "")
        if grant_type == "client_credentials":
            scopes = request.form.get("scope", "").split()
            return _json(self._client_credentials(request, tenant, scopes, version="2.0"))
        if grant_type == "authorization_code":
            return _json(self._redeem_code(request, tenant))
        raise _OAuthError(400, "unsupported_grant_type", 70003, f"grant_type {grant_type!r} is not supported")

    def _serve_token_v1(self, request: Request, tenant: str) -> Response:
        grant_type = request.form.get("grant_type", "")
        if grant_type != "client_credentials":
            raise _OAuthError(
                400, "unsupported_grant_type", 70003, "the v1 endpoint serves client_credentials"
            )
        resource = request.form.get("resource", "")
        return _json(self._client_credentials(request, tenant, [f"{resource}/.default"], version="1.0"))

    def _serve_authorize(self, request: Request, tenant: str) -> Response:
        parameters = request.form if request.method == "POST" else request.args
        try:
            app, redirect_uri = self._registered_client(parameters)
        except _SignInPageError as error:
            log.warning("authorize refused without redirect", extra={"reason": error.message})
            return _error_page(error)
        response_mode = _response_mode(parameters)
        try:
            authorization = self._authorization_request(tenant, app, redirect_uri, parameters)
            if request.method == "GET":
                return self._signin_page(request, authorization, parameters)
            user = self._chosen_user(tenant, parameters.get("user", ""))
        except _RedirectedError as error:
            log.warning("authorize refused", extra={"error": error.error, "reason": error.description})
            fields = {"error": error.error, "error_description": error.description}
            return _to_client(redirect_uri, response_mode, _with_state(fields, parameters.get("state")))
        code = self._issue_code(authorization, user)
        return _to_client(redirect_uri, response_mode, _code_response(authorization, code, user))

    # ----- tenants ----------------------------------------------------------------------------------------

    def _check_tenant(self, tenant: str) -> None:
        if tenant not in TENANT_ALIASES and tenant not in self.identities.known_tenant_ids():
            raise _OAuthError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")

    def _issuer_tenant(self, tenant: str) -> str:
        if tenant == "consumers":
            return MSA_TENANT_ID
        return ISSUER_TENANT_PLACEHOLDER if tenant in TENANT_ALIASES else tenant

    def _users_for(self, tenant: str) -> list[TestUser]:
        """Who may sign in through a tenant segment: common everyone, organizations work accounts, ..."""
        users = self.identities.users
        if tenant == "common":
            return list(users)
        if tenant == "organizations":
            return [u for u in users if u.account_kind == "work"]
        if tenant == "consumers":
            return [u for u in users if u.account_kind == "personal"]
        return [u for u in users if u.tenant_id == tenant]

    # ----- client credentials -----------------------------------------------------------------------------

    def _client_credentials(
        self, request: Request, tenant: str, scopes: list[str], version: str
    ) -> dict[str, Any]:
        publisher = self.identities.publisher
        client_id, secret = _client_authentication(request)
        if tenant != publisher.tenant_id or client_id != publisher.client_id:
            raise _OAuthError(
                401,
                "invalid_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not hmac.compare_digest(secret.encode(), publisher.client_secret.encode()):
            raise _OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if scopes != [MARKETPLACE_SCOPE]:
            raise _OAuthError(
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
        return _token_response(self._sign(claims), scopes=None if version == "1.0" else MARKETPLACE_SCOPE)

    # ----- authorization code -----------------------------------------------------------------------------

    def _registered_client(self, parameters: Mapping[str, str]) -> tuple[SsoApp, str]:
        client_id = parameters.get("client_id", "")
        app = self.identities.sso_app(client_id)
        if app is None:
            raise _SignInPageError(
                700016, f"Application with identifier '{client_id}' was not found in the sandbox."
            )
        redirect_uri = parameters.get("redirect_uri", "")
        if redirect_uri not in {*app.redirect_uris, *self._app_redirect_uris()}:
            raise _SignInPageError(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                f"URIs configured for the application '{client_id}'.",
            )
        return app, redirect_uri

    def _authorization_request(
        self, tenant: str, app: SsoApp, redirect_uri: str, parameters: Mapping[str, str]
    ) -> AuthorizationRequest:
        if parameters.get("response_type") != "code":
            raise _RedirectedError("unsupported_response_type", "AADSTS700054: only response_type=code")
        scopes = tuple(parameters.get("scope", "").split())
        if "openid" not in scopes:
            raise _RedirectedError("invalid_request", "AADSTS900144: scope must contain 'openid'")
        if not parameters.get("code_challenge") or parameters.get("code_challenge_method") != "S256":
            raise _RedirectedError(
                "invalid_request", "AADSTS9002325: PKCE is required: code_challenge with method S256"
            )
        if parameters.get("prompt") == "none":
            raise _RedirectedError("login_required", "AADSTS50058: the sandbox keeps no sign-in session")
        return AuthorizationRequest(
            tenant=tenant,
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=parameters.get("state"),
            nonce=parameters.get("nonce"),
            code_challenge=parameters["code_challenge"],
            response_mode=_response_mode(parameters),
            wants_client_info=parameters.get("client_info") == "1",
        )

    def _signin_page(
        self, request: Request, authorization: AuthorizationRequest, parameters: Mapping[str, str]
    ) -> Response:
        html = _TEMPLATES.get_template(_SIGNIN_TEMPLATE).render(
            mode="signin",
            action=request.path,
            tenant=authorization.tenant,
            client_id=authorization.client_id,
            users=self._users_for(authorization.tenant),
            tenant_names={t.tenant_id: t.display_name for t in self.identities.tenants},
            fields={name: parameters[name] for name in _CARRIED_PARAMETERS if name in parameters},
        )
        return _html(html, 200)

    def _chosen_user(self, tenant: str, object_id: str) -> TestUser:
        user = next((u for u in self._users_for(tenant) if u.object_id == object_id), None)
        if user is None:
            raise _RedirectedError(
                "access_denied", f"AADSTS50020: user '{object_id}' cannot sign in through tenant '{tenant}'"
            )
        return user

    def _issue_code(self, authorization: AuthorizationRequest, user: TestUser) -> str:
        code = secrets.token_urlsafe(32)
        expires_at = self._clock() + AUTHORIZATION_CODE_LIFETIME_SECONDS
        with self._codes_lock:
            self._codes[code] = _IssuedCode(authorization, user, expires_at)
        log.info(
            "authorization code issued", extra={"client_id": authorization.client_id, "oid": user.object_id}
        )
        return code

    def _redeem_code(self, request: Request, tenant: str) -> dict[str, Any]:
        client_id, secret = _client_authentication(request)
        app = self.identities.sso_app(client_id)
        if app is None:
            raise _OAuthError(401, "invalid_client", 700016, f"Application '{client_id}' was not found.")
        if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            raise _OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        issued = self._take_code(request.form.get("code", ""))
        _check_redemption(issued, request, client_id, tenant)
        response = _token_response(
            self._sign(self._user_access_token_claims(issued)),
            scopes=" ".join(s for s in issued.request.scopes if s != "offline_access"),
            id_token=self._sign(self._id_token_claims(issued)),
        )
        if request.form.get("client_info") == "1":
            response["client_info"] = _client_info(issued.user)
        log.info("authorization code redeemed", extra={"client_id": client_id, "oid": issued.user.object_id})
        return response

    def _take_code(self, code: str) -> _IssuedCode:
        # Popped before any other check: a code is single-use even when the redemption fails.
        with self._codes_lock:
            issued = self._codes.pop(code, None)
            already_used = code in self._redeemed_codes
            self._redeemed_codes.add(code)
        if issued is None:
            if already_used:
                raise _OAuthError(
                    400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
                )
            raise _OAuthError(
                400, "invalid_grant", 9002313, "Invalid request: the authorization code is unknown."
            )
        if self._clock() > issued.expires_at:
            raise _OAuthError(400, "invalid_grant", 70008, "The provided authorization code has expired.")
        return issued

    def _id_token_claims(self, issued: _IssuedCode) -> dict[str, Any]:
        user, client_id = issued.user, issued.request.client_id
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.issuer(user.tenant_id),
            **self._lifetime(TOKEN_LIFETIME_SECONDS),
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.username,
            "sub": _pairwise_subject(user, client_id),
            "tid": user.tenant_id,
            "ver": "2.0",
            "uti": _unique_token_id(),
        }
        if user.mail:
            claims["email"] = user.mail
            # The app registration asks for the optional claim `xms_edov`, which Entra adds only beside
            # `email`: true when the owner of the address's domain is verified. Without it, `email` is
            # just an attribute someone typed.
            claims["xms_edov"] = user.mail_domain_verified
        if issued.request.nonce is not None:
            claims["nonce"] = issued.request.nonce
        return claims

    def _user_access_token_claims(self, issued: _IssuedCode) -> dict[str, Any]:
        # Entra issues a Graph token when only OpenID scopes (or Graph scopes) are asked for.
        user, client_id = issued.user, issued.request.client_id
        resource_scopes = [s.rsplit("/", 1)[-1] for s in issued.request.scopes if s not in OIDC_SCOPES]
        return {
            "aud": GRAPH_APP_ID,
            "iss": self.issuer(user.tenant_id),
            **self._lifetime(TOKEN_LIFETIME_SECONDS),
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
            "uti": _unique_token_id(),
        }

    # ----- signing and verifying --------------------------------------------------------------------------

    def _lifetime(self, seconds: int) -> dict[str, int]:
        now = int(self._clock())
        return {"iat": now, "nbf": now, "exp": now + seconds}

    def _sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._signing_key, algorithm="RS256", headers={"kid": self.key_id})

    def _mint(
        self,
        claims: dict[str, Any],
        overrides: dict[str, Any] | None,
        remove: tuple[str, ...],
        sign_with: rsa.RSAPrivateKey | None,
        algorithm: str,
        kid: str | None,
    ) -> str:
        claims.update(overrides or {})
        for name in remove:
            claims.pop(name, None)
        headers = {"kid": kid or self.key_id, "typ": "JWT"}
        if algorithm == "none" or algorithm.startswith("HS"):
            return _forged_token(claims, headers, algorithm, self._public_pem())
        return jwt.encode(claims, sign_with or self._signing_key, algorithm=algorithm, headers=headers)

    def _public_pem(self) -> bytes:
        return self._signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _verified_claims(self, authorization_header: str | None, *, audience: str) -> dict[str, Any]:
        token = _bearer_token(authorization_header)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _denied(401, "token is not a JWT") from None
        if header.get("kid") != self.key_id:
            raise _denied(401, "token is signed with an unknown key (kid)")
        try:
            claims = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                # Lifetime is checked below against the stand-in's clock: tests move time without sleeping.
                options={
                    "require": ["exp", "nbf", "iat", "aud", "iss", "tid"],
                    **{"verify_exp": False, "verify_nbf": False, "verify_iat": False},
                },
            )
        except jwt.InvalidAudienceError:
            raise _denied(401, f"token audience is not {audience}") from None
        except jwt.InvalidTokenError as exc:
            raise _denied(401, f"token is invalid: {exc}") from None
        self._check_lifetime(claims)
        return claims

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        if not all(isinstance(claims[name], int) for name in ("exp", "nbf", "iat")):
            raise _denied(401, "token exp/nbf/iat must be integers")
        if now >= claims["exp"]:
            raise _denied(401, "token has expired")
        if now < claims["nbf"]:
            raise _denied(401, "token is not valid yet (nbf)")


# ----- module helpers ---------------------------------------------------------------------------------------


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


def _denied(status: int, reason: str) -> AccessDenied:
    log.warning("bearer token refused", extra={"status": status, "reason": reason})
    return AccessDenied(status, reason)


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise _denied(401, "Authorization header is missing")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _denied(401, "Authorization header is not 'Bearer <token>'")
    return token.strip()


def _client_authentication(request: Request) -> tuple[str, str]:
    """client_secret_basic or client_secret_post; a client assertion is reported as unsupported."""
    if request.form.get("client_assertion"):
        raise _OAuthError(
            401, "invalid_client", 700027, "Client assertions are not supported by the sandbox; use a secret."
        )
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username or "", basic.password or ""
    client_id = request.form.get("client_id", "")
    secret = request.form.get("client_secret", "")
    if not client_id or not secret:
        raise _OAuthError(
            401, "invalid_client", 7000218, "The request body must contain client_id and client_secret."
        )
    return client_id, secret


def _check_redemption(issued: _IssuedCode, request: Request, client_id: str, tenant: str) -> None:
    authorization = issued.request
    if authorization.client_id != client_id:
        raise _OAuthError(400, "invalid_grant", 70000, "The code was issued to another application.")
    if authorization.tenant != tenant:
        raise _OAuthError(400, "invalid_grant", 700005, "The code was issued for another tenant segment.")
    if request.form.get("redirect_uri") != authorization.redirect_uri:
        raise _OAuthError(400, "invalid_grant", 70000, "redirect_uri differs from the authorize request's.")
    verifier = request.form.get("code_verifier", "")
    challenge = _base64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    if not verifier or not hmac.compare_digest(challenge, authorization.code_challenge):
        raise _OAuthError(
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


def _code_response(authorization: AuthorizationRequest, code: str, user: TestUser) -> dict[str, str]:
    fields = _with_state({"code": code}, authorization.state)
    if authorization.wants_client_info:
        fields["client_info"] = _client_info(user)
    return fields


def _response_mode(parameters: Mapping[str, str]) -> str:
    mode = parameters.get("response_mode") or "query"
    return mode if mode in {"query", "fragment", "form_post"} else "query"


def _with_state(fields: dict[str, str], state: str | None) -> dict[str, str]:
    return {**fields, "state": state} if state is not None else fields


def _to_client(redirect_uri: str, response_mode: str, fields: dict[str, str]) -> Response:
    if response_mode == "form_post":
        html = _TEMPLATES.get_template(_SIGNIN_TEMPLATE).render(
            mode="form_post", redirect_uri=redirect_uri, fields=fields
        )
        return _html(html, 200)
    separator = "#" if response_mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    response = Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(fields)}"})
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(error: _SignInPageError) -> Response:
    html = _TEMPLATES.get_template(_SIGNIN_TEMPLATE).render(
        mode="error", error_code=f"AADSTS{error.code}", message=error.message
    )
    return _html(html, 400)


def _html(html: str, status: int) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _json(document: Mapping[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_error(error: _OAuthError, http_exception: HTTPException | None = None) -> Response:
    trace_id = str(uuid.uuid4())
    document = {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description} Trace ID: {trace_id}",
        "error_codes": [error.code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": trace_id,
        "correlation_id": str(uuid.uuid4()),
    }
    response = _json(document, error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="sandbox-entra"'
    if http_exception is not None and isinstance(http_exception, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(http_exception.valid_methods or [])
    return response


def _forged_token(
    claims: Mapping[str, Any], headers: dict[str, str], algorithm: str, public_pem: bytes
) -> str:
    """An unsigned ("none") or HMAC-with-the-public-key token; PyJWT refuses to make these on purpose."""
    header = {**headers, "alg": algorithm}
    signing_input = f"{_base64url_json(header)}.{_base64url_json(dict(claims))}"
    if algorithm == "none":
        return f"{signing_input}."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    signature = hmac.new(public_pem, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_base64url(signature)}"


def _key_id(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 thumbprint: stable for a key, so a persisted key keeps its kid across restarts."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    return _base64url(hashlib.sha256(canonical.encode()).digest())


def _client_info(user: TestUser) -> str:
    # msal builds its account (home_account_id = uid.utid) from this, not from the id_token.
    return _base64url_json({"uid": user.object_id, "utid": user.tenant_id})


def _pairwise_subject(user: TestUser, client_id: str) -> str:
    # Entra's `sub` differs per app for the same user; `oid` is the stable key (R10).
    return _base64url(hashlib.sha256(f"{user.object_id}/{client_id}".encode()).digest())


def _service_principal_id(tenant_id: str, app_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tenant_id), app_id))


def _unique_token_id() -> str:
    return secrets.token_urlsafe(16)


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _base64url_json(document: Mapping[str, Any]) -> str:
    return _base64url(json.dumps(document, separators=(",", ":")).encode())
