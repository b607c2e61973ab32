"""Publisher-side changes a buyer asks for in the portal: plan (PATCH), quantity (PATCH), cancel (DELETE);
and the cancel an operator makes in the console, through the same DELETE, record and tracking.

Each change is checked against the access rules and the plan's limits, sent to Microsoft, recorded in the
inbox as publisher-initiated and followed by a `track` message, so the portal shows it in progress until the
worker sees it finish (R25, R49). Refusals are `ChangeRefusedError` with the words the buyer sees.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.domain import access
from shared.domain.inbox import InboxRecord, InboxState
from shared.domain.policy import fits_plan_limits, is_downgrade
from shared.domain.seats import SeatLimitError, seats_are
from shared.domain.status import SubscriptionStatus
from shared.fulfillment.errors import FulfillmentBadRequestError, FulfillmentConflictError, FulfillmentError
from shared.logs import get_logger
from shared.queueing.messages import QueueUnavailableError, track_message

if TYPE_CHECKING:
    from shared.domain.access import Role
    from shared.domain.identity import Person
    from shared.domain.policy import PublisherPolicy
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import EventPublisher, Inbox, Marketplace, SeatBook

log = get_logger(__name__)
_SEAT_COUNT = re.compile(r"[0-9]{1,6}")

PLANS_UNAVAILABLE = "Microsoft did not list the available plans just now; try again in a few minutes."
_FORBIDDEN = (
    "You cannot change this subscription here: it is not active, or it was bought through a partner "
    "(Cloud Solution Provider), who manages plan, quantity and cancellation."
)


class ChangeRefusedError(Exception):
    """The change was not sent (or Microsoft refused it): HTTP status, title and message for the buyer."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class ChangePorts:
    """What a publisher-side change touches."""

    fulfillment: Marketplace
    operations: Inbox
    queue: EventPublisher
    policy: PublisherPolicy


@dataclass(frozen=True)
class Requester:
    """Who asks, with their roles on the subscription."""

    who: Person
    roles: frozenset[Role]


def plan_names(subscription_id: str, *, fulfillment: Marketplace) -> dict[str, str]:
    """Display names of the plans Microsoft offers the subscription, by plan id; empty when Microsoft cannot
    say (the pages then show the plan id, set apart as an id)."""
    try:
        plans = fulfillment.list_available_plans(subscription_id)
    except FulfillmentError as exc:
        log.warning("listAvailablePlans failed; plan ids shown", extra={"status": exc.status_code})
        return {}
    return {plan.plan_id: plan.display_name for plan in plans if plan.display_name}


def plan_choices(
    subscription: Subscription, *, fulfillment: Marketplace, policy: PublisherPolicy
) -> tuple[list[dict[str, Any]], str]:
    """Plans Microsoft offers this subscription (stop-sold left out), each marked downgrade/blocked."""
    try:
        plans = fulfillment.list_available_plans(subscription.id)
    except FulfillmentError as exc:
        log.error("listAvailablePlans failed", extra={"status": exc.status_code})
        return [], PLANS_UNAVAILABLE
    current = subscription.plan_id
    choices = []
    for plan in plans:
        if plan.is_stop_sell and plan.plan_id != current:
            continue
        downgrade = is_downgrade(policy.plan_order, current, plan.plan_id)
        choices.append(
            {
                "plan": plan,
                "current": plan.plan_id == current,
                "downgrade": downgrade,
                "blocked": downgrade and policy.block_downgrades,
            }
        )
    return choices, ""


def plan_limit(choices: list[dict[str, Any]], plan_id: str, attribute: str) -> Any:
    """`min_quantity` or `max_quantity` of `plan_id` among the choices; None when unknown."""
    for choice in choices:
        if choice["plan"].plan_id == plan_id:
            return getattr(choice["plan"], attribute)
    return None


def change_plan(subscription: Subscription, plan_id: str, *, requester: Requester, ports: ChangePorts) -> str:
    """PATCHes the plan; returns the operation id. Raises ChangeRefusedError."""
    _require_change_right(subscription, requester)
    choices, error = plan_choices(subscription, fulfillment=ports.fulfillment, policy=ports.policy)
    if error:
        raise ChangeRefusedError(502, "Microsoft is not answering", error)
    choice = next((c for c in choices if c["plan"].plan_id == plan_id and not c["current"]), None)
    if choice is None:
        raise ChangeRefusedError(400, "Plan not available", "Choose one of the plans listed on the page.")
    if choice["blocked"]:
        raise ChangeRefusedError(
            409, "Downgrade not allowed", "The publisher does not allow moving to a lower plan."
        )
    return _send(subscription, "ChangePlan", ports, plan_id=plan_id)


def change_quantity(
    subscription: Subscription, typed: str, *, requester: Requester, ports: ChangePorts, seats: SeatBook
) -> str:
    """PATCHes the seat quantity the buyer typed; returns the operation id. Raises ChangeRefusedError."""
    _require_change_right(subscription, requester)
    if subscription.quantity is None:
        raise ChangeRefusedError(400, "Not a per-user plan", "This plan has no seat quantity to change.")
    # ASCII digits only: int() also takes full-width digits and "1_0", which nobody means as seats.
    if not _SEAT_COUNT.fullmatch(typed.strip()):
        raise ChangeRefusedError(
            400, "Enter a whole number", "The seat quantity must be a whole number, such as 10."
        )
    quantity = int(typed.strip())
    assigned = seats.count(subscription.id)
    if quantity < assigned:  # said before Microsoft is asked for the plan's limits; held below, atomically
        raise _below_assigned(assigned, quantity)
    if quantity == subscription.quantity:
        raise ChangeRefusedError(
            400, "Quantity not possible", f"The subscription already has {quantity} seats."
        )
    choices, error = plan_choices(subscription, fulfillment=ports.fulfillment, policy=ports.policy)
    if error:
        raise ChangeRefusedError(502, "Quantity not possible", error)
    low = plan_limit(choices, subscription.plan_id, "min_quantity")
    high = plan_limit(choices, subscription.plan_id, "max_quantity")
    if not fits_plan_limits(quantity, low, high):
        message = f"This plan allows between {low or 1} and {high or 'any number of'} seats."
        raise ChangeRefusedError(400, "Quantity not possible", message)
    if quantity > subscription.quantity:
        return _send(subscription, "ChangeQuantity", ports, quantity=quantity)
    # A cut: the seats assigned are checked and the lower limit held in one write, before Microsoft is asked,
    # so no seat assigned while the change is in progress can take the total past what will be paid for.
    correlation_id = str(uuid.uuid4())
    try:
        seats.hold_limit(subscription.id, quantity, correlation_id)
    except SeatLimitError as exc:  # a seat was assigned since the count above
        raise _below_assigned(exc.assigned, quantity) from None
    try:
        return _send(
            subscription,
            "ChangeQuantity",
            ports,
            quantity=quantity,
            correlation_id=correlation_id,
            holds=True,
        )
    except ChangeRefusedError as exc:
        if _changed_nothing(exc.__cause__):
            seats.release_limit(subscription.id, correlation_id)  # nothing was changed: nothing to hold
        # Otherwise Microsoft may have taken the change without our hearing it: the hold stays until it
        # expires, the safe side while the quantity is unknown.
        raise


def _changed_nothing(cause: BaseException | None) -> bool:
    """Whether Microsoft's answer says it changed nothing: any 4xx (refused, conflict, not found, throttled,
    unauthorised). No answer, a 5xx or an answer that could not be read say nothing either way."""
    status = cause.status_code if isinstance(cause, FulfillmentError) else None
    return status is not None and 400 <= status < 500


def _below_assigned(assigned: int, quantity: int) -> ChangeRefusedError:
    return ChangeRefusedError(
        409,
        "Quantity not possible",
        f"{seats_are(assigned)} assigned; free some seats first, then lower the quantity to {quantity}.",
    )


def cancel(subscription: Subscription, *, confirmed: bool, requester: Requester, ports: ChangePorts) -> str:
    """DELETEs the subscription at Microsoft; returns the operation id. Raises ChangeRefusedError."""
    if not access.can_cancel(subscription, requester.who, requester.roles):
        raise ChangeRefusedError(403, "This change is not available", _FORBIDDEN)
    if not confirmed:
        raise ChangeRefusedError(400, "Please confirm", "Tick the box to confirm that you want to cancel.")
    return _send(subscription, "Unsubscribe", ports)


def cancel_for_publisher(subscription: Subscription, *, typed: str, ports: ChangePorts) -> str:
    """DELETEs the subscription at Microsoft on the publisher's own decision (an operator); returns the
    operation id. No buyer role applies, so the confirmation is typed: the subscription's name or id, exactly
    (surrounding spaces aside), or nothing is sent. Raises ChangeRefusedError."""
    if not cancel_confirmed(subscription, typed):
        raise ChangeRefusedError(
            400,
            "The confirmation does not match",
            "Nothing was cancelled. Type the subscription's name (or its id) exactly as shown to confirm.",
        )
    if subscription.status is SubscriptionStatus.UNSUBSCRIBED:
        raise ChangeRefusedError(409, "Already cancelled", "This subscription is already cancelled.")
    return _send(subscription, "Unsubscribe", ports)


def cancel_confirmed(subscription: Subscription, typed: str) -> bool:
    words = typed.strip()
    return bool(words) and words in {subscription.name.strip(), subscription.id}


def _require_change_right(subscription: Subscription, requester: Requester) -> None:
    if not access.can_change_plan_or_quantity(subscription, requester.who, requester.roles):
        raise ChangeRefusedError(403, "This change is not available", _FORBIDDEN)


def _send(
    subscription: Subscription,
    action: str,
    ports: ChangePorts,
    *,
    plan_id: str = "",
    quantity: int | None = None,
    correlation_id: str = "",
    holds: bool = False,
) -> str:
    """Asks Microsoft for the change, records the operation and queues its tracking (R25, R49); a seat cut's
    hold on the seats is named by `correlation_id`, which its record keeps, so its tracking releases it."""
    correlation_id = correlation_id or str(uuid.uuid4())
    client = ports.fulfillment
    try:
        if action == "ChangePlan":
            operation_id = client.change_plan(subscription.id, plan_id, correlation_id=correlation_id)
        elif action == "ChangeQuantity":
            operation_id = client.change_quantity(
                subscription.id, int(quantity or 0), correlation_id=correlation_id
            )
        else:
            operation_id = client.delete_subscription(subscription.id, correlation_id=correlation_id)
    except FulfillmentError as exc:
        raise _refusal_of(exc) from exc
    _record(
        subscription,
        ports,
        operation_id,
        action,
        correlation_id,
        plan_id=plan_id,
        quantity=quantity,
        holds=holds,
    )
    return operation_id


def _refusal_of(exc: FulfillmentError) -> ChangeRefusedError:
    log.error("Fulfillment API refused a portal change", extra={"status": exc.status_code})
    if isinstance(exc, FulfillmentConflictError):
        return ChangeRefusedError(
            409, "Another change is in progress", "Wait for it to finish, then try again."
        )
    if isinstance(exc, FulfillmentBadRequestError):
        return ChangeRefusedError(
            400, "Microsoft refused the change", "Microsoft did not accept this change."
        )
    return ChangeRefusedError(
        502, "Microsoft is not answering", "Nothing was changed. Try again in a few minutes."
    )


def _record(
    subscription: Subscription,
    ports: ChangePorts,
    operation_id: str,
    action: str,
    correlation_id: str,
    *,
    plan_id: str,
    quantity: int | None,
    holds: bool,
) -> None:
    """The inbox row (publisher-initiated) and the `track` message that follows the operation to its end."""
    now = datetime.now(UTC)
    record = InboxRecord(
        subscription_id=subscription.id,
        operation_id=operation_id,
        action=action,
        state=InboxState.TRACKING,
        source="portal",
        plan_id=plan_id,
        quantity=quantity,
        initiated_by_publisher=True,
        holds_seats=holds,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
    )
    ports.operations.put_new(record)
    log.info("publisher change sent", extra={"action": action, "operation_id": operation_id})
    try:
        ports.queue.send(track_message(subscription.id, operation_id, correlation_id))
    except QueueUnavailableError:
        # Microsoft has accepted the change: refusing the request now would tell the buyer (or operator)
        # nothing happened. The record stands; the reconciliation sweep finds the drift and mirrors it.
        log.error(
            "publisher change sent, but its tracking could not be queued; reconciliation mirrors it",
            extra={"action": action, "operation_id": operation_id},
            exc_info=True,
        )
