"""POST /api/portal/subscriptions/{subscription_id}/{action}: the checks every form post shares (session,
CSRF, a readable form, a role on the subscription), then the handler of that action."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import azure.functions as func

from shared.app_context import services
from shared.entrypoints.portal import changes, seats, setup
from shared.entrypoints.portal.visit import (
    PORTAL_HOME,
    Visit,
    bad_form,
    form_expired,
    not_found,
    open_visit,
    read_form,
)
from shared.logs import get_logger, log_context
from shared.web import csrf
from shared.web.current_user import load_session, sign_in_url, user_from_session
from shared.web.pages import redirect

log = get_logger(__name__)

ACTIONS: dict[str, Callable[[Visit, dict[str, str]], func.HttpResponse]] = {
    "plan": changes.change_plan,
    "quantity": changes.change_quantity,
    "cancel": changes.cancel,
    "seats": seats.assign_seat,
    "seats/revoke": seats.revoke_seat,
    "admins": seats.designate,
    "admins/remove": seats.remove_admin_role,
    "setup-links": setup.create_link,
}


def handle_action(req: func.HttpRequest) -> func.HttpResponse:
    """Dispatches a form POST after the session, CSRF and role checks every action shares."""
    app = services()
    session = load_session(req, app.settings, store=app.sessions)
    user = user_from_session(session)
    subscription_id = req.route_params.get("subscription_id", "")
    if user is None:
        log.info("portal form posted without a session")
        return redirect(sign_in_url(f"{PORTAL_HOME}/subscriptions/{quote(subscription_id)}"))
    with log_context(tenant_id=user.tenant_id, subscription_id=subscription_id):
        form = read_form(req)
        if form is None:
            return bad_form()
        if not csrf.verify(session, form.get(csrf.FORM_FIELD)):
            return form_expired()
        action = ACTIONS.get(req.route_params.get("action", "").strip("/"))
        visit = open_visit(app, req, user, session)
        if isinstance(visit, func.HttpResponse):
            return visit
        if action is None:
            return not_found("unknown portal action")
        return action(visit, form)
