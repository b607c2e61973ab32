"""The landing page: Microsoft sends the buyer here with `?token=...` (R1-R7, R14-R16).

The token is resolved at once and never stored (R4). A new purchase is recorded, its activation queued,
and the buyer follows the progress on a status page that refreshes itself (no script needed). A known
subscription leads to its state, never to a second activation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import azure.functions as func

from shared.logs import get_logger, log_context
from shared.web.pages import error_page, page

if TYPE_CHECKING:
    from shared.app_context import Services
    from shared.domain.subscription import ResolvedPurchase, Subscription

log = get_logger(__name__)
STATUS_TICKET_MAX_AGE = timedelta(hours=12)
REOPEN_HINT = (
    "Open the SaaS subscription again in the Azure portal or the Microsoft 365 admin center and choose "
    "Configure account or Manage account."
)


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
    from shared.app_context import services

    correlation_id = str(uuid.uuid4())
    with log_context(correlation_id=correlation_id):
        token = purchase_token(req)
        if not token:
            log.info("landing without a token")
            return error_page(
                400, "We couldn't identify this purchase", "The link has no purchase token.", REOPEN_HINT
            )
        return _land(services(), token, correlation_id)


def _land(svc: Services, token: str, correlation_id: str) -> func.HttpResponse:
    from shared.fulfillment.errors import BadRequestError, FulfillmentError, NotFoundError, is_transient

    try:
        purchase = svc.fulfillment.resolve(token, correlation_id=correlation_id)
    except (BadRequestError, NotFoundError):
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
    with log_context(subscription_id=purchase.subscription_id):
        stored = record_purchase(svc, purchase, correlation_id)
        return _page_for(svc, purchase, stored)


def record_purchase(svc: Services, purchase: ResolvedPurchase, correlation_id: str) -> Subscription:
    """Mirrors the resolved subscription; queues its activation while it waits for one (R14, R15)."""
    from shared.domain.status import SubscriptionStatus
    from shared.domain.transitions import Cause
    from shared.queueing.messages import activation_message
    from shared.workflows.sync import mirror

    now = datetime.now(UTC)
    cause = Cause(operation_id="", action="Resolve", source="landing", at=now)
    snapshot = purchase.subscription
    if snapshot.status is not SubscriptionStatus.PENDING_FULFILLMENT_START:
        return mirror(svc, snapshot, cause, correlation_id)
    stored = mirror(svc, snapshot, cause, correlation_id, bookkeeping={"activation_requested_at": now})
    svc.queue.send(activation_message(snapshot.id, snapshot.plan_id, snapshot.quantity, correlation_id))
    log.info("activation queued", extra={"plan_id": snapshot.plan_id, "quantity": snapshot.quantity})
    return stored


def _page_for(svc: Services, purchase: ResolvedPurchase, stored: Subscription) -> func.HttpResponse:
    ticket = status_ticket(svc, stored.id)
    return page(
        "landing.html",
        purchase=purchase,
        subscription=stored,
        offer_name=purchase.offer_id,
        status_url=f"/api/landing/status?ticket={quote(ticket)}",
    )


def status_ticket(svc: Services, subscription_id: str) -> str:
    """A signed, expiring capability to watch one subscription's activation: ids are not secrets."""
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(svc.settings.session_secret, salt="landing-status").dumps(subscription_id)


def _ticket_subscription(svc: Services, ticket: str) -> str | None:
    from itsdangerous import BadData, URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(svc.settings.session_secret, salt="landing-status")
    try:
        return str(serializer.loads(ticket, max_age=int(STATUS_TICKET_MAX_AGE.total_seconds())))
    except BadData:
        return None


def handle_status(req: func.HttpRequest) -> func.HttpResponse:
    """Activation progress: HTML that refreshes itself until the subscription is active, or JSON."""
    from shared.app_context import services
    from shared.entrypoints.http import json_response

    svc = services()
    subscription_id = _ticket_subscription(svc, req.params.get("ticket", ""))
    if subscription_id is None:
        log.info("status request with a missing, expired or forged ticket")
        return error_page(
            403, "This link is not valid", "The status link has expired or was altered.", REOPEN_HINT
        )
    stored = svc.subscriptions.get(subscription_id)
    if stored is None:
        return error_page(
            404, "Subscription not found", "We have no record of this subscription yet.", REOPEN_HINT
        )
    if "application/json" in req.headers.get("accept", ""):
        return json_response({"subscriptionId": stored.id, "status": stored.status.value})
    return page("landing_status.html", subscription=stored, refresh_url=req.url)
