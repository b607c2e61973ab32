"""Seats and the license index, kept in step in one place: assign, revoke, bind at sign-in, refresh.

The rule: a user (tenant id + object id) is licensed for an offer while they hold a bound seat in a
subscription of that offer (or the plan is tenant-wide). The license index keeps one row per user and offer
so the license check is a single read; when a seat goes, the row is recomputed from the seats the user still
holds in the tenant's other subscriptions of the same offer, so losing one of two seats keeps the license.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.identity import Person, may_bind_seat
from shared.domain.status import SubscriptionStatus
from shared.logs import get_logger, log_context
from shared.storage.seats import SeatNotFoundError

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription
    from shared.identity.id_token import IdTokenClaims
    from shared.storage.seats import Seat
    from shared.workflows.ports import LicenseRows, SeatBook, SubscriptionRecords

log = get_logger(__name__)


@dataclass(frozen=True)
class SeatTarget:
    """Who gets a seat: an address, plus the identity when the visitor picked a known user."""

    user_key: str
    display_name: str = ""
    tenant_id: str = ""
    object_id: str = ""


def assign_seat(
    subscription: Subscription,
    target: SeatTarget,
    *,
    assigned_by: str,
    seats: SeatBook,
    licenses: LicenseRows,
) -> Seat:
    """Gives `target` a seat; a seat bound to an identity licenses it at once, a reserved one at sign-in.

    Raises SeatLimitError when every seat bought is taken, ValueError on a malformed address or id.
    """
    seat = seats.assign(
        subscription.id,
        target.user_key,
        quantity=subscription.quantity,
        assigned_by=assigned_by,
        display_name=target.display_name,
        tenant_id=target.tenant_id,
        object_id=target.object_id,
    )
    if seat.is_bound:
        licenses.put_seat(subscription, seat.tenant_id, seat.object_id)
    return seat


def revoke_seat(
    subscription: Subscription,
    seat: Seat,
    *,
    seats: SeatBook,
    subscriptions: SubscriptionRecords,
    licenses: LicenseRows,
) -> None:
    """Frees the seat; the holder keeps the offer's license through any other seat of it they hold."""
    seats.revoke(subscription.id, seat.key if seat.is_bound else seat.user_key)
    if seat.is_bound:
        licenses.remove_seat(subscription, seat.tenant_id, seat.object_id)
        holder = Person.of(seat.tenant_id, seat.object_id)
        _license_from_other_seats(
            subscription, [holder], seats=seats, subscriptions=subscriptions, licenses=licenses
        )


def bind_seats(
    claims: IdTokenClaims, *, subscriptions: SubscriptionRecords, seats: SeatBook, licenses: LicenseRows
) -> int:
    """Re-keys to tid + oid the seats reserved for an address this ID token vouches for, in subscriptions
    the token's tenant is the beneficiary of (`shared.domain.identity.may_bind_seat`). What the user typed
    anywhere (the contact email) never takes part."""
    who = Person.of(claims.tenant_id, claims.object_id)
    bound = 0
    for subscription in subscriptions.list_for_tenant(claims.tenant_id):
        for address in claims.addresses:
            if may_bind_seat(address, subscription.beneficiary, who, claims.addresses):
                bound += _bind_one(subscription, address, who, seats=seats, licenses=licenses)
    return bound


def _bind_one(
    subscription: Subscription, key: str, who: Person, *, seats: SeatBook, licenses: LicenseRows
) -> int:
    with log_context(subscription_id=subscription.id):
        try:
            seat = seats.find(subscription.id, user_key=key)
            if seat is None or seat.is_bound:
                return 0
            seats.bind_identity(subscription.id, key, who.tenant_id, who.object_id)
            # From now on the publisher's app finds this user by tid + oid in one read (license check).
            licenses.put_seat(subscription, who.tenant_id, who.object_id)
        except (SeatNotFoundError, ValueError) as exc:
            # A seat bound to someone else, or a key that is not an address: the seat stays as it was.
            log.warning("seat not bound at sign-in", extra={"error": type(exc).__name__})
            return 0
        log.info("seat bound to the signed-in user")
        return 1


def refresh_license_index(
    subscription: Subscription, *, seats: SeatBook, subscriptions: SubscriptionRecords, licenses: LicenseRows
) -> None:
    """Brings the subscription's index rows in line with its plan, status and bound seats (after a mirror)."""
    with log_context(subscription_id=subscription.id):
        if not subscription.offer_id:
            log.warning("license index not refreshed: the subscription has no offer id")
            return
        holders = [Person.of(s.tenant_id, s.object_id) for s in seats.list(subscription.id) if s.is_bound]
        licenses.refresh(subscription, [(p.tenant_id, p.object_id) for p in holders])
        if subscription.status is not SubscriptionStatus.SUBSCRIBED:
            # Its rows now say "not licensed"; a seat in another live subscription of the offer still counts.
            _license_from_other_seats(
                subscription, holders, seats=seats, subscriptions=subscriptions, licenses=licenses
            )


def _license_from_other_seats(
    subscription: Subscription,
    holders: list[Person],
    *,
    seats: SeatBook,
    subscriptions: SubscriptionRecords,
    licenses: LicenseRows,
) -> None:
    """Rewrites each holder's row from the seats they hold in other subscriptions of the same offer.

    The index keeps a Subscribed subscription's row over one that is not, so writing every such seat leaves
    the best one; holders with no other seat keep no row.
    """
    for tenant_id in sorted({holder.tenant_id for holder in holders}):
        others = [
            other
            for other in subscriptions.list_for_tenant(tenant_id)
            if other.id != subscription.id and other.offer_id == subscription.offer_id
        ]
        for other in others:
            for holder in (h for h in holders if h.tenant_id == tenant_id):
                seat = seats.find(other.id, tenant_id=holder.tenant_id, object_id=holder.object_id)
                if seat is not None and seat.is_bound:
                    licenses.put_seat(other, holder.tenant_id, holder.object_id)
                    log.info("license kept through another seat of the same offer")
