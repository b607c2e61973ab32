"""Each branch of the publisher's change policy (R34, R52) and the plan quantity limits (R24, R49)."""

from __future__ import annotations

import pytest

from shared.domain.policy import (
    ACCEPTED,
    ChangeRequest,
    Decision,
    InvalidChangeRequestError,
    InvalidPlanLimitsError,
    PublisherPolicy,
    decide,
    fits_plan_limits,
    is_downgrade,
)
from shared.domain.status import Action

ORDER = ("basic", "standard", "premium")
BLOCKING = PublisherPolicy(block_downgrades=True, plan_order=ORDER)


def _plan_change(current: str, target: str, action: Action | str = Action.CHANGE_PLAN) -> ChangeRequest:
    return ChangeRequest(
        action=action,
        current_plan=current,
        target_plan=target,
        current_quantity=None,
        target_quantity=None,
    )


def _quantity_change(target: int | None, assigned: int, current: int = 10) -> ChangeRequest:
    return ChangeRequest(
        action=Action.CHANGE_QUANTITY,
        current_plan="standard",
        target_plan="standard",
        current_quantity=current,
        target_quantity=target,
        seats_assigned=assigned,
    )


def test_defaults_allow_downgrades_and_protect_assigned_seats() -> None:
    policy = PublisherPolicy()
    assert policy.block_downgrades is False
    assert policy.plan_order == ()
    assert policy.refuse_quantity_below_assigned is True
    assert _plan_change("a", "b").seats_assigned == 0


# --- is_downgrade


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        ("premium", "basic", True),
        ("premium", "standard", True),
        ("standard", "basic", True),
        ("basic", "premium", False),
        ("basic", "standard", False),
        ("standard", "standard", False),
        ("premium", "enterprise", False),  # target unranked
        ("enterprise", "basic", False),  # current unranked
        ("legacy", "enterprise", False),  # neither ranked
        (" Premium ", "BASIC", True),  # plan ids compared without case or padding
    ],
)
def test_is_downgrade(current: str, target: str, expected: bool) -> None:
    assert is_downgrade(ORDER, current, target) is expected


def test_nothing_is_a_downgrade_without_a_plan_order() -> None:
    assert is_downgrade((), "premium", "basic") is False


# --- decide: ChangePlan


def test_downgrade_is_refused_when_blocked_with_a_reason_naming_both_plans() -> None:
    decision = decide(BLOCKING, _plan_change("premium", "basic"))
    assert decision.accept is False
    assert "'premium'" in decision.reason
    assert "'basic'" in decision.reason
    assert "downgrade" in decision.reason


def test_downgrade_is_accepted_when_not_blocked() -> None:
    policy = PublisherPolicy(block_downgrades=False, plan_order=ORDER)
    assert decide(policy, _plan_change("premium", "basic")) == Decision(accept=True, reason=ACCEPTED)


def test_upgrade_is_accepted_even_when_downgrades_are_blocked() -> None:
    assert decide(BLOCKING, _plan_change("basic", "premium")) == Decision(accept=True, reason=ACCEPTED)


def test_change_to_an_unranked_plan_is_accepted_when_downgrades_are_blocked() -> None:
    assert decide(BLOCKING, _plan_change("premium", "trial")).accept is True


def test_action_given_as_a_raw_string_is_understood() -> None:
    assert decide(BLOCKING, _plan_change("premium", "basic", action=" changeplan ")).accept is False


def test_plan_policy_does_not_judge_a_quantity_change() -> None:
    # A ChangeQuantity carries the same plan on both sides; ranking must not come into it.
    request = ChangeRequest(Action.CHANGE_QUANTITY, "premium", "basic", 5, 6, seats_assigned=0)
    assert decide(BLOCKING, request).accept is True


# --- decide: ChangeQuantity


def test_quantity_below_assigned_seats_is_refused_with_both_numbers() -> None:
    decision = decide(PublisherPolicy(), _quantity_change(target=3, assigned=5))
    assert decision.accept is False
    assert "3" in decision.reason
    assert "5 seats" in decision.reason


def test_quantity_equal_to_assigned_seats_is_accepted() -> None:
    assert decide(PublisherPolicy(), _quantity_change(target=5, assigned=5)) == Decision(True, ACCEPTED)


def test_quantity_above_assigned_seats_is_accepted() -> None:
    assert decide(PublisherPolicy(), _quantity_change(target=8, assigned=5)).accept is True


def test_quantity_below_assigned_seats_is_accepted_when_the_policy_allows_it() -> None:
    policy = PublisherPolicy(refuse_quantity_below_assigned=False)
    assert decide(policy, _quantity_change(target=1, assigned=5)) == Decision(True, ACCEPTED)


def test_quantity_change_without_a_target_is_refused_while_seats_are_protected() -> None:
    decision = decide(PublisherPolicy(), _quantity_change(target=None, assigned=0))
    assert decision.accept is False
    assert "quantity" in decision.reason


def test_quantity_change_without_a_target_is_accepted_when_seats_are_not_protected() -> None:
    policy = PublisherPolicy(refuse_quantity_below_assigned=False)
    assert decide(policy, _quantity_change(target=None, assigned=3)).accept is True


# --- decide: everything else


@pytest.mark.parametrize(
    "action",
    [
        Action.SUSPEND,
        Action.REINSTATE,
        Action.UNSUBSCRIBE,
        Action.RENEW,
        Action.UNKNOWN,
        "Transfer",
        "Activate",
    ],
)
def test_other_actions_are_always_accepted(action: Action | str) -> None:
    strict = PublisherPolicy(block_downgrades=True, plan_order=ORDER, refuse_quantity_below_assigned=True)
    request = ChangeRequest(action, "premium", "basic", 10, 1, seats_assigned=9)
    assert decide(strict, request) == Decision(accept=True, reason="accepted")


# --- bad input


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("seats_assigned", {"seats_assigned": -1}),
        ("current_quantity", {"current_quantity": -2}),
        ("target_quantity", {"target_quantity": -3}),
    ],
)
def test_negative_numbers_are_refused_with_a_typed_error(field: str, overrides: dict[str, int]) -> None:
    values: dict[str, object] = {
        "action": Action.CHANGE_QUANTITY,
        "current_plan": "basic",
        "target_plan": "basic",
        "current_quantity": 1,
        "target_quantity": 1,
        "seats_assigned": 0,
    }
    values.update(overrides)
    with pytest.raises(InvalidChangeRequestError, match=f"{field} cannot be negative"):
        ChangeRequest(**values)  # type: ignore[arg-type]


# --- fits_plan_limits


@pytest.mark.parametrize(
    ("quantity", "minimum", "maximum", "fits"),
    [
        (5, 1, 10, True),
        (1, 1, 10, True),  # bounds are inclusive
        (10, 1, 10, True),
        (0, 1, 10, False),
        (11, 1, 10, False),
        (3, 5, None, False),
        (500, 5, None, True),  # no maximum
        (500, None, 1000, True),  # no minimum
        (1001, None, 1000, False),
        (7, None, None, True),
        (0, None, None, False),  # a seat count is never zero
        (-1, None, None, False),
        (None, None, None, True),  # flat-rate plan, no quantity
        (None, 1, None, False),  # a per-seat plan needs a quantity
        (None, None, 10, False),
        (4, 4, 4, True),
    ],
)
def test_fits_plan_limits(quantity: int | None, minimum: int | None, maximum: int | None, fits: bool) -> None:
    assert fits_plan_limits(quantity, minimum, maximum) is fits


def test_plan_limits_with_minimum_above_maximum_raise() -> None:
    with pytest.raises(InvalidPlanLimitsError, match="minimum 10 exceeds its maximum 5"):
        fits_plan_limits(7, 10, 5)
