"""Buyer sign-in routes: /api/auth/signin, /api/auth/callback and /api/auth/signout (R8-R11).

The callback turns a validated Entra ID sign-in into a session: the user is stored by tenant id + object id,
any seat reserved for an address the ID token vouches for (UPN, or an email Entra marks verified) in a
subscription their tenant is the beneficiary of is bound to that identity, and the browser goes on to
`next`, which can only be a path on this site (no open redirect).

Where the flow state lives: msal's auth-code flow (state, nonce, PKCE verifier, redirect URI) is kept in a
cookie of its own, separate from the session, signed with SESSION_SECRET under its own salt, HttpOnly,
SameSite=Lax, valid for ten minutes and deleted by the callback. That is safe although the browser can read
it: the signature stops anyone from swapping in another state or nonce; the verifier and nonce only protect
this browser's own sign-in, and the cookie never leaves this browser for this site (no script reads it); a
stolen code is useless without both the verifier and our client secret; and Entra redeems a code once. The
server keeps no per-sign-in rows, so an abandoned sign-in leaves nothing to clean up.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import azure.functions as func

from shared.app_context import services
from shared.domain.operators import operator_roles
from shared.identity.signin import SignInError, finish_sign_in, start_sign_in
from shared.logs import get_logger, log_context
from shared.web import csrf
from shared.web.current_user import (
    DEFAULT_AFTER_SIGN_IN,
    load_session,
    session_codec,
    sign_in,
    sign_out,
    user_from_session,
)
from shared.web.pages import error_page, page, redirect
from shared.web.security import safe_redirect_target
from shared.web.sessions import SessionCodec
from shared.workflows.seats import bind_seats
from shared.workflows.signin import remember_user

if TYPE_CHECKING:
    from shared.app_context import Services
    from shared.config import Settings
    from shared.identity.signin import SignInResult

log = get_logger(__name__)

RESTART_HINT = "Go back to the page you came from and sign in again."
FLOW_MAX_AGE_SECONDS = 600


def flow_codec(settings: Settings) -> SessionCodec:
    """The signed cookie that carries one sign-in's flow state from /signin to /callback."""
    secure = urlsplit(settings.public_base_url).scheme == "https"
    return SessionCodec(
        settings.session_secret,
        secure=secure,
        max_age_seconds=FLOW_MAX_AGE_SECONDS,
        cookie_name="__Host-signin" if secure else "signin",
        salt="signin-flow",
    )


def with_cookies(response: func.HttpResponse, *cookies: str) -> func.HttpResponse:
    """Adds each Set-Cookie value as its own header (a mapping could hold only one)."""
    for cookie in cookies:
        response.headers.add("Set-Cookie", cookie)
    return response


def sign_in_redirect(settings: Settings, next_path: str, *cookies: str) -> func.HttpResponse:
    """Sends the browser to Entra ID; the flow cookie rides along with any cookie the caller sets."""

    try:
        started = start_sign_in(settings)
    except SignInError as exc:
        log.error("sign-in could not start", extra={"reason": exc.reason})
        return error_page(exc.status, "Sign-in is not available", exc.message)
    flow_cookie = flow_codec(settings).dump(
        {"flow": started.flow, "next": safe_redirect_target(next_path, DEFAULT_AFTER_SIGN_IN)}
    )
    return with_cookies(redirect(started.authorize_url), *cookies, flow_cookie)


def handle_signin(req: func.HttpRequest) -> func.HttpResponse:

    return sign_in_redirect(services().settings, req.params.get("next", ""))


def handle_callback(req: func.HttpRequest) -> func.HttpResponse:

    app = services()
    with log_context(correlation_id=str(uuid.uuid4())):
        codec = flow_codec(app.settings)
        remembered = codec.load(req.headers.get("cookie"))
        try:
            result = finish_sign_in(
                app.settings, app.id_token_validator, remembered.get("flow"), dict(req.params)
            )
        except SignInError as exc:
            log.warning("sign-in refused", extra={"reason": exc.reason, "status": exc.status})
            response = error_page(exc.status, "We could not sign you in", exc.message, RESTART_HINT)
            return with_cookies(response, codec.clear())
        next_path = safe_redirect_target(str(remembered.get("next") or ""), DEFAULT_AFTER_SIGN_IN)
        return with_cookies(_signed_in(app, req, result, next_path), codec.clear())


def _signed_in(
    app: Services, req: func.HttpRequest, result: SignInResult, next_path: str
) -> func.HttpResponse:

    claims = result.claims
    roles = operator_roles(claims.tenant_id, claims.roles, app.settings.publisher_tenant_id)
    user = replace(remember_user(result, users=app.users), operator_roles=roles)
    if claims.roles and not roles:
        # A customer tenant can assign our role names to its own users: worth a line, never a role.
        log.warning("app roles ignored: not the publisher's tenant", extra={"roles": sorted(claims.roles)})
    with log_context(tenant_id=user.tenant_id):
        bind_seats(result.claims, subscriptions=app.subscriptions, seats=app.seats, licenses=app.licenses)
        log.info("buyer signed in", extra={"object_id": user.object_id})
    # A new session id at every sign-in; the browser's previous session (if still live) ends here.
    previous = load_session(req, app.settings, store=app.sessions)
    session = sign_in(previous, user, settings=app.settings, store=app.sessions)
    return with_cookies(redirect(next_path), session_codec(app.settings).dump(session))


def handle_signout(req: func.HttpRequest) -> func.HttpResponse:
    """GET asks for confirmation (a form with a CSRF token); POST ends the session on the server.

    Neither hands out a new session cookie: the GET only reads (its CSRF secret exists since sign-in), and
    a cookie of a session that has already ended is cleared, never re-signed.
    """

    app = services()
    codec = session_codec(app.settings)
    session = load_session(req, app.settings, store=app.sessions)
    user = user_from_session(session)
    if user is None:
        # Nothing to end (no session, or one that has ended already): drop whatever cookie came along.
        return with_cookies(page("signin_signed_out.html"), codec.clear())
    if req.method == "POST":
        if not csrf.verify(session, req.form.get(csrf.FORM_FIELD)):
            log.warning("sign-out refused: CSRF token missing or wrong")
            return error_page(403, "This form has expired", "Reload the page and try again.")
        sign_out(session, store=app.sessions)
        log.info("buyer signed out")
        return with_cookies(page("signin_signed_out.html"), codec.clear())
    had_secret = csrf.CSRF_SESSION_KEY in session
    token = csrf.issue(session)
    response = page("signin_signout.html", user=user.display, csrf_token=token)
    # Only a session without a CSRF secret needs its cookie again; its `iat` rides along, so no extension.
    return response if had_secret else with_cookies(response, codec.dump(session))
