"""Repair of missed webhooks, failed activations and drift (R15, R28, R83).

`reconcile_subscription` mirrors one subscription and answers any operation Microsoft still waits for
that we never saw; `sweep` walks every subscription Microsoft lists and queues a reconcile message for each
one we know, so the work is spread over the worker with per-subscription ordering kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.audit import AuditAction, AuditSource
from shared.domain.status import SubscriptionStatus
from shared.domain.transitions import Cause
from shared.logs import get_logger
from shared.queueing.messages import reconcile_message
from shared.workflows.activation import ActivationPorts, activate_purchase
from shared.workflows.operations import OperationPorts, handle_announced_operation, pending_status
from shared.workflows.sync import sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import EventPublisher, Marketplace, SubscriptionRecords

log = get_logger(__name__)


@dataclass(frozen=True)
class ReconcilePorts:
    """Reconciling may finish an activation or answer an operation, so it takes what those two take."""

    activation: ActivationPorts
    operations: OperationPorts


def reconcile_subscription(subscription_id: str, correlation_id: str, *, ports: ReconcilePorts) -> None:
    sync = ports.operations.sync
    stored = sync.subscriptions.get(subscription_id)
    cause = Cause(
        operation_id="",
        action=AuditAction.RECONCILE.value,
        source=AuditSource.RECONCILIATION.value,
        at=utcnow(),
    )
    current = sync_from_microsoft(sync, subscription_id, cause, correlation_id)
    if (
        current.status is SubscriptionStatus.PENDING_FULFILLMENT_START
        and stored
        and stored.activation_requested_at
    ):
        # The buyer confirmed, but Activate never succeeded: billing has not started (R15).
        activate_purchase(subscription_id, correlation_id, ports=ports.activation)
        return
    if current.status is not SubscriptionStatus.SUBSCRIBED:
        return
    for operation in sync.marketplace.list_operations(subscription_id, correlation_id=correlation_id):
        record = ports.operations.inbox.get(subscription_id, operation.id)
        if pending_status(operation) and record is None:
            log.info(
                "answering a pending operation no webhook announced", extra={"operation_id": operation.id}
            )
            payload = {"id": operation.id, "subscriptionId": subscription_id, "action": operation.action_raw}
            handle_announced_operation(payload, correlation_id, ports=ports.operations)


def sweep(
    correlation_id: str,
    *,
    marketplace: Marketplace,
    subscriptions: SubscriptionRecords,
    events: EventPublisher,
) -> int:
    """Queues a reconcile message per known subscription Microsoft lists; returns how many."""
    queued = 0
    for snapshot in marketplace.list_subscriptions(correlation_id=correlation_id):
        stored = subscriptions.get(snapshot.id)
        if stored is None or stored.status is SubscriptionStatus.UNSUBSCRIBED:
            # Unknown ones have not landed yet: only the buyer's landing may start them (R16).
            continue
        events.send(reconcile_message(snapshot.id, "sweep", correlation_id))
        queued += 1
    log.info("reconciliation sweep queued", extra={"queued": queued})
    return queued
