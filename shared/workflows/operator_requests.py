"""Work an operator asks for one subscription: reconcile it now, retry its activation, or cancel it.

Both go through the events queue, in the subscription's session, so they run the worker's own workflows
(`reconcile_subscription`, `activate_purchase`) in order with everything else for that subscription, and
the operator's machine needs no Fulfillment API credentials. A cancel goes to Microsoft at once through the
portal's own DELETE (`publisher_changes`). Each request is audited with who asked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.status import SubscriptionStatus
from shared.queueing.messages import QueueMessage, activation_message, reconcile_message
from shared.workflows.publisher_changes import cancel_for_publisher
from shared.workflows.sync import utcnow

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import AuditLog, EventPublisher, SubscriptionRecords
    from shared.workflows.publisher_changes import ChangePorts


class UnknownSubscriptionError(LookupError):
    """No stored subscription has this id: only a buyer's landing brings one in."""


class ActivationNotPendingError(ValueError):
    """The subscription is past activation (or the buyer never confirmed): there is nothing to retry."""


@dataclass(frozen=True)
class OperatorRequestPorts:
    subscriptions: SubscriptionRecords
    events: EventPublisher
    audit: AuditLog


def request_reconcile(
    subscription_id: str, *, operator: str, correlation_id: str, ports: OperatorRequestPorts
) -> QueueMessage:
    """Queues a reconcile message for one stored subscription (R83) and audits who asked."""
    _stored(subscription_id, ports)
    message = reconcile_message(subscription_id, "operator", correlation_id)
    ports.events.send(message)
    _audit(subscription_id, AuditAction.RECONCILE_REQUESTED, operator, correlation_id, ports)
    return message


def request_activation_retry(
    subscription_id: str, *, operator: str, correlation_id: str, ports: OperatorRequestPorts
) -> QueueMessage:
    """Queues the activation again for a confirmed purchase that is still pending (R15)."""
    stored = _stored(subscription_id, ports)
    if stored.status is not SubscriptionStatus.PENDING_FULFILLMENT_START:
        raise ActivationNotPendingError(f"subscription {subscription_id} is {stored.status.value}")
    if stored.activation_requested_at is None:
        # Activation starts billing: only the buyer's confirmation may ask for it, never an operator alone.
        raise ActivationNotPendingError(f"the buyer has not confirmed subscription {subscription_id} yet")
    queued = activation_message(subscription_id, stored.plan_id, stored.quantity, correlation_id)
    # A fresh id: the first activation's id is still in the duplicate-detection window for ten minutes.
    message = replace(queued, message_id=f"{queued.message_id}-retry-{uuid.uuid4().hex[:12]}")
    ports.events.send(message)
    _audit(subscription_id, AuditAction.ACTIVATION_RETRY_REQUESTED, operator, correlation_id, ports)
    return message


def request_cancel(
    subscription_id: str,
    *,
    typed: str,
    operator: str,
    correlation_id: str,
    ports: OperatorRequestPorts,
    changes: ChangePorts,
) -> str:
    """Cancels the subscription at Microsoft (DELETE) once the operator typed its name or id; returns the
    operation id, which the portal's tracking follows to its end. Raises ChangeRefusedError (nothing sent)."""
    stored = _stored(subscription_id, ports)
    operation_id = cancel_for_publisher(stored, typed=typed, ports=changes)
    _audit(
        subscription_id,
        AuditAction.CANCEL_REQUESTED,
        operator,
        correlation_id,
        ports,
        operation_id=operation_id,
    )
    return operation_id


def _stored(subscription_id: str, ports: OperatorRequestPorts) -> Subscription:
    stored = ports.subscriptions.get(subscription_id)
    if stored is None:
        raise UnknownSubscriptionError(f"no stored subscription {subscription_id}")
    return stored


def _audit(
    subscription_id: str,
    action: AuditAction,
    operator: str,
    correlation_id: str,
    ports: OperatorRequestPorts,
    *,
    operation_id: str = "",
) -> None:
    entry = AuditEntry(
        subscription_id=subscription_id,
        at=utcnow(),
        action=action,
        source=AuditSource.OPERATOR,
        operation_id=operation_id,
        correlation_id=correlation_id,
        actor=operator,
    )
    ports.audit.append(entry)
