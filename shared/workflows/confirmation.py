"""The buyer's side of a purchase: the landing records it, the confirmation starts it (R7-R16, R62).

`land_purchase` resolves the landing page's token and mirrors the subscription; nothing starts yet, and the
token is never stored (R4). `confirm_purchase` runs when the signed-in buyer confirms: it records who
confirmed and where we may write to them, grants the admin roles and queues the activation exactly once;
if the queue refuses, the confirmation is taken back so the buyer can simply confirm again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.domain.access import Role
from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.changes import Change
from shared.domain.identity import Person, acts_for
from shared.domain.status import SubscriptionStatus
from shared.domain.transitions import Cause
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError, activation_message
from shared.workflows.sync import SyncPorts, mirror

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.domain.subscription import ResolvedPurchase, Subscription
    from shared.web.current_user import SignedInUser
    from shared.workflows.ports import AdminGrants, EventPublisher, SubscriptionRecords, UserDirectory

log = get_logger(__name__)


@dataclass(frozen=True)
class ConfirmationPorts:
    subscriptions: SubscriptionRecords
    users: UserDirectory
    admins: AdminGrants
    events: EventPublisher


def land_purchase(token: str, correlation_id: str, *, sync: SyncPorts) -> Subscription:
    """Resolves the purchase token and mirrors the subscription; Resolve's errors reach the caller."""
    purchase = sync.marketplace.resolve(token, correlation_id=correlation_id)
    with log_context(subscription_id=purchase.subscription_id):
        return record_purchase(purchase, correlation_id, sync=sync)


def record_purchase(purchase: ResolvedPurchase, correlation_id: str, *, sync: SyncPorts) -> Subscription:
    """Mirrors the resolved subscription. Activation waits for the buyer's confirmation (R8, R12, R14)."""
    cause = Cause(
        operation_id="",
        action=AuditAction.RESOLVE.value,
        source=AuditSource.LANDING.value,
        at=datetime.now(UTC),
    )
    return mirror(sync, purchase.subscription, cause, correlation_id)


def may_confirm(user: SignedInUser, stored: Subscription) -> bool:
    """R62: someone of the beneficiary's organisation, or of the purchaser's (a CSP partner finishing
    setup); for a personal Microsoft account, that account itself (its tenant is every personal account's)."""
    who = user.person
    return acts_for(stored.beneficiary, who) or acts_for(stored.purchaser, who)


def confirm_purchase(
    stored: Subscription,
    user: SignedInUser,
    contact_email: str,
    correlation_id: str,
    *,
    ports: ConfirmationPorts,
) -> bool:
    """Records who confirmed and the contact email, grants the admin roles, queues activation once.

    Returns True when this call queued the activation, False when an earlier confirmation already had.
    Raises QueueUnavailableError (after taking the confirmation back) when the queue refused the message.

    The purchaser and the beneficiary Microsoft names are administrators whoever confirms. The confirmer
    becomes one only by being the confirmation that counts (the one that set the mark): two people of the
    same organisation confirming at the same moment both passed the "not confirmed yet" check, and both
    were made administrators while the audit named one.
    """
    # Contact data only: it never identifies the user or binds a seat (shared.domain.identity).
    ports.users.set_contact_email(user.tenant_id, user.object_id, contact_email)
    confirmer = f"{user.tenant_id}:{user.object_id}"
    named_by_microsoft = [
        (stored.purchaser.tenant_id, stored.purchaser.object_id, Role.PURCHASER),
        (stored.beneficiary.tenant_id, stored.beneficiary.object_id, Role.BENEFICIARY_ADMIN),
    ]
    _grant(stored.id, named_by_microsoft, granted_by=confirmer, admins=ports.admins)
    confirmer_grant = [(user.tenant_id, user.object_id, confirmer_role(user, stored))]
    # A party Microsoft names keeps its roles whatever happens to this confirmation.
    named = user.person in {Person.of(tid, oid) for tid, oid, _ in named_by_microsoft}
    return _queue_activation_once(
        stored.id,
        user,
        contact_email,
        correlation_id,
        ports=ports,
        once_marked=lambda: _grant(stored.id, confirmer_grant, granted_by=confirmer, admins=ports.admins),
        undo_marked=None if named else lambda: ports.admins.revoke(stored.id, user.tenant_id, user.object_id),
    )


def _grant(
    subscription_id: str, grants: list[tuple[str, str, Role]], *, granted_by: str, admins: AdminGrants
) -> None:
    for tenant_id, object_id, role in dict.fromkeys(grants):
        if tenant_id and object_id:
            admins.grant(subscription_id, tenant_id, object_id, role, granted_by=granted_by)


def confirmer_role(user: SignedInUser, stored: Subscription) -> Role:
    own = user.tenant_id == stored.beneficiary.tenant_id.lower()
    return Role.BENEFICIARY_ADMIN if own else Role.PURCHASER


def _queue_activation_once(
    subscription_id: str,
    user: SignedInUser,
    contact_email: str,
    correlation_id: str,
    *,
    ports: ConfirmationPorts,
    once_marked: Callable[[], None],
    undo_marked: Callable[[], object] | None = None,
) -> bool:
    """Marks activation requested under the record's ETag; only the request that set the mark runs
    `once_marked` (the confirmer's grant) and queues.

    The mark and the "Confirm" audit row are one transaction. If the grant or the queue then fails, the mark
    is taken back (and audited) and, for the queue, `undo_marked` takes the grant back too: the buyer can
    confirm again, and a confirmation that did not count made nobody an administrator.
    """

    def mark(current: Subscription | None) -> Change | None:
        if current is None or current.status is not SubscriptionStatus.PENDING_FULFILLMENT_START:
            return None
        if current.activation_requested_at is not None:
            return None
        changes: dict[str, tuple[object, object]] = {
            "confirmed_by": ("", f"{user.tenant_id}:{user.object_id}"),
            "contact_email": ("", contact_email),
        }
        return Change(
            replace(current, activation_requested_at=datetime.now(UTC)),
            audit=_audit_entry(subscription_id, AuditAction.CONFIRM, changes, correlation_id),
        )

    sub = ports.subscriptions.update(subscription_id, mark).after
    if sub is None:
        log.info("activation already requested; nothing queued")
        return False
    try:
        once_marked()
    except Exception:
        _take_back_mark(subscription_id, correlation_id, subscriptions=ports.subscriptions)
        raise
    try:
        ports.events.send(activation_message(sub.id, sub.plan_id, sub.quantity, correlation_id))
    except QueueUnavailableError:
        _take_back_mark(subscription_id, correlation_id, subscriptions=ports.subscriptions)
        if undo_marked is not None:
            undo_marked()
        raise
    log.info("activation queued", extra={"plan_id": sub.plan_id, "quantity": sub.quantity})
    return True


def _take_back_mark(subscription_id: str, correlation_id: str, *, subscriptions: SubscriptionRecords) -> None:
    log.error("activation could not be queued; the confirmation is taken back")

    def unmark(current: Subscription | None) -> Change | None:
        if current is None:
            return None
        entry = _audit_entry(
            subscription_id,
            AuditAction.CONFIRM_ROLLED_BACK,
            {"reason": ("", "queue unavailable")},
            correlation_id,
        )
        return Change(replace(current, activation_requested_at=None), audit=entry)

    subscriptions.update(subscription_id, unmark)


def _audit_entry(
    subscription_id: str, action: AuditAction, changes: dict[str, tuple[object, object]], correlation_id: str
) -> AuditEntry:
    return AuditEntry(
        subscription_id=subscription_id,
        at=datetime.now(UTC),
        action=action,
        source=AuditSource.LANDING,
        changes=changes,
        correlation_id=correlation_id,
    )
