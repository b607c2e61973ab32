"""What every console request shares: the operator behind it, their roles, and the refusals.

An operator is a signed-in person whose session carries console roles (`shared.domain.operators`): the app
roles of their ID token, counted only in the publisher's tenant. The tenant is checked again on every
request, so a session minted before PUBLISHER_TENANT_ID changed grants nothing. Anyone else who is signed in
(a buyer) gets a 403 page that says where they belong; nobody signed in is sent to sign in and brought back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.app_context import Services, services
from shared.domain import operators
from shared.entrypoints.portal.visit import bad_form, form_expired, read_form
from shared.entrypoints.portal.visit import render as render_with_csrf
from shared.logs import get_logger
from shared.web import csrf
from shared.web.current_user import SignedInUser, current_path, require_session, sign_in_url
from shared.web.pages import error_page, redirect
from shared.web.sessions import ISSUED_AT_KEY

if TYPE_CHECKING:
    from collections.abc import Mapping

log = get_logger(__name__)

CONSOLE_HOME = "/api/console"
NOT_STAFF_TITLE = "This area is for the publisher's staff"
NOT_STAFF_MESSAGE = (
    "You are signed in, but your account has no role in the operations console. If you bought a "
    "subscription, manage it from your subscriptions page."
)
NOT_STAFF_HINT = "Open your subscriptions, or sign out and sign in with your account at the publisher."
READ_ONLY_TITLE = "Your role can look, not act"
READ_ONLY_MESSAGE = "Ask a console administrator to do this, or to give you the administrator role."
READ_ONLY_HINT = "Go back to the console: you can still look at everything there."


@dataclass
class OperatorVisit:
    """A signed-in member of the publisher's staff with at least the reader role."""

    app: Services
    user: SignedInUser
    session: dict[str, Any]
    roles: frozenset[str]

    @property
    def can_act(self) -> bool:
        return operators.can_act(self.roles)

    @property
    def actor(self) -> str:
        """Who the audit trail names: the Entra sign-in name and the tid:oid that identifies it."""
        who = self.user.upn or self.user.name or "operator"
        return f"{who} ({self.user.tenant_id}:{self.user.object_id})"

    def render(self, template: str, *, status: int = 200, **context: Any) -> func.HttpResponse:
        """A console page with a fresh CSRF token and what the layout shows about the operator."""
        return render_with_csrf(
            template,
            self.session,
            self.user,
            status=status,
            console_roles=sorted(self.roles),
            home_url=CONSOLE_HOME,
            can_act=self.can_act,
            **context,
        )


def open_console(req: func.HttpRequest) -> OperatorVisit | func.HttpResponse:
    """The operator looking at a console page, or the answer that keeps everyone else out."""
    app = services()
    signed_in = require_session(req, app.settings, store=app.sessions)
    if isinstance(signed_in, func.HttpResponse):
        # A form post cannot be replayed after sign-in: come back to the console instead of to a 405.
        return signed_in if req.method == "GET" else redirect(sign_in_url(CONSOLE_HOME))
    user, session = signed_in
    signed_in_at = session.get(ISSUED_AT_KEY)
    age = time.time() - signed_in_at if isinstance(signed_in_at, int) else float("inf")
    if age > app.settings.console_signin_max_age_seconds:
        # Roles come from the ID token at sign-in: a fresh one re-reads them (a removed role ends here).
        log.info("console asks for a fresh sign-in", extra={"signed_in_seconds_ago": int(min(age, 1e9))})
        return redirect(sign_in_url(current_path(req) if req.method == "GET" else CONSOLE_HOME))
    roles = operators.operator_roles(user.tenant_id, user.operator_roles, app.settings.publisher_tenant_id)
    if not operators.can_look(roles):
        log.warning("console refused: not an operator", extra={"tenant_id": user.tenant_id})
        return error_page(403, NOT_STAFF_TITLE, NOT_STAFF_MESSAGE, NOT_STAFF_HINT)
    return OperatorVisit(app, user, session, roles)


def open_console_action(req: func.HttpRequest) -> tuple[OperatorVisit, Mapping[str, str]] | func.HttpResponse:
    """An admin's form post, CSRF-checked: the visit and the posted fields, or the refusal.

    The role is checked before the form is read, so a reader learns nothing from a forged post; the CSRF
    token is checked before anything acts.
    """
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    if not visit.can_act:
        log.warning("console action refused: reader role", extra={"path": req.url})
        # A member of staff, not a buyer: the way on is the console, not the buyer's subscriptions.
        return error_page(
            403,
            READ_ONLY_TITLE,
            READ_ONLY_MESSAGE,
            READ_ONLY_HINT,
            back_url=CONSOLE_HOME,
            back_label="Back to the operations console",
        )
    form = read_form(req)
    if form is None:
        return bad_form()
    if not csrf.verify(visit.session, form.get(csrf.FORM_FIELD)):
        return form_expired()
    return visit, form


def console_error(
    status: int,
    title: str,
    message: str,
    hint: str = "",
    *,
    back_url: str = CONSOLE_HOME,
    back_label: str = "Back to the operations console",
) -> func.HttpResponse:
    """An error page for the publisher's staff: its way on is the console, not the buyer's subscriptions."""
    return error_page(
        status, title, message, hint, back_url=back_url, back_label=back_label, home_url=CONSOLE_HOME
    )
