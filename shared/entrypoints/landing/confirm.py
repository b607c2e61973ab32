"""GET/POST /api/landing/confirm: the signed-in buyer checks the purchase and confirms it (R11-R14, R62).

GET shows what was bought, for which organisation, and the contact email; POST (CSRF-checked) records the
confirmation and queues the activation once. A purchase past confirmation leads to its status or portal page
instead (R7).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import azure.functions as func

from shared.app_context import services
from shared.domain import wording
from shared.domain.identity import is_personal_tenant
from shared.domain.status import SubscriptionStatus
from shared.domain.wording import billing_term
from shared.entrypoints.auth import sign_in_redirect, with_cookies
from shared.entrypoints.landing.journey import CONFIRM_PATH, LANDING_SESSION_KEY, REOPEN_HINT
from shared.entrypoints.landing.status import status_url
from shared.entrypoints.portal.visit import bad_form, read_form
from shared.identity.contact_email import looks_like_address
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError
from shared.web import csrf
from shared.web.current_user import load_session, session_codec, user_from_session
from shared.web.pages import error_page, page, redirect
from shared.workflows.confirmation import confirm_purchase, may_confirm

if TYPE_CHECKING:
    from shared.app_context import Services
    from shared.domain.subscription import Subscription
    from shared.web.current_user import SignedInUser

log = get_logger(__name__)
PORTAL_SUBSCRIPTION_PATH = "/api/portal/subscriptions/{id}"


def handle_confirm(req: func.HttpRequest) -> func.HttpResponse:
    """GET shows what was bought and who confirms it; POST records the confirmation and queues activation."""

    app = services()
    with log_context(correlation_id=str(uuid.uuid4())):
        session = load_session(req, app.settings, store=app.sessions)
        user = user_from_session(session)
        if user is None:
            return sign_in_redirect(app.settings, CONFIRM_PATH)
        subscription_id = session.get(LANDING_SESSION_KEY)
        if not isinstance(subscription_id, str) or not subscription_id:
            log.info("confirm page without a purchase in the session")
            return error_page(
                400, "We don't know which purchase to set up", "Your session has no purchase.", REOPEN_HINT
            )
        with log_context(subscription_id=subscription_id):
            return _confirm(app, req, session, user, subscription_id)


def _confirm(
    app: Services, req: func.HttpRequest, session: dict[str, Any], user: SignedInUser, subscription_id: str
) -> func.HttpResponse:

    stored = app.subscriptions.get(subscription_id)
    if stored is None:
        return error_page(404, "Subscription not found", "We have no record of this purchase.", REOPEN_HINT)
    if not may_confirm(user, stored):
        log.warning("confirm refused: user is of neither the purchaser's nor the beneficiary's tenant")
        return error_page(
            403,
            "This purchase belongs to another organisation",
            "Sign in with an account of the organisation that bought the subscription, or the one it is for.",
            "Sign out, then open the link again and choose the right account.",
        )
    settled = settled_destination(app, stored, session)
    if settled is not None:
        return settled
    if req.method == "POST":
        return _submit(app, req, session, user, stored)
    return _confirm_page(app, session, user, stored, contact_email=user.email, error="")


def settled_destination(
    app: Services, stored: Subscription, session: dict[str, Any]
) -> func.HttpResponse | None:
    """Where a subscription past confirmation leads (R7); None while it still waits for confirmation."""

    if stored.status in (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.SUSPENDED):
        return redirect(PORTAL_SUBSCRIPTION_PATH.format(id=quote(stored.id, safe="")))
    if stored.status is SubscriptionStatus.UNSUBSCRIBED:
        return page(
            "landing.html",
            subscription=stored,
            offer_name=stored.offer_id,
            status_url="",
            plan_names=app.plan_catalog.names_for(stored),
        )
    if stored.activation_requested_at is not None:
        return redirect(status_url(app, stored.id, session))
    return None


def _confirm_page(
    app: Services,
    session: dict[str, Any],
    user: SignedInUser,
    stored: Subscription,
    *,
    contact_email: str,
    error: str,
) -> func.HttpResponse:

    token = csrf.issue(session)
    response = page(
        "landing_confirm.html",
        status=400 if error else 200,
        subscription=stored,
        offer_name=stored.offer_id,
        plan_names=app.plan_catalog.names_for(stored),
        term_name=billing_term(stored.term.unit, missing="Starts when your account is ready"),
        buyer=user,
        organisation=organisation_of(user, stored),
        contact_email=contact_email,
        email_error=error,
        csrf_token=token,
        user=user.display,
    )
    return with_cookies(response, session_codec(app.settings).dump(session))


def organisation_of(user: SignedInUser, stored: Subscription) -> str:
    """Whom the buyer confirms for, in words: the tenant id stays in the page's `data-tenant` only."""

    if is_personal_tenant(user.tenant_id):
        return wording.organisation_line(wording.PERSONAL)
    # Only `may_confirm` users get here: of the beneficiary's tenant, else of the purchaser's (a partner).
    own = user.tenant_id == stored.beneficiary.tenant_id.strip().lower()
    relation = wording.BENEFICIARY if own else wording.PARTNER
    return wording.organisation_line(relation, wording.email_domain(user.upn, user.email))


def _submit(
    app: Services, req: func.HttpRequest, session: dict[str, Any], user: SignedInUser, stored: Subscription
) -> func.HttpResponse:

    # The portal's reader: a bounded size, strict UTF-8, few and short fields (a 20 MB field was echoed back
    # whole, and bytes that are no UTF-8 became a stored address).
    form = read_form(req)
    if form is None:
        return bad_form()
    if not csrf.verify(session, form.get(csrf.FORM_FIELD)):
        log.warning("confirm refused: CSRF token missing or wrong")
        return error_page(403, "This form has expired", "Reload the page and confirm again.")
    email = (form.get("contact_email") or "").strip()
    if not looks_like_address(email):
        log.info("confirm refused: contact email missing or malformed")
        return _confirm_page(
            app,
            session,
            user,
            stored,
            contact_email=email,
            error="Enter an email address like name@example.com.",
        )

    try:
        confirm_purchase(stored, user, email, str(uuid.uuid4()), ports=app.confirmation_ports)
    except QueueUnavailableError:
        return error_page(
            503,
            "We couldn't start the activation",
            "Nothing was charged and nothing was started: please confirm again in a minute.",
        )
    return redirect(status_url(app, stored.id, session))
