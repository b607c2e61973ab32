"""Bring the stored subscription in line with Microsoft's and record what changed and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.changes import Change, Updated
from shared.domain.subscription import MicrosoftSubscription, Subscription
from shared.domain.transitions import Cause, apply_snapshot
from shared.logs import get_logger
from shared.workflows.seats import refresh_license_index

if TYPE_CHECKING:
    from shared.workflows.ports import LicenseRows, Marketplace, SeatBook, SubscriptionRecords

log = get_logger(__name__)
# Fields the license index copies: only a change to one of them rewrites the index (the check reads it).
LICENSE_FIELDS = frozenset({"plan_id", "status", "quantity", "offer_id", "beneficiary"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncPorts:
    """What mirroring needs. `seats` and `licenses` feed the license index (read by `refresh_license_index`
    as attributes of this object), which must follow every change of plan or status."""

    marketplace: Marketplace
    subscriptions: SubscriptionRecords
    seats: SeatBook
    licenses: LicenseRows


def mirror(
    ports: SyncPorts,
    snapshot: MicrosoftSubscription,
    cause: Cause,
    correlation_id: str,
    *,
    bookkeeping: dict[str, object] | None = None,
    known: Subscription | None = None,
) -> Subscription:
    """Stores Microsoft's snapshot and, in the same transaction, the audit entry of what changed and why.

    `bookkeeping` sets publisher-only fields (provisioned, activation_requested_at) in the same write.
    `known` is the stored row as this message already read it (with its ETag): the write starts from it
    instead of reading it again, and a row changed since makes the ETag refuse it and the loop re-read.
    """
    change = _applying(snapshot, cause, correlation_id, bookkeeping)
    stored = _written(ports, ports.subscriptions.update(snapshot.id, change, current=known), cause)
    assert stored is not None  # change() always returns a record to store
    return stored


def mirror_new(
    ports: SyncPorts, snapshot: MicrosoftSubscription, cause: Cause, correlation_id: str
) -> Subscription | None:
    """Creates the mirror of a subscription we hold no row of from `snapshot`, with its audit entry, without
    reading first; None, with nothing written, when a row is there after all (stored since the caller
    looked): that row may be newer than `snapshot`, so the caller goes back to GetSubscription."""
    apply = _applying(snapshot, cause, correlation_id, None)

    def change(stored: Subscription | None) -> Change | None:
        return apply(None) if stored is None else None

    return _written(ports, ports.subscriptions.update(snapshot.id, change, absent=True), cause)


def _applying(
    snapshot: MicrosoftSubscription,
    cause: Cause,
    correlation_id: str,
    bookkeeping: dict[str, object] | None,
) -> Callable[[Subscription | None], Change]:
    """The change function of a mirror: the stored row with the snapshot applied, and its audit entry."""

    def change(stored: Subscription | None) -> Change:
        outcome = apply_snapshot(stored, snapshot, cause, utcnow())
        updated = outcome.subscription
        if bookkeeping:
            updated = replace(updated, **bookkeeping)  # type: ignore[arg-type]
        if not outcome.changes:
            return Change(updated)
        entry = AuditEntry(
            subscription_id=snapshot.id,
            at=utcnow(),
            action=AuditAction.parse(cause.action),
            source=AuditSource.parse(cause.source),
            operation_id=cause.operation_id,
            changes=outcome.changes,
            correlation_id=correlation_id,
        )
        return Change(updated, audit=entry)

    return change


def _written(ports: SyncPorts, result: Updated, cause: Cause) -> Subscription | None:
    """What a mirror stored (None: nothing), logged, with the license index following its changes."""
    stored = result.after
    if stored is None:
        return None
    # The audit entry carries the fields that changed: no entry, nothing changed.
    changed = set(result.audit.changes) if result.audit is not None else set()
    if changed:
        log.info("subscription mirrored", extra={"changed": sorted(changed), "action": cause.action})
    if changed & LICENSE_FIELDS:
        refresh_license_index(
            stored, seats=ports.seats, subscriptions=ports.subscriptions, licenses=ports.licenses
        )
    return stored


def sync_from_microsoft(
    ports: SyncPorts,
    subscription_id: str,
    cause: Cause,
    correlation_id: str,
    *,
    known: Subscription | None = None,
) -> Subscription:
    snapshot = ports.marketplace.get_subscription(subscription_id, correlation_id=correlation_id)
    return mirror(ports, snapshot, cause, correlation_id, known=known)
