"""GET /api/landing?token=...: resolve the purchase token, record the purchase, go on to confirm (R1-R7).

The token is URL-decoded exactly once, checked for shape before Microsoft is asked, resolved, and forgotten:
only the subscription id goes into the session (R4), and a redirect takes the token out of the address bar.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import azure.functions as func

from shared.app_context import services
from shared.domain.purchase_token import InvalidPurchaseTokenError, check_purchase_token
from shared.entrypoints.auth import sign_in_redirect, with_cookies
from shared.entrypoints.landing.journey import CONFIRM_PATH, LANDING_SESSION_KEY, REOPEN_HINT
from shared.fulfillment.errors import (
    FulfillmentBadRequestError,
    FulfillmentError,
    FulfillmentNotFoundError,
    is_transient,
)
from shared.logs import get_logger, log_context
from shared.web.current_user import load_session, session_codec, user_from_session
from shared.web.pages import error_page, redirect
from shared.workflows.confirmation import land_purchase

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)


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
