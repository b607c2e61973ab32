"""GET /api/landing/status?ticket=...: the activation's progress, for the sign-in session that confirmed it.

The ticket is a signed, expiring capability naming the subscription and (a digest of) the session it was
issued in, so a copied link, or one left in the browser's history, stops working when that session ends.
The page refreshes itself until the subscription is active; `Accept: application/json` gets the status alone.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import azure.functions as func
from itsdangerous import BadData, URLSafeTimedSerializer

from shared.app_context import services
from shared.domain.status import SubscriptionStatus
from shared.entrypoints.http import json_response
from shared.entrypoints.landing.journey import REOPEN_HINT
from shared.logs import get_logger
from shared.web.current_user import SESSION_ID_KEY, load_session
from shared.web.pages import error_page, page

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)
STATUS_TICKET_MAX_AGE = timedelta(hours=12)
STATUS_TICKET_SALT = "landing-status-session"


def status_url(app: Services, subscription_id: str, session: dict[str, Any]) -> str:
    return f"/api/landing/status?ticket={quote(status_ticket(app, subscription_id, session))}"


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
    # Microsoft is asked for the plan's name once the page stops refreshing, not at every refresh.
    pending = stored.status is SubscriptionStatus.PENDING_FULFILLMENT_START
    names = {} if pending else app.plan_catalog.names_for(stored)
    return page("landing_status.html", subscription=stored, refresh_url=req.url, plan_names=names)
