"""The authorize endpoint and its sign-in page: the test users a tenant segment lets in, PKCE required.

GET validates the request and shows the page; the page's POST carries the same parameters and the chosen
user, and sends the browser back to the registered redirect URI with a code (query, fragment or form_post).
Errors after the redirect URI is known go back to it, as OAuth prescribes; before, they get an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Request, Response

from sandbox.entra.codes import AuthorizationCodes, AuthorizationRequest, client_info
from sandbox.entra.redirect_uris import SignInPageError, registered_client
from sandbox.entra.responses import html_response
from sandbox.identities import Identities, SsoApp, TestUser

log = logging.getLogger("sandbox.entra")

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
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


class _RedirectedError(Exception):
    """An authorize error reported to the (already validated) redirect URI, as OAuth prescribes."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class SignInPages:
    """Serves /{tenant}/oauth2/v2.0/authorize (GET: the page, POST: the chosen user)."""

    def __init__(
        self,
        identities: Identities,
        codes: AuthorizationCodes,
        app_redirect_uris: Callable[[], Iterable[str]],
    ) -> None:
        self._identities = identities
        self._codes = codes
        self._app_redirect_uris = app_redirect_uris

    def serve_authorize(self, request: Request, tenant: str) -> Response:
        parameters = request.form if request.method == "POST" else request.args
        try:
            app, redirect_uri = registered_client(self._identities, self._app_redirect_uris, parameters)
        except SignInPageError as error:
            log.warning("authorize refused without redirect", extra={"reason": error.message})
            return _error_page(error)
        response_mode = _response_mode(parameters)
        try:
            authorization = _authorization_request(tenant, app, redirect_uri, parameters)
            if request.method == "GET":
                return self._signin_page(request, authorization, parameters)
            user = self._chosen_user(tenant, parameters.get("user", ""))
        except _RedirectedError as error:
            log.warning("authorize refused", extra={"error": error.error, "reason": error.description})
            fields = {"error": error.error, "error_description": error.description}
            return _to_client(redirect_uri, response_mode, _with_state(fields, parameters.get("state")))
        code = self._codes.issue(authorization, user)
        log.info(
            "authorization code issued", extra={"client_id": authorization.client_id, "oid": user.object_id}
        )
        return _to_client(redirect_uri, response_mode, _code_response(authorization, code, user))

    def users_for(self, tenant: str) -> list[TestUser]:
        """Who may sign in through a tenant segment: common everyone, organizations work accounts, ..."""
        users = self._identities.users
        if tenant == "common":
            return list(users)
        if tenant == "organizations":
            return [u for u in users if u.account_kind == "work"]
        if tenant == "consumers":
            return [u for u in users if u.account_kind == "personal"]
        return [u for u in users if u.tenant_id == tenant]

    def _signin_page(
        self, request: Request, authorization: AuthorizationRequest, parameters: Mapping[str, str]
    ) -> Response:
        html = _TEMPLATES.get_template(_SIGNIN_TEMPLATE).render(
            mode="signin",
            action=request.path,
            tenant=authorization.tenant,
            client_id=authorization.client_id,
            users=self.users_for(authorization.tenant),
            tenant_names={
                self._identities.publisher.tenant_id: "Publisher (your own tenant)",
                **{t.tenant_id: t.display_name for t in self._identities.tenants},
            },
            fields={name: parameters[name] for name in _CARRIED_PARAMETERS if name in parameters},
        )
        return html_response(html, 200)

    def _chosen_user(self, tenant: str, object_id: str) -> TestUser:
        user = next((u for u in self.users_for(tenant) if u.object_id == object_id), None)
        if user is None:
            raise _RedirectedError(
                "access_denied", f"AADSTS50020: user '{object_id}' cannot sign in through tenant '{tenant}'"
            )
        return user


def _authorization_request(
    tenant: str, app: SsoApp, redirect_uri: str, parameters: Mapping[str, str]
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


def _code_response(authorization: AuthorizationRequest, code: str, user: TestUser) -> dict[str, str]:
    fields = _with_state({"code": code}, authorization.state)
    if authorization.wants_client_info:
        fields["client_info"] = client_info(user)
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
        return html_response(html, 200)
    separator = "#" if response_mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    response = Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(fields)}"})
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(error: SignInPageError) -> Response:
    html = _TEMPLATES.get_template(_SIGNIN_TEMPLATE).render(
        mode="error", error_code=f"AADSTS{error.code}", message=error.message
    )
    return html_response(html, 400)
