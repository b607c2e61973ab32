"""The landing page: Microsoft sends the buyer here with `?token=...` (R1-R16, R60-R62).

The token is resolved at once and never stored, not even in the session (R4): the purchase is recorded and
only its subscription id is remembered. The buyer then signs in with Entra ID (R8) and confirms on
/api/landing/confirm what they bought, who they are and where we may write to them (R11, R12). Only that
confirmation (a CSRF-checked POST) grants the admin roles and queues the activation, exactly once: a refresh,
the back button or a second visit leads to the subscription's status or management page instead (R7).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import azure.functions as func
from itsdangerous import BadData, URLSafeTimedSerializer

from shared.app_context import services
from shared.domain import wording
from shared.domain.identity import is_personal_tenant
from shared.domain.purchase_token import InvalidPurchaseTokenError, check_purchase_token
from shared.domain.status import SubscriptionStatus
from shared.domain.wording import billing_term
from shared.entrypoints.auth import sign_in_redirect, with_cookies
from shared.entrypoints.http import json_response
from shared.fulfillment.errors import (
    FulfillmentBadRequestError,
    FulfillmentError,
    FulfillmentNotFoundError,
    is_transient,
)
from shared.identity.contact_email import looks_like_address
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError
from shared.web import csrf
from shared.web.current_user import SESSION_ID_KEY, load_session, session_codec, user_from_session
from shared.web.pages import error_page, page, redirect
from shared.workflows.confirmation import confirm_purchase, land_purchase, may_confirm

if TYPE_CHECKING:
    from shared.app_context import Services
    from shared.domain.subscription import Subscription
    from shared.web.current_user import SignedInUser

log = get_logger(__name__)
STATUS_TICKET_MAX_AGE = timedelta(hours=12)
STATUS_TICKET_SALT = "landing-status-session"
REOPEN_HINT = (
    "Open the SaaS subscription again in the Azure portal or the Microsoft 365 admin center and choose "
    "Configure account or Manage account."
)
CONFIRM_PATH = "/api/landing/confirm"
PORTAL_SUBSCRIPTION_PATH = "/api/portal/subscriptions/{id}"
LANDING_SESSION_KEY = "landing_subscription_id"


def purchase_token(req: func.HttpRequest) -> str | None:
    """The `token` query value, URL-decoded exactly once (R2): `%2B` is '+', and a literal '+' stays '+'.

    Form decoding (which turns '+' into a space) would corrupt the token, so the raw query is parsed here.
    """
    for pair in urlsplit(req.url).query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and unquote(name) == "token":
            return unquote(value) or None
    return None


def handle_landing(req: func.HttpRequest) -> func.HttpResponse:

    correlation_id = str(uuid.uuid4())
    with log_context(correlation_id=correlation_id):
        token = purchase_token(req)
        if not token:
            log.info("landing without a token")
            return error_page(
                400, "We couldn't identify this purchase", "The link has no purchase token.", REOPEN_HINT
            )
        refused = _refuse_malformed(token)
        if refused is not None:
            return refused
        return _land(services(), req, token, correlation_id)


def _refuse_malformed(token: str) -> func.HttpResponse | None:
    """The "link not valid" page for a token Microsoft cannot have issued, without asking Microsoft.

    A WARNING, not an ERROR: a mangled or hostile link is the visitor's problem, not ours to be paged for.
    """

    try:
        check_purchase_token(token)
    except InvalidPurchaseTokenError as exc:
        log.warning(
            "landing: malformed purchase token refused", extra={"reason": exc.reason, "length": exc.length}
        )
        return error_page(
            400, "We couldn't identify this purchase", "The link has expired or is not valid.", REOPEN_HINT
        )
    return None


def _land(app: Services, req: func.HttpRequest, token: str, correlation_id: str) -> func.HttpResponse:

    try:
        stored = land_purchase(token, correlation_id, sync=app.sync_ports)
    except (FulfillmentBadRequestError, FulfillmentNotFoundError):
        log.info("purchase token refused by Resolve")
        return error_page(
            400, "We couldn't identify this purchase", "The link has expired or is not valid.", REOPEN_HINT
        )
    except FulfillmentError as exc:
        log.error("Resolve failed", extra={"status": exc.status_code, "transient": is_transient(exc)})
        return error_page(
            503 if is_transient(exc) else 502,
            "We can't reach Microsoft right now",
            "Your purchase is safe. Please try again in a few minutes.",
            reference=correlation_id,
        )
    with log_context(subscription_id=stored.id):
        return _to_confirmation(app, req, stored.id)


def _to_confirmation(app: Services, req: func.HttpRequest, subscription_id: str) -> func.HttpResponse:
    """Remembers the subscription (never the token) and goes to the confirm page, signing in first."""

    session = load_session(req, app.settings, store=app.sessions)
    session[LANDING_SESSION_KEY] = subscription_id
    cookie = session_codec(app.settings).dump(session)
    if user_from_session(session) is None:
        log.info("landing: sign-in needed before confirmation")
        return sign_in_redirect(app.settings, CONFIRM_PATH, cookie)
    # A redirect, not the page itself: the token leaves the address bar, so a refresh never resolves again.
    return with_cookies(redirect(CONFIRM_PATH), cookie)


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
        return page("landing.html", subscription=stored, offer_name=stored.offer_id, status_url="")
    if stored.activation_requested_at is not None:
        return redirect(status_url(app, stored.id, session))
    return None


def status_url(app: Services, subscription_id: str, session: dict[str, Any]) -> str:
    return f"/api/landing/status?ticket={quote(status_ticket(app, subscription_id, session))}"


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

    if not csrf.verify(session, req.form.get(csrf.FORM_FIELD)):
        log.warning("confirm refused: CSRF token missing or wrong")
        return error_page(403, "This form has expired", "Reload the page and confirm again.")
    email = (req.form.get("contact_email") or "").strip()
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


def status_ticket(app: Services, subscription_id: str, session: dict[str, Any]) -> str:
    """A signed, expiring capability to watch one subscription's activation in this sign-in session only.

    Ids are not secrets, so the ticket is signed; and it names (a digest of) the session it was issued in,
    so a copied link, or one left in the browser's history, stops working when that session ends.
    """

    payload = {"sub": subscription_id, "sid": _session_digest(session)}
    return URLSafeTimedSerializer(app.settings.session_secret, salt=STATUS_TICKET_SALT).dumps(payload)


def _session_digest(session: dict[str, Any]) -> str:

    session_id = session.get(SESSION_ID_KEY)
    return hashlib.sha256(session_id.encode()).hexdigest() if isinstance(session_id, str) else ""


def _ticket_subscription(app: Services, ticket: str, session: dict[str, Any]) -> str | None:

    serializer = URLSafeTimedSerializer(app.settings.session_secret, salt=STATUS_TICKET_SALT)
    try:
        payload = serializer.loads(ticket, max_age=int(STATUS_TICKET_MAX_AGE.total_seconds()))
    except BadData:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("sub"), str):
        return None  # a ticket of another shape (or from before tickets named their session)
    digest = _session_digest(session)
    if not digest or not hmac.compare_digest(str(payload.get("sid", "")), digest):
        log.info("status ticket of a session that has ended or is another browser's")
        return None
    return str(payload["sub"])


def handle_status(req: func.HttpRequest) -> func.HttpResponse:
    """Activation progress: HTML that refreshes itself until the subscription is active, or JSON."""

    app = services()
    # {} once the session has ended: its tickets end with it.
    session = load_session(req, app.settings, store=app.sessions)
    subscription_id = _ticket_subscription(app, req.params.get("ticket", ""), session)
    if subscription_id is None:
        log.info("status request with a missing, expired or forged ticket")
        return error_page(
            403,
            "This link is not valid",
            "The status link has expired, was altered, or belongs to a sign-in that has ended.",
            REOPEN_HINT,
        )
    stored = app.subscriptions.get(subscription_id)
    if stored is None:
        return error_page(
            404, "Subscription not found", "We have no record of this subscription yet.", REOPEN_HINT
        )
    if "application/json" in req.headers.get("accept", ""):
        return json_response({"subscriptionId": stored.id, "status": stored.status.value})
    return page("landing_status.html", subscription=stored, refresh_url=req.url)
