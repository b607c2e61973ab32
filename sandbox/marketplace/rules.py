"""The marketplace's rules, pure: what may be bought, activated and changed, and how terms run (R14-R70).

Each check raises `MarketplaceBadRequestError` with the reason Microsoft would give; each change edits the
record it is given and nothing else. Locking, persistence, timers and webhooks belong to the callers.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date, timedelta
from typing import Any

from sandbox.catalog import Offer, Plan
from sandbox.marketplace.errors import MarketplaceBadRequestError
from sandbox.marketplace.records import (
    PENDING,
    OperationRecord,
    SubscriptionRecord,
    WireParty,
    day_iso,
    now_iso,
)


def term_end(start: date, term_unit: str) -> date:
    """The last valid day of a term starting on `start` (R68: renewal happens the day after)."""
    months = 1 if term_unit == "P1M" else 12 * int(term_unit[1])
    return _add_months(start, months) - timedelta(days=1)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plan_in(offer: Offer, plan_id: Any) -> Plan:
    plan = offer.plan(plan_id) if isinstance(plan_id, str) else None
    if plan is None:
        raise MarketplaceBadRequestError(f"plan {plan_id!r} does not exist in offer {offer.offer_id!r}")
    return plan


# --- purchases ---------------------------------------------------------------------------------------------


def new_subscription(
    offer: Offer,
    plan: Plan,
    *,
    quantity: Any,
    purchaser: WireParty,
    beneficiary: WireParty,
    csp: bool,
    name: str | None,
    is_test: bool,
    auto_renew: bool,
    publisher_id: str,
) -> SubscriptionRecord:
    """A purchase: PendingFulfillmentStart, no term yet (it starts at Activate)."""
    check_purchasable(plan, beneficiary.tenant_id)
    now = now_iso()
    return SubscriptionRecord(
        id=str(uuid.uuid4()),
        name=name or f"{offer.display_name} - {plan.display_name}",
        offer_id=offer.offer_id,
        plan_id=plan.plan_id,
        quantity=_purchase_quantity(plan, quantity),
        status=PENDING,
        purchaser=purchaser,
        beneficiary=beneficiary,
        term_unit=plan.term_unit,
        term_start=None,
        term_end=None,
        auto_renew=auto_renew,
        is_test=is_test,
        is_free_trial=plan.has_free_trials,
        # CSP purchases leave the customer read-only (R61).
        allowed_customer_operations=["Read"] if csp else ["Read", "Update", "Delete"],
        sandbox_type="None",
        session_mode="None",
        created=now,
        last_modified=now,
        publisher_id=publisher_id,
    )


def check_purchasable(plan: Plan, tenant_id: str) -> None:
    if plan.is_stop_sell:
        raise MarketplaceBadRequestError(f"plan {plan.plan_id} is stop-sold")
    if not plan.visible_to(tenant_id):
        raise MarketplaceBadRequestError(
            f"plan {plan.plan_id} is private and tenant {tenant_id} is not in its audience"
        )


def _purchase_quantity(plan: Plan, quantity: Any) -> int | None:
    if not plan.is_price_per_seat:
        if quantity is not None:
            raise MarketplaceBadRequestError(f"plan {plan.plan_id} is flat rate: buy it without a quantity")
        return None
    if quantity is None:
        return plan.min_quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not plan.allows_quantity(quantity):
        raise MarketplaceBadRequestError(
            f"quantity must be a whole number {plan.min_quantity}..{plan.max_quantity}, got {quantity!r}"
        )
    return quantity


# --- activation and terms ----------------------------------------------------------------------------------


def check_activation(record: SubscriptionRecord, body: Any) -> None:
    if record.status != PENDING:
        raise MarketplaceBadRequestError(
            f"subscription {record.id} is {record.status}, not PendingFulfillmentStart"
        )
    if not isinstance(body, dict) or not body.get("planId"):
        raise MarketplaceBadRequestError("the body must be a JSON object with the purchased planId")
    if body["planId"] != record.plan_id:
        raise MarketplaceBadRequestError(
            f"planId {body['planId']!r} is not the purchased plan {record.plan_id!r}"
        )
    quantity = body.get("quantity")
    if quantity is not None and quantity != record.quantity:
        raise MarketplaceBadRequestError(
            f"quantity {quantity!r} is not the purchased quantity {record.quantity!r}"
        )


def start_term(record: SubscriptionRecord, start: date) -> None:
    record.term_start = day_iso(start)
    record.term_end = day_iso(term_end(start, record.term_unit))


def roll_term(record: SubscriptionRecord, today: date) -> None:
    """Renew (R69): the next term starts the day after the current one ends; a trial converts to paid."""
    start = date.fromisoformat(record.term_end[:10]) + timedelta(days=1) if record.term_end else today
    start_term(record, start)
    record.is_free_trial = False


# --- plan and quantity changes -----------------------------------------------------------------------------


def check_plan_change(record: SubscriptionRecord, plan_id: Any, offer: Offer) -> tuple[Plan, int | None]:
    """The target plan and the quantity the subscription keeps on it (None on a flat-rate plan)."""
    if not isinstance(plan_id, str) or not plan_id:
        raise MarketplaceBadRequestError("planId must be a non-empty string")
    if plan_id == record.plan_id:
        raise MarketplaceBadRequestError(f"the subscription is already on plan {plan_id}")
    plan = plan_in(offer, plan_id)
    check_purchasable(plan, record.beneficiary.tenant_id)
    if not plan.is_price_per_seat:
        return plan, None
    quantity = record.quantity if record.quantity is not None else plan.min_quantity
    if not plan.allows_quantity(quantity):
        raise MarketplaceBadRequestError(
            f"quantity {quantity} is outside {plan.min_quantity}..{plan.max_quantity} of plan {plan_id}; "
            "change the quantity first"
        )
    return plan, quantity


def check_quantity_change(record: SubscriptionRecord, quantity: Any, offer: Offer) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise MarketplaceBadRequestError(f"quantity must be a whole number, got {quantity!r}")
    plan = plan_in(offer, record.plan_id)
    if not plan.is_price_per_seat:
        raise MarketplaceBadRequestError(f"plan {plan.plan_id} is flat rate: it has no quantity")
    if quantity == record.quantity:
        raise MarketplaceBadRequestError(f"the subscription already has quantity {quantity}")
    if not plan.allows_quantity(quantity):
        raise MarketplaceBadRequestError(
            f"quantity {quantity} is outside {plan.min_quantity}..{plan.max_quantity} of plan {plan.plan_id}"
        )
    return quantity


def check_operation_echo(operation: OperationRecord, body: dict[str, Any]) -> None:
    """The spec lets the publisher repeat planId/quantity; if it does, they must be the operation's."""
    if "planId" in body and body["planId"] != operation.plan_id:
        raise MarketplaceBadRequestError(
            f"planId {body['planId']!r} is not the operation's {operation.plan_id!r}"
        )
    if "quantity" in body and body["quantity"] not in (None, operation.quantity):
        raise MarketplaceBadRequestError(
            f"quantity {body['quantity']!r} is not the operation's {operation.quantity!r}"
        )


def apply_plan(record: SubscriptionRecord, plan: Plan, quantity: int | None) -> None:
    """An accepted change: the record moves to the plan and quantity the operation named."""
    record.plan_id = plan.plan_id
    record.quantity = quantity
    record.term_unit = plan.term_unit
    # Moving to a plan without a trial ends the trial at once (R70).
    record.is_free_trial = record.is_free_trial and plan.has_free_trials
    record.last_modified = now_iso()
