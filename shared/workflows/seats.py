"""Seats and the license index, kept in step in one place: assign, revoke, bind at sign-in, refresh.

The rule: a user (tenant id + object id) is licensed for an offer while they hold a bound seat in a
subscription of that offer (or the plan is tenant-wide). The license index keeps one row per user and offer
so the license check is a single read; when a seat goes, the row is recomputed from the seats the user still
holds in the tenant's other subscriptions of the same offer, so losing one of two seats keeps the license.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain import access
from shared.domain.addresses import normalize_user_key
from shared.domain.identity import Person, may_bind_seat, seat_address_refusal
from shared.domain.seats import SeatLimitError, SeatNotFoundError, over_assignment
from shared.domain.status import SubscriptionStatus
from shared.logs import get_logger, log_context
from shared.workflows.people import listed_people, picked

if TYPE_CHECKING:
    from shared.domain.access import Role
    from shared.domain.seats import Seat
    from shared.domain.subscription import Subscription
    from shared.identity.id_token import IdTokenClaims
    from shared.workflows.ports import AdminGrants, LicenseRows, SeatBook, SubscriptionRecords, UserDirectory

log = get_logger(__name__)

NO_ADDRESS = "This user has no sign-in name we can show; ask them to sign in again, then try again."


class SeatsClosedError(Exception):
    """The visitor may not change this subscription's seats: it has ended (or they hold no role on it)."""


class OutsiderAddressError(ValueError):
    """The typed address belongs to someone who could never use a seat of this subscription."""


@dataclass(frozen=True)
class SeatTarget:
    """Who gets a seat: an address, plus the identity when the visitor picked a known user."""

    user_key: str
    display_name: str = ""
    tenant_id: str = ""
    object_id: str = ""


@dataclass(frozen=True)
class SeatRequest:
    """What the assign form asked for: a listed person picked by "tid:oid", else a typed address."""

    choice: str = ""
    typed: str = ""


def assign_seat(
    subscription: Subscription,
    viewer: Person,
    roles: frozenset[Role],
    request: SeatRequest,
    *,
    assigned_by: str,
    users: UserDirectory,
    admins: AdminGrants,
    seats: SeatBook,
    licenses: LicenseRows,
) -> Seat:
    """Gives the requested person a seat; a seat bound to an identity licenses it at once, a reserved one at
    sign-in.

    Raises, in this order: SeatsClosedError (the subscription ended), SeatLimitError (more seats assigned
    than bought, or none free), NotListedError (a pick the visitor was not shown), OutsiderAddressError (an
    address someone outside the beneficiary holds) and ValueError (no usable address, a malformed id).
    """
    if not access.can_manage_seats(subscription, roles):
        raise SeatsClosedError(subscription.id)
    assigned = seats.count(subscription.id)
    over = over_assignment(subscription.quantity, assigned)
    if over:
        # Microsoft lowered the quantity below what is assigned: nothing new until enough are revoked.
        raise SeatLimitError(
            f"Revoke {over} seat(s) first: more are assigned than bought.",
            quantity=subscription.quantity,
            assigned=assigned,
            requested=1,
        )
    target = _seat_target(subscription, viewer, roles, request, users=users, admins=admins, seats=seats)
    return _assign(subscription, target, assigned_by=assigned_by, seats=seats, licenses=licenses)


def _seat_target(
    subscription: Subscription,
    viewer: Person,
    roles: frozenset[Role],
    request: SeatRequest,
    *,
    users: UserDirectory,
    admins: AdminGrants,
    seats: SeatBook,
) -> SeatTarget:
    """Who gets the seat: someone the page listed (picked by tid:oid) or an email/UPN typed in."""
    if request.choice.strip():
        listed = listed_people(subscription, viewer, roles, users=users, admins=admins, seats=seats)
        known = picked(request.choice, listed)
        # The seat binds to tid + oid at once; the address is a label, and only one Entra vouched for.
        address = next(iter(known.addresses), "") or known.upn
        if not address:
            raise ValueError(NO_ADDRESS)
        return SeatTarget(address, known.display_name, known.tenant_id, known.object_id)
    refusal = _address_refusal(subscription, request.typed, users=users)
    if refusal:
        raise OutsiderAddressError(refusal)
    return SeatTarget(request.typed)


def _address_refusal(subscription: Subscription, typed: str, *, users: UserDirectory) -> str | None:
    """Why a typed address cannot get a seat of this subscription (someone outside it holds it)."""
    try:
        address = normalize_user_key(typed)
    except ValueError:
        return None  # the seat store explains a malformed address
    return seat_address_refusal(subscription.beneficiary, users.holders_of(address))


def _assign(
    subscription: Subscription,
    target: SeatTarget,
    *,
    assigned_by: str,
    seats: SeatBook,
    licenses: LicenseRows,
) -> Seat:
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
    roles: frozenset[Role],
    key: str,
    *,
    seats: SeatBook,
    subscriptions: SubscriptionRecords,
    licenses: LicenseRows,
) -> Seat:
    """Frees the seat `key` names (its address or row key); the holder keeps the offer's license through any
    other seat of it they hold. Raises SeatsClosedError (the subscription ended) or SeatNotFoundError."""
    if not access.can_manage_seats(subscription, roles):
        raise SeatsClosedError(subscription.id)
    try:
        seat = seats.find(subscription.id, user_key=key) if key else None
    except ValueError:
        seat = None  # not an address: no seat can have it
    if seat is None:
        raise SeatNotFoundError(subscription.id)
    seats.revoke(subscription.id, seat.key if seat.is_bound else seat.user_key)
    if seat.is_bound:
        licenses.remove_seat(subscription, seat.tenant_id, seat.object_id)
        _license_from_other_seats(
            subscription, [seat.holder], seats=seats, subscriptions=subscriptions, licenses=licenses
        )
    return seat


def bind_seats(
    claims: IdTokenClaims, *, subscriptions: SubscriptionRecords, seats: SeatBook, licenses: LicenseRows
) -> int:
    """Re-keys to tid + oid the seats reserved for an address this ID token vouches for, in subscriptions
    the token's tenant is the beneficiary of (`shared.domain.identity.may_bind_seat`). What the user typed
    anywhere (the contact email) never takes part."""
    who = claims.person
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
        holders = [seat.holder for seat in seats.list(subscription.id) if seat.is_bound]
        licenses.refresh(subscription, holders)
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
