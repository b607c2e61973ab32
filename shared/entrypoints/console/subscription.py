"""One subscription in the console: GET /api/console/subscriptions/{id}, and the operator's actions on it.

The page sets the stored mirror beside Microsoft's live view (drift highlighted), the inbox of operations,
Microsoft's operations still in progress, the audit trail and the seats. Actions (POST .../{id}/{action},
admins only, CSRF-checked, confirmed) go through the workflows the CLI and the worker use: reconcile and
activation retry (`operator_requests`), accepting or refusing a pending change (`operations`, the worker's
own answer path and inbox record), and cancelling at Microsoft (`publisher_changes`, the portal's DELETE)
after the operator typed the subscription's name. Each is audited with `visit.actor`; each ends in a 303
back to the page with a notice, or in a page that says why nothing was done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

import azure.functions as func

from shared.app_context import RecordChangedError
from shared.domain.inbox import ANSWERED, InboxState
from shared.domain.mirror_diff import compare, drifted
from shared.domain.status import SubscriptionStatus
from shared.entrypoints.console.visit import OperatorVisit, console_error, open_console, open_console_action
from shared.fulfillment.errors import FulfillmentError
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError
from shared.web import notices
from shared.web.pages import redirect
from shared.workflows import operator_requests
from shared.workflows.operations import (
    CHANGE_ACTIONS,
    DecisionRefusedError,
    decide_as_operator,
    pending_status,
)
from shared.workflows.publisher_changes import ChangeRefusedError
from shared.workflows.subscription_views import microsoft_view, subscription_detail

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription

log = get_logger(__name__)

# Microsoft's ids are GUIDs; anything else (a path, markup, a 10 KB string) is no subscription of ours.
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
SUBSCRIPTIONS = "/api/console/subscriptions"
NOTICES = {
    "reconcile": "Reconcile queued: the worker compares this subscription with Microsoft's and corrects it.",
    "activation-retry": "Activation queued again: the worker asks Microsoft to activate this subscription.",
    "accepted": "Change accepted: Microsoft was told; the page shows the result once Microsoft applies it.",
    "refused": "Change refused: Microsoft was told, and the buyer keeps what they had.",
    "cancel": "Cancellation sent to Microsoft: the page shows it cancelled once Microsoft confirms it.",
}
_NOT_CONFIRMED = "Nothing was done. Tick the confirmation box, then send the form again."


def handle_subscription(req: func.HttpRequest) -> func.HttpResponse:
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    subscription_id = req.route_params.get("subscription_id", "")
    if not _ID.fullmatch(subscription_id):
        return _not_found("malformed subscription id")
    with log_context(subscription_id=subscription_id):
        detail = subscription_detail(subscription_id, ports=visit.app.subscription_view_ports)
        if detail is None:
            return _not_found("unknown subscription id")
        live = microsoft_view(subscription_id, marketplace=visit.app.fulfillment, correlation_id=_new_id())
        fields = compare(detail.subscription, live.subscription)
        # Not offered: what is decided already, and what our own portal asked for (the service accepts it).
        settled = {r.operation_id for r in detail.operations if r.decision or r.initiated_by_publisher}
        decidable = [
            op
            for op in live.in_progress
            if op.action in CHANGE_ACTIONS
            and pending_status(op)
            and op.id not in settled
            and op.request_source.lower() != "partner"
        ]
        return visit.render(
            "console_subscription.html",
            detail=detail,
            subscription=detail.subscription,
            live=live,
            fields=fields,
            drift=drifted(fields),
            decidable=decidable,
            answered_states=ANSWERED | {InboxState.DONE},
            can_retry_activation=_can_retry_activation(detail.subscription),
            can_cancel=detail.subscription.status is not SubscriptionStatus.UNSUBSCRIBED,
            page_url=_page_url(subscription_id),
            notice=NOTICES.get(_notice_key(visit, subscription_id, req.params), ""),
        )


def _notice_key(visit: OperatorVisit, subscription_id: str, params: Mapping[str, str]) -> str:
    """The notice of this session's own action; a link someone else made shows none (shared.web.notices)."""
    return notices.verified(visit.session, _page_url(subscription_id), params, ("notice",)).get("notice", "")


def handle_action(req: func.HttpRequest) -> func.HttpResponse:
    """An admin's action on one subscription, after the role and CSRF checks every console post shares."""
    opened = open_console_action(req)
    if isinstance(opened, func.HttpResponse):
        return opened
    visit, form = opened
    subscription_id = req.route_params.get("subscription_id", "")
    action = ACTIONS.get(req.route_params.get("action", "").strip("/"))
    if not _ID.fullmatch(subscription_id) or action is None:
        return _not_found("malformed subscription id or unknown action")
    with log_context(subscription_id=subscription_id):
        if visit.app.subscriptions.get(subscription_id) is None:
            return _not_found("unknown subscription id")
        return action(visit, subscription_id, form)


def reconcile(visit: OperatorVisit, subscription_id: str, form: Mapping[str, str]) -> func.HttpResponse:
    if not _confirmed(form):
        return _refused(400, "Please confirm", _NOT_CONFIRMED)
    try:
        operator_requests.request_reconcile(
            subscription_id,
            operator=visit.actor,
            correlation_id=_new_id(),
            ports=visit.app.operator_request_ports,
        )
    except QueueUnavailableError:
        return _not_queued()
    return _done(visit, subscription_id, "reconcile")


def retry_activation(
    visit: OperatorVisit, subscription_id: str, form: Mapping[str, str]
) -> func.HttpResponse:
    if not _confirmed(form):
        return _refused(400, "Please confirm", _NOT_CONFIRMED)
    try:
        operator_requests.request_activation_retry(
            subscription_id,
            operator=visit.actor,
            correlation_id=_new_id(),
            ports=visit.app.operator_request_ports,
        )
    except QueueUnavailableError:
        return _not_queued()
    except operator_requests.ActivationNotPendingError:
        return _refused(
            409,
            "There is no activation to retry",
            "Only a purchase the buyer confirmed and that is still waiting for activation can be activated "
            "again. This one is past activation, or its buyer has not confirmed it yet.",
        )
    return _done(visit, subscription_id, "activation-retry")


def decide(visit: OperatorVisit, subscription_id: str, form: Mapping[str, str]) -> func.HttpResponse:
    operation_id = form.get("operation_id", "").strip()
    verdict = form.get("verdict", "")
    if not _ID.fullmatch(operation_id) or verdict not in ("accept", "refuse"):
        return _refused(400, "Choose a change and a decision", "Nothing was sent. Use the form on the page.")
    if not _confirmed(form):
        return _refused(400, "Please confirm", _NOT_CONFIRMED)
    try:
        decide_as_operator(
            subscription_id,
            operation_id,
            accept=verdict == "accept",
            reason=form.get("reason", "")[:200],
            operator=visit.actor,
            correlation_id=_new_id(),
            ports=visit.app.operation_ports,
        )
    except DecisionRefusedError as exc:
        return _refused(409, "This change cannot be decided here", str(exc))
    except QueueUnavailableError:
        log.exception("operator's answer sent, but its follow-up could not be queued")
        return _refused(
            503,
            "Your answer was sent; its follow-up was not queued",
            "Microsoft has your answer. The service could not queue the look that records how Microsoft "
            "finished the change: reconcile this subscription once the queue is back.",
        )
    except RecordChangedError:
        if _decided_by(visit, subscription_id, operation_id, verdict):
            # The worker saved the row after our answer went out (it found our decision and sent the same):
            # the conflict was on the bookkeeping, and the operator's answer is the one Microsoft has.
            return _done(visit, subscription_id, "accepted" if verdict == "accept" else "refused")
        return _refused(
            409,
            "This change cannot be decided here",
            "The service recorded a decision on this change a moment ago; that one is the answer Microsoft "
            "gets. Nothing else was sent.",
        )
    except FulfillmentError as exc:
        log.warning("decision not sent: Microsoft did not answer", extra={"status": exc.status_code})
        return _refused(
            502,
            "Microsoft did not answer",
            "If the decision was recorded, the worker sends it when it next handles this change; reconcile "
            "the subscription to make that happen now.",
        )
    return _done(visit, subscription_id, "accepted" if verdict == "accept" else "refused")


def _decided_by(visit: OperatorVisit, subscription_id: str, operation_id: str, verdict: str) -> bool:
    record = visit.app.operations.get(subscription_id, operation_id)
    return record is not None and record.decided_by == visit.actor and record.decision == verdict


def cancel(visit: OperatorVisit, subscription_id: str, form: Mapping[str, str]) -> func.HttpResponse:
    try:
        operator_requests.request_cancel(
            subscription_id,
            typed=form.get("confirm_name", ""),
            operator=visit.actor,
            correlation_id=_new_id(),
            ports=visit.app.operator_request_ports,
            changes=visit.app.change_ports,
        )
    except ChangeRefusedError as exc:
        return _refused(exc.status, exc.title, exc.message)
    return _done(visit, subscription_id, "cancel")


ACTIONS: dict[str, Callable[[OperatorVisit, str, Mapping[str, str]], func.HttpResponse]] = {
    "reconcile": reconcile,
    "activation-retry": retry_activation,
    "decide": decide,
    "cancel": cancel,
}


def _can_retry_activation(subscription: Subscription) -> bool:
    # The same two conditions `request_activation_retry` enforces: the form is offered only where it works.
    pending = subscription.status is SubscriptionStatus.PENDING_FULFILLMENT_START
    return pending and subscription.activation_requested_at is not None


def _confirmed(form: Mapping[str, str]) -> bool:
    return form.get("confirm", "") == "yes"


def _page_url(subscription_id: str) -> str:
    return f"{SUBSCRIPTIONS}/{quote(subscription_id)}"


def _done(visit: OperatorVisit, subscription_id: str, notice: str) -> func.HttpResponse:
    page = _page_url(subscription_id)
    return redirect(f"{page}?{notices.signed_query(visit.session, page, {'notice': notice})}")


def _refused(status: int, title: str, message: str) -> func.HttpResponse:
    log.warning("console action refused", extra={"status": status, "reason": title})
    return console_error(
        status,
        title,
        message,
        "Go back to the subscription, reload it and try again.",
        back_url=SUBSCRIPTIONS,
        back_label="Back to the subscriptions",
    )


def _not_queued() -> func.HttpResponse:
    log.exception("console request not queued: the events queue refused it")
    return _refused(
        503,
        "The request could not be queued",
        "Nothing was started. The events queue did not take the request; the app's log says why.",
    )


def _not_found(reason: str) -> func.HttpResponse:
    log.warning("console subscription not found", extra={"reason": reason})
    return console_error(
        404,
        "Subscription not found",
        "No stored subscription has this id.",
        "Search for it in the subscriptions list.",
        back_url=SUBSCRIPTIONS,
        back_label="Search the subscriptions",
    )


def _new_id() -> str:
    return str(uuid.uuid4())
