"""The publisher's own say on changes Microsoft announces (R34, R52) and plan quantity limits (R24, R49).

Microsoft decides what a customer may buy; the publisher may still refuse a ChangePlan or ChangeQuantity
within 10 s (R35). These rules decide that, from plain values only, so the worker can answer in time and the
portal can explain the same refusal before a request is ever sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.status import Action, parse_action

ACCEPTED = "accepted"


class InvalidChangeRequestError(ValueError):
    """A change request with numbers no real subscription can have: a caller bug, not a customer choice."""


class InvalidPlanLimitsError(ValueError):
    """Plan limits where the minimum exceeds the maximum: the plan data is wrong, not the quantity."""


@dataclass(frozen=True)
class PublisherPolicy:
    """Settings-driven rules. `plan_order` lists plan ids lowest first; plans not in it are never ranked."""

    block_downgrades: bool = False
    plan_order: tuple[str, ...] = ()
    refuse_quantity_below_assigned: bool = True


@dataclass(frozen=True)
class ChangeRequest:
    """A change Microsoft announced (or a buyer asked for), with the seats the publisher has handed out."""

    action: Action | str
    current_plan: str
    target_plan: str
    current_quantity: int | None
    target_quantity: int | None
    seats_assigned: int = 0

    def __post_init__(self) -> None:
        if self.seats_assigned < 0:
            raise InvalidChangeRequestError(f"seats_assigned cannot be negative, got {self.seats_assigned}")
        for name in ("current_quantity", "target_quantity"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidChangeRequestError(f"{name} cannot be negative, got {value}")


@dataclass(frozen=True)
class Decision:
    """Accept or refuse; `reason` is shown to people (operators, buyers), so it says why in plain words."""

    accept: bool
    reason: str


def _plan_key(plan_id: str) -> str:
    # Settings and Microsoft may differ in case or padding for the same plan id.
    return plan_id.strip().lower()


def _rank(plan_order: tuple[str, ...], plan_id: str) -> int | None:
    keys = [_plan_key(plan) for plan in plan_order]
    key = _plan_key(plan_id)
    return keys.index(key) if key in keys else None


def is_downgrade(plan_order: tuple[str, ...], current: str, target: str) -> bool:
    """True only when both plans are ranked in `plan_order` (lowest first) and `target` ranks lower."""
    current_rank = _rank(plan_order, current)
    target_rank = _rank(plan_order, target)
    if current_rank is None or target_rank is None:
        return False
    return target_rank < current_rank


def decide(policy: PublisherPolicy, request: ChangeRequest) -> Decision:
    """Whether the publisher accepts the change; anything the policy does not speak about is accepted."""
    action = request.action if isinstance(request.action, Action) else parse_action(request.action)
    if action is Action.CHANGE_PLAN:
        return _decide_plan(policy, request)
    if action is Action.CHANGE_QUANTITY:
        return _decide_quantity(policy, request)
    return Decision(accept=True, reason=ACCEPTED)


def _decide_plan(policy: PublisherPolicy, request: ChangeRequest) -> Decision:
    if policy.block_downgrades and is_downgrade(policy.plan_order, request.current_plan, request.target_plan):
        return Decision(
            accept=False,
            reason=(
                f"moving from plan {request.current_plan!r} down to {request.target_plan!r} is a downgrade, "
                "which this publisher does not allow"
            ),
        )
    return Decision(accept=True, reason=ACCEPTED)


def _decide_quantity(policy: PublisherPolicy, request: ChangeRequest) -> Decision:
    if not policy.refuse_quantity_below_assigned:
        return Decision(accept=True, reason=ACCEPTED)
    if request.target_quantity is None:
        # Without a number the seats still in use cannot be protected; R38 says the operation must carry it.
        return Decision(accept=False, reason="the quantity change does not say which quantity it asks for")
    if request.target_quantity < request.seats_assigned:
        return Decision(
            accept=False,
            reason=(
                f"the new quantity {request.target_quantity} is below the {request.seats_assigned} seats "
                "already assigned; unassign seats first"
            ),
        )
    return Decision(accept=True, reason=ACCEPTED)


def fits_plan_limits(quantity: int | None, min_quantity: int | None, max_quantity: int | None) -> bool:
    """Whether `quantity` lies within the plan's limits; a missing limit does not bound, and a plan with
    limits needs a quantity (R24, R49). Raises InvalidPlanLimitsError when min exceeds max."""
    if min_quantity is not None and max_quantity is not None and min_quantity > max_quantity:
        raise InvalidPlanLimitsError(f"plan minimum {min_quantity} exceeds its maximum {max_quantity}")
    if quantity is None:
        return min_quantity is None and max_quantity is None
    if quantity < 1:
        return False
    if min_quantity is not None and quantity < min_quantity:
        return False
    return max_quantity is None or quantity <= max_quantity
