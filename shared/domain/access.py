"""Who may do what with a subscription on the buyer's side (R60-R61, R66), from plain values only.

A user is an Entra (tenant id, object id) pair, never an email (R10). Roles on one subscription (`Role`):
- "purchaser": the tid+oid Microsoft reports as the purchaser (for a CSP purchase, the partner, R60);
- "beneficiary-admin": the tid+oid of the beneficiary, or someone granted that role (an admin of the
  customer's tenant, e.g. through a CSP setup link);
- "delegated-admin": granted by a purchaser or beneficiary-admin (grants stored before this spelling say
  "delegated"; `Role.parse` reads both).

Changing plan or quantity and cancelling need a Subscribed subscription. For a CSP purchase (purchaser
tenant differs from beneficiary tenant) Microsoft leaves the customer read-only (`allowedCustomerOperations`
is ["Read"], R61): only the partner side may change or cancel; both sides may manage seats. Otherwise the
customer's `allowedCustomerOperations` must hold "Update" (plan, quantity) or "Delete" (cancel).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from shared.domain.identity import Person, is_party, is_personal_account
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription


class Role(StrEnum):
    """A role on one subscription; the value is what the grant store writes."""

    PURCHASER = "purchaser"
    BENEFICIARY_ADMIN = "beneficiary-admin"
    DELEGATED_ADMIN = "delegated-admin"

    @classmethod
    def parse(cls, value: object) -> Role | None:
        """The role a stored or typed name means (any case, surrounding spaces), None for none.

        "delegated" is how the grant store spelled DELEGATED_ADMIN before one spelling was chosen: rows
        written then are still read.
        """
        if isinstance(value, Role):
            return value
        name = str(value).strip().lower() if isinstance(value, str) else ""
        return _LEGACY_NAMES.get(name) or next((role for role in cls if role.value == name), None)


_LEGACY_NAMES = {"delegated": Role.DELEGATED_ADMIN}
UPDATE = "Update"
DELETE = "Delete"

# License check reasons, stable values the publisher's app may branch on.
REASON_LICENSED = "licensed"
REASON_NO_LICENSE = "no-license"
REASON_NOT_ACTIVE = "subscription-not-active"


def _norm(value: str) -> str:
    return (value or "").strip().lower()


def roles_of(subscription: Subscription, who: Person, granted: Iterable[object] = ()) -> frozenset[Role]:
    """Roles of `who`: from Microsoft's purchaser/beneficiary and from grants (unknown names ignored)."""
    roles = {role for role in map(Role.parse, granted) if role is not None}
    if is_party(subscription.purchaser, who):
        roles.add(Role.PURCHASER)
    if is_party(subscription.beneficiary, who):
        roles.add(Role.BENEFICIARY_ADMIN)
    return frozenset(roles)


def is_csp(subscription: Subscription) -> bool:
    return bool(subscription.purchaser.tenant_id and subscription.beneficiary.tenant_id) and (
        _norm(subscription.purchaser.tenant_id) != _norm(subscription.beneficiary.tenant_id)
    )


def _may_operate(subscription: Subscription, who: Person, roles: frozenset[Role], operation: str) -> bool:
    # allowedCustomerOperations decides for everyone. For a CSP purchase it is ["Read"] (R61): Microsoft
    # refuses plan, quantity and cancel from the publisher's site; the partner makes them in Partner Center
    # and the webhook brings them here.
    if not roles or subscription.status is not SubscriptionStatus.SUBSCRIBED:
        return False
    return operation in subscription.allowed_customer_operations


def can_view(roles: frozenset[Role]) -> bool:
    return bool(roles)


def can_change_plan_or_quantity(subscription: Subscription, who: Person, roles: frozenset[Role]) -> bool:
    return _may_operate(subscription, who, roles, UPDATE)


def can_cancel(subscription: Subscription, who: Person, roles: frozenset[Role]) -> bool:
    return _may_operate(subscription, who, roles, DELETE)


def can_manage_seats(subscription: Subscription, roles: frozenset[Role]) -> bool:
    """Seats are the publisher's own feature: both CSP sides may manage them until the subscription ends."""
    return bool(roles) and subscription.status is not SubscriptionStatus.UNSUBSCRIBED


def can_designate_admins(subscription: Subscription, roles: frozenset[Role]) -> bool:
    """Delegated admins cannot designate further admins: the chain of trust stays one step long."""
    return bool(roles & {Role.PURCHASER, Role.BENEFICIARY_ADMIN}) and (
        subscription.status is not SubscriptionStatus.UNSUBSCRIBED
    )


def is_flat_rate(subscription: Subscription) -> bool:
    """Plans without a quantity are not sold per user (R6)."""
    return subscription.quantity is None


def tenant_wide_license(subscription: Subscription) -> bool:
    """Whether one license row may cover every user of the beneficiary tenant: flat-rate plans of an
    organisation, never of a personal account."""
    return is_flat_rate(subscription) and not is_personal_account(subscription.beneficiary)


def license_answer(status: str | None) -> tuple[bool, str]:
    """The license check's verdict from an index entry's subscription status (None: no entry)."""
    if status is None:
        return False, REASON_NO_LICENSE
    if status != SubscriptionStatus.SUBSCRIBED.value:
        return False, REASON_NOT_ACTIVE
    return True, REASON_LICENSED
