"""Repair of missed webhooks, failed activations and drift (R15, R28, R83).

`reconcile_subscription` mirrors one subscription and answers any operation Microsoft still waits for
that we never saw; `sweep` walks every subscription Microsoft lists and queues a reconcile message for each
one we know, so the work is spread over the worker with per-subscription ordering kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain.audit import AuditAction, AuditSource
from shared.domain.status import SubscriptionStatus
from shared.domain.transitions import Cause
from shared.logs import get_logger
from shared.queueing.messages import reconcile_message
from shared.workflows.activation import activate_purchase
from shared.workflows.operations import handle_announced_operation, pending_status
from shared.workflows.sync import sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)


def reconcile_subscription(services: Services, body: dict[str, Any], correlation_id: str) -> None:
    subscription_id = str(body["subscriptionId"])
    stored = services.subscriptions.get(subscription_id)
    cause = Cause(
        operation_id="",
        action=AuditAction.RECONCILE.value,
        source=AuditSource.RECONCILIATION.value,
        at=utcnow(),
    )
    current = sync_from_microsoft(services, subscription_id, cause, correlation_id)
    if (
        current.status is SubscriptionStatus.PENDING_FULFILLMENT_START
        and stored
        and stored.activation_requested_at
    ):
        # The buyer confirmed, but Activate never succeeded: billing has not started (R15).
        activate_purchase(services, {"subscriptionId": subscription_id}, correlation_id)
        return
    if current.status is not SubscriptionStatus.SUBSCRIBED:
        return
    for operation in services.fulfillment.list_operations(subscription_id, correlation_id=correlation_id):
        record = services.operations.get(subscription_id, operation.id)
        if pending_status(operation) and record is None:
            log.info(
                "answering a pending operation no webhook announced", extra={"operation_id": operation.id}
            )
            payload = {"id": operation.id, "subscriptionId": subscription_id, "action": operation.action_raw}
            handle_announced_operation(services, payload, correlation_id)


def sweep(services: Services, correlation_id: str) -> int:
    """Queues a reconcile message per known subscription Microsoft lists; returns how many."""
    queued = 0
    for snapshot in services.fulfillment.list_subscriptions(correlation_id=correlation_id):
        stored = services.subscriptions.get(snapshot.id)
        if stored is None or stored.status is SubscriptionStatus.UNSUBSCRIBED:
            # Unknown ones have not landed yet: only the buyer's landing may start them (R16).
            continue
        services.queue.send(reconcile_message(snapshot.id, "sweep", correlation_id))
        queued += 1
    log.info("reconciliation sweep queued", extra={"queued": queued})
    return queued
