"""Bring the stored subscription in line with Microsoft's and record what changed and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.domain.subscription import MicrosoftSubscription, Subscription
from shared.domain.transitions import Cause, Outcome, apply_snapshot
from shared.logs import get_logger
from shared.storage.audit import audit_entity

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)
# Fields the license index copies: only a change to one of them rewrites the index (the check reads it).
LICENSE_FIELDS = frozenset({"plan_id", "status", "quantity", "offer_id", "beneficiary"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def mirror(
    services: Services,
    snapshot: MicrosoftSubscription,
    cause: Cause,
    correlation_id: str,
    *,
    bookkeeping: dict[str, object] | None = None,
) -> Subscription:
    """Stores Microsoft's snapshot and, in the same transaction, the audit row of what changed and why.

    `bookkeeping` sets publisher-only fields (provisioned, activation_requested_at) in the same write.
    """
    outcomes: list[Outcome] = []

    def change(stored: Subscription | None) -> Subscription:
        outcome = apply_snapshot(stored, snapshot, cause, utcnow())
        updated = outcome.subscription
        if bookkeeping:
            updated = replace(updated, **bookkeeping)  # type: ignore[arg-type]
        outcomes[:] = [Outcome(updated, outcome.changes)]
        return updated

    def audit_row(before: Subscription | None, after: Subscription) -> dict[str, Any] | None:
        changes = outcomes[0].changes if outcomes else {}
        if not changes:
            return None
        return audit_entity(
            snapshot.id,
            action=cause.action,
            source=cause.source,
            operation_id=cause.operation_id,
            changes=changes,
            correlation_id=correlation_id,
            at=utcnow(),
        )

    stored = services.subscriptions.update(snapshot.id, change, audit=audit_row)
    assert stored is not None  # change() never returns None
    changes = outcomes[0].changes if outcomes else {}
    if changes:
        log.info("subscription mirrored", extra={"changed": sorted(changes), "action": cause.action})
    if changes.keys() & LICENSE_FIELDS:
        from shared.storage.licenses import refresh_license_index

        refresh_license_index(services, stored)
    return stored


def sync_from_microsoft(
    services: Services, subscription_id: str, cause: Cause, correlation_id: str
) -> Subscription:
    snapshot = services.fulfillment.get_subscription(subscription_id, correlation_id=correlation_id)
    return mirror(services, snapshot, cause, correlation_id)
