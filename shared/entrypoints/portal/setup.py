"""CSP setup links (R65): the partner creates one (a form post on the subscription page); the customer's
admin opens it (GET /api/portal/setup?code=..., a confirm page that changes nothing, since link scanners and
prefetchers open links) and accepts it (POST /api/portal/setup, CSRF-checked, the code in the body).

The code travels in the query or the body, never the path of links made now: the Functions host records
request paths but strips query strings. Links made before carry it in the path and still open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import azure.functions as func

from shared.app_context import services
from shared.domain.setup_links import SetupLinkError
from shared.entrypoints.portal.visit import (
    PORTAL_HOME,
    Visit,
    bad_form,
    form_expired,
    read_form,
    refused,
    render,
)
from shared.logs import get_logger, log_context
from shared.web import csrf
from shared.web.current_user import load_session, require_session, sign_in_url, user_from_session
from shared.web.pages import error_page, redirect
from shared.workflows import setup_links

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription

log = get_logger(__name__)

SETUP_PATH = f"{PORTAL_HOME}/setup"
_SETUP_MESSAGES = {
    "unknown": "This setup link is not valid. Check that you copied all of it.",
    "expired": "This setup link has expired.",
    "used": "This setup link has already been used.",
    "other-tenant": "This setup link is for another organisation. Sign in with an account of the "
    "organisation the subscription was bought for.",
}
_STATUS = {"other-tenant": 403}


def create_link(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    """The partner's form post: a new link, shown once."""
    try:
        code = setup_links.create_link(
            visit.subscription, visit.roles, created_by=visit.actor, links=visit.app.setup_links
        )
    except PermissionError:
        return refused(403, "Not allowed", "Only the partner who bought this subscription can do this.")
    link = f"{visit.app.settings.public_base_url}{SETUP_PATH}?code={code}"
    return render(
        "portal_setup_link.html",
        visit.session,
        visit.user,
        subscription=visit.subscription,
        link=link,
        page_url=visit.page_url,
    )


def handle_setup(req: func.HttpRequest) -> func.HttpResponse:
    """GET asks "Accept administration of ...?"; POST accepts."""
    return _accept(req) if req.method == "POST" else _confirm_page(req)


def setup_code(req: func.HttpRequest) -> str:
    """The code from `?code=` (links made now) or from the path (links made before it moved to the query)."""
    return req.params.get("code") or req.route_params.get("code") or ""


def _confirm_page(req: func.HttpRequest) -> func.HttpResponse:
    app = services()
    signed_in = require_session(req, app.settings, store=app.sessions)
    if isinstance(signed_in, func.HttpResponse):
        return signed_in
    user, session = signed_in
    code = setup_code(req)
    with log_context(tenant_id=user.tenant_id):
        try:
            opened = setup_links.open_link(
                code,
                user.person,
                links=app.setup_links,
                subscriptions=app.subscriptions,
            )
        except SetupLinkError as exc:
            return _refused(exc.reason)
        organisation = _organisation(opened.subscription)
        return render(
            "portal_setup_confirm.html",
            session,
            user,
            subscription=opened.subscription,
            organisation=organisation,
            code=code,
            action=SETUP_PATH,
        )


def _organisation(subscription: Subscription) -> str:
    """How the page names the customer: the domain of the beneficiary's address, else its tenant id."""
    beneficiary = subscription.beneficiary
    return beneficiary.email.rpartition("@")[2] or beneficiary.tenant_id


def _accept(req: func.HttpRequest) -> func.HttpResponse:
    app = services()
    session = load_session(req, app.settings, store=app.sessions)
    user = user_from_session(session)
    if user is None:
        log.info("setup link accepted without a session")
        return redirect(sign_in_url(PORTAL_HOME))
    with log_context(tenant_id=user.tenant_id):
        form = read_form(req)
        if form is None:
            return bad_form()
        if not csrf.verify(session, form.get(csrf.FORM_FIELD)):
            return form_expired()
        who = user.person
        try:
            subscription = setup_links.accept_link(
                form.get("code", ""),
                who,
                links=app.setup_links,
                subscriptions=app.subscriptions,
                admins=app.admins,
            )
        except SetupLinkError as exc:
            return _refused(exc.reason)
        return redirect(f"{PORTAL_HOME}/subscriptions/{quote(subscription.id)}?notice=setup-complete")


def _refused(reason: str) -> func.HttpResponse:
    log.warning("setup link refused", extra={"reason": reason})
    return error_page(
        _STATUS.get(reason, 400),
        "This setup link cannot be used",
        _SETUP_MESSAGES.get(reason, _SETUP_MESSAGES["unknown"]),
        "Ask your partner for a new setup link.",
    )
