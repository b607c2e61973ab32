"""The buyer-side access rules as a table: who may view, change, cancel, manage seats and designate admins."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain import access
from shared.domain.identity import Person
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription

CUSTOMER = "11111111-0000-4000-8000-000000000000"
PARTNER = "33333333-0000-4000-8000-000000000000"
BUYER = Person(CUSTOMER, "11111111-0000-4000-8000-000000000001")
COLLEAGUE = Person(CUSTOMER, "11111111-0000-4000-8000-000000000002")
RESELLER = Person(PARTNER, "33333333-0000-4000-8000-000000000001")
RESELLER_COLLEAGUE = Person(PARTNER, "33333333-0000-4000-8000-000000000002")
STRANGER = Person("99999999-0000-4000-8000-000000000000", BUYER.object_id)

ALL_OPS = frozenset({"Read", "Update", "Delete"})
DIRECT = Subscription(
    id="sub-direct",
    offer_id="offer",
    plan_id="team-seats",
    quantity=5,
    status=SubscriptionStatus.SUBSCRIBED,
    purchaser=Party(tenant_id=CUSTOMER, object_id=BUYER.object_id),
    beneficiary=Party(tenant_id=CUSTOMER, object_id=BUYER.object_id),
    allowed_customer_operations=ALL_OPS,
)
CSP = replace(
    DIRECT,
    id="sub-csp",
    purchaser=Party(tenant_id=PARTNER, object_id=RESELLER.object_id),
    allowed_customer_operations=frozenset({"Read"}),
)


def rights(subscription: Subscription, who: Person, granted: tuple[str, ...] = ()) -> dict[str, bool]:
    roles = access.roles_of(subscription, who, granted)
    return {
        "view": access.can_view(roles),
        "change": access.can_change_plan_or_quantity(subscription, who, roles),
        "cancel": access.can_cancel(subscription, who, roles),
        "seats": access.can_manage_seats(subscription, roles),
        "admins": access.can_designate_admins(subscription, roles),
    }


NONE = dict.fromkeys(("view", "change", "cancel", "seats", "admins"), False)
FULL = dict.fromkeys(NONE, True)
CUSTOMER_SIDE_OF_CSP = {"view": True, "change": False, "cancel": False, "seats": True, "admins": True}


@pytest.mark.parametrize(
    ("case", "subscription", "who", "granted", "expected"),
    [
        ("direct purchaser and beneficiary", DIRECT, BUYER, (), FULL),
        ("colleague without a grant", DIRECT, COLLEAGUE, (), NONE),
        ("colleague made beneficiary admin", DIRECT, COLLEAGUE, ("beneficiary-admin",), FULL),
        ("delegated colleague", DIRECT, COLLEAGUE, ("delegated",), {**FULL, "admins": False}),
        ("same object id, other tenant", DIRECT, STRANGER, (), NONE),
        ("unknown grant name", DIRECT, COLLEAGUE, ("owner",), NONE),
        (
            "CSP partner who bought (changes go through Partner Center, R61)",
            CSP,
            RESELLER,
            (),
            CUSTOMER_SIDE_OF_CSP,
        ),
        ("CSP customer beneficiary (R61)", CSP, BUYER, (), CUSTOMER_SIDE_OF_CSP),
        ("CSP customer admin via setup link", CSP, COLLEAGUE, ("beneficiary-admin",), CUSTOMER_SIDE_OF_CSP),
        (
            "CSP delegate of the partner tenant",
            CSP,
            RESELLER_COLLEAGUE,
            ("delegated",),
            {**CUSTOMER_SIDE_OF_CSP, "admins": False},
        ),
        (
            "CSP delegate of the customer",
            CSP,
            COLLEAGUE,
            ("delegated",),
            {**CUSTOMER_SIDE_OF_CSP, "admins": False},
        ),
        ("CSP partner colleague without grant", CSP, RESELLER_COLLEAGUE, (), NONE),
    ],
)
def test_rights_by_role(
    case: str, subscription: Subscription, who: Person, granted: tuple[str, ...], expected: dict[str, bool]
) -> None:
    assert rights(subscription, who, granted) == expected, case


@pytest.mark.parametrize(
    ("status", "changeable", "seats"),
    [
        (SubscriptionStatus.PENDING_FULFILLMENT_START, False, True),
        (SubscriptionStatus.SUBSCRIBED, True, True),
        (SubscriptionStatus.SUSPENDED, False, True),
        (SubscriptionStatus.UNSUBSCRIBED, False, False),
    ],
)
def test_only_subscribed_can_change_and_unsubscribed_is_read_only(
    status: SubscriptionStatus, changeable: bool, seats: bool
) -> None:
    for subscription, who in ((DIRECT, BUYER), (CSP, RESELLER)):
        got = rights(replace(subscription, status=status), who)
        assert got["view"] is True
        expected = changeable and subscription is DIRECT  # a CSP purchase is never changed from here (R61)
        assert (got["change"], got["cancel"]) == (expected, expected)
        assert (got["seats"], got["admins"]) == (seats, seats)


@pytest.mark.parametrize(
    ("operations", "change", "cancel"),
    [
        (ALL_OPS, True, True),
        (frozenset({"Read", "Update"}), True, False),
        (frozenset({"Read", "Delete"}), False, True),
        (frozenset({"Read"}), False, False),
        (frozenset(), False, False),
    ],
)
def test_allowed_customer_operations_are_honoured(
    operations: frozenset[str], change: bool, cancel: bool
) -> None:
    got = rights(replace(DIRECT, allowed_customer_operations=operations), BUYER)
    assert (got["change"], got["cancel"]) == (change, cancel)


def test_ids_compare_without_case_or_padding() -> None:
    shouting = Person.of(f" {CUSTOMER.upper()} ", BUYER.object_id.upper())
    assert access.roles_of(DIRECT, shouting) == {"purchaser", "beneficiary-admin"}


def test_empty_ids_never_match_a_party_with_empty_ids() -> None:
    anonymous = replace(DIRECT, purchaser=Party(), beneficiary=Party())
    assert access.roles_of(anonymous, Person("", "")) == frozenset()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, (False, "no-license")),
        ("Subscribed", (True, "licensed")),
        ("Suspended", (False, "subscription-not-active")),
        ("Unsubscribed", (False, "subscription-not-active")),
    ],
)
def test_license_answer(status: str | None, expected: tuple[bool, str]) -> None:
    assert access.license_answer(status) == expected
