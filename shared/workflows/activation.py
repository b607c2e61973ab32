"""Activation after a landing: provision, then tell Microsoft to start billing (R14, R15).

Safe to run any number of times for one subscription: it starts from GetSubscription, so a subscription
that is already Subscribed (a refreshed landing page, a redelivered message, a crash after Activate) is
only mirrored, never activated twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.changes import Change
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription
from shared.domain.transitions import ACTIVATE, Cause
from shared.faultpoints import faultpoint
from shared.fulfillment.errors import FulfillmentBadRequestError, FulfillmentNotFoundError
from shared.logs import get_logger
from shared.workflows.errors import PermanentFailureError, RetryLaterError
from shared.workflows.provisioning import ProvisioningHook
from shared.workflows.sync import SyncPorts, mirror, utcnow

log = get_logger(__name__)
SOURCE = AuditSource.LANDING


@dataclass(frozen=True)
class ActivationPorts:
    """Mirroring (with Microsoft behind it) and the publisher's provisioning step."""

    sync: SyncPorts
    provision: ProvisioningHook


def activate_purchase(
    subscription_id: str, correlation_id: str, *, ports: ActivationPorts, source: AuditSource = SOURCE
) -> Subscription:
    """`source` names who started it in the audit trail: the landing, or reconciliation finishing it."""
    client = ports.sync.marketplace
    snapshot = client.get_subscription(subscription_id, correlation_id=correlation_id)
    cause = Cause(operation_id="", action=ACTIVATE, source=source.value, at=utcnow())
    if snapshot.status is not SubscriptionStatus.PENDING_FULFILLMENT_START:
        log.info("no activation needed", extra={"status": snapshot.status.value})
        return mirror(ports.sync, snapshot, cause, correlation_id)

    stored = _provision(ports, mirror(ports.sync, snapshot, cause, correlation_id), correlation_id, source)
    # Our state is written (provisioned); a crash here must still end with an activated subscription.
    faultpoint("worker.after_state_write")
    try:
        client.activate(subscription_id, snapshot.plan_id, snapshot.quantity, correlation_id=correlation_id)
    except (FulfillmentBadRequestError, FulfillmentNotFoundError) as exc:
        return _after_refused_activation(ports.sync, stored, exc, correlation_id, cause)
    log.info("subscription activated", extra={"plan_id": snapshot.plan_id, "quantity": snapshot.quantity})
    after = client.get_subscription(subscription_id, correlation_id=correlation_id)
    return mirror(ports.sync, after, cause, correlation_id)


def _provision(
    ports: ActivationPorts, stored: Subscription, correlation_id: str, source: AuditSource
) -> Subscription:
    if stored.provisioned:
        return stored
    if not ports.provision(stored):
        raise RetryLaterError("the publisher's provisioning step has not finished yet")

    def mark_provisioned(current: Subscription | None) -> Change | None:
        if current is None:
            return None
        entry = AuditEntry(
            subscription_id=stored.id,
            at=utcnow(),
            action=AuditAction.PROVISIONED,
            source=source,
            changes={"provisioned": (False, True)},
            correlation_id=correlation_id,
        )
        return Change(replace(current, provisioned=True), audit=entry)

    return ports.sync.subscriptions.update(stored.id, mark_provisioned).after or stored


def _after_refused_activation(
    sync: SyncPorts, stored: Subscription, error: Exception, correlation_id: str, cause: Cause
) -> Subscription:
    """400 'already subscribed' is success once GetSubscription confirms it (R14); else it is final."""
    snapshot = sync.marketplace.get_subscription(stored.id, correlation_id=correlation_id)
    current = mirror(sync, snapshot, cause, correlation_id)
    if snapshot.status is SubscriptionStatus.PENDING_FULFILLMENT_START:
        raise PermanentFailureError("ActivationRefused", f"Microsoft refused activation: {error}")
    log.info("activation answered by the current state", extra={"status": snapshot.status.value})
    return current
