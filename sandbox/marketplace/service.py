"""`Marketplace`: Microsoft's side of SaaS subscriptions as one thread-safe object.

The Fulfillment API routes, the control API and the tests call it. It takes the ledger's lock, asks `rules`
whether a request is allowed, records the result, and leaves operations to the `OperationDesk`:
- a purchase starts PendingFulfillmentStart and yields a short-lived purchase token (R1-R4);
- Activate moves it to Subscribed and starts the term (R14, R15);
- changes, lifecycle events and their webhooks follow `sandbox.marketplace.operations`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.catalog import Offer, Plan
from sandbox.marketplace import rules
from sandbox.marketplace.errors import (
    MarketplaceBadRequestError,
    MarketplaceConflictError,
    MarketplaceNotFoundError,
)
from sandbox.marketplace.ledger import Ledger
from sandbox.marketplace.operations import OperationDesk, WebhookSink
from sandbox.marketplace.purchases import Purchase, PurchaseDesk
from sandbox.marketplace.records import (
    SOURCE_CUSTOMER,
    SOURCE_PUBLISHER,
    SUBSCRIBED,
    SUSPENDED,
    UNSUBSCRIBED,
    OperationRecord,
    SubscriptionRecord,
    WireParty,
    now_iso,
    on_the_wire,
)
from sandbox.marketplace.seeding import SeedRequest, seed
from sandbox.marketplace.settings import SandboxSettings
from sandbox.marketplace.state_file import MarketplaceState

log = logging.getLogger("sandbox.marketplace")


class Marketplace:
    """All subscriptions, operations and purchase tokens; every public method is thread-safe."""

    def __init__(
        self,
        *,
        offers: Mapping[str, Offer],
        settings: SandboxSettings | None = None,
        state_dir: Path | None = None,
    ) -> None:
        state = MarketplaceState(settings=settings or SandboxSettings(), offers=dict(offers))
        self._ledger = Ledger(state, state_dir)
        self._lock = self._ledger.lock
        self._desk = OperationDesk(self._ledger)
        self._purchases = PurchaseDesk(self._ledger)

    # --- wiring -----------------------------------------------------------------------------------------

    def connect_webhooks(self, sink: WebhookSink) -> None:
        """Where webhook bodies go (the sender); also re-arms auto-accept timers of a restored state."""
        self._desk.connect_webhooks(sink)

    def close(self) -> None:
        self._desk.close()
        with self._lock:
            self._ledger.close()

    # --- settings and catalog ---------------------------------------------------------------------------

    @property
    def settings(self) -> SandboxSettings:
        with self._lock:
            return self._ledger.settings

    def update_settings(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Applies camelCase changes (control API form); raises MarketplaceBadRequestError on a bad value."""
        with self._lock:
            self._ledger.state.settings = self._ledger.settings.with_json(changes)
            self._ledger.save()
            return self._ledger.settings

    def replace_settings(self, settings: SandboxSettings) -> None:
        with self._lock:
            self._ledger.state.settings = settings
            self._ledger.save()

    def offers(self) -> list[Offer]:
        with self._lock:
            return list(self._ledger.state.offers.values())

    def offer(self, offer_id: str) -> Offer:
        with self._lock:
            return self._ledger.offer(offer_id)

    def put_offer(self, offer: Offer) -> None:
        with self._lock:
            self._ledger.state.offers[offer.offer_id] = offer
            self._ledger.save()
        log.info("offer %s defined with plans %s", offer.offer_id, [p.plan_id for p in offer.plans])

    def put_plan(self, offer_id: str, plan: Plan) -> None:
        with self._lock:
            self._ledger.state.offers[offer_id] = self._ledger.offer(offer_id).with_plan(plan)
            self._ledger.save()
        log.info("plan %s/%s defined", offer_id, plan.plan_id)

    def set_stop_sell(self, offer_id: str, plan_id: str, stop_sell: bool) -> Plan:
        with self._lock:
            changed = replace(self._ledger.plan(offer_id, plan_id), is_stop_sell=stop_sell)
            self.put_plan(offer_id, changed)
            return changed

    def reset(self, offers: Mapping[str, Offer], settings: SandboxSettings) -> None:
        """Forgets every subscription, operation and token; the catalog and settings start over."""
        with self._lock:
            self._desk.cancel_windows()
            self._ledger.state = MarketplaceState(settings=settings, offers=dict(offers))
            self._ledger.save()
        log.info("marketplace reset")

    # --- purchases and the landing page token -----------------------------------------------------------

    def purchase(
        self,
        *,
        offer_id: str,
        plan_id: str,
        quantity: int | None,
        purchaser: WireParty,
        beneficiary: WireParty,
        csp: bool = False,
        name: str | None = None,
        is_test: bool = False,
        auto_renew: bool = True,
    ) -> Purchase:
        """A customer (or a CSP for a customer) buys a plan: PendingFulfillmentStart plus a purchase token."""
        return self._purchases.purchase(
            offer_id=offer_id,
            plan_id=plan_id,
            purchaser=purchaser,
            beneficiary=beneficiary,
            csp=csp,
            quantity=quantity,
            name=name,
            is_test=is_test,
            auto_renew=auto_renew,
        )

    def issue_token(self, subscription_id: str) -> str:
        """A fresh purchase token for an existing subscription ("Configure account" opened again, R7)."""
        return self._purchases.issue_token(subscription_id)

    def landing_url(self, token: str) -> str:
        """Where Microsoft sends the buyer: the landing page with the token URL-encoded once (R1, R2)."""
        return self._purchases.landing_url(token)

    def resolve(self, token: str | None) -> dict[str, Any]:
        """ResolvedSubscription for a purchase token; 400 when missing, unknown or expired (R4, R5)."""
        return self._purchases.resolve(token)

    def seed(self, request: SeedRequest) -> list[str]:
        """Many subscriptions at once (benchmarks): no token, no webhook (`sandbox.marketplace.seeding`)."""
        ids = seed(self._ledger, request, datetime.now(UTC).date())
        log.info("%d subscriptions of %s/%s seeded", len(ids), request.offer_id, request.plan_id)
        return ids

    # --- reading -----------------------------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        with self._lock:
            return self._ledger.subscription(subscription_id).to_api()

    def subscription_record(self, subscription_id: str) -> SubscriptionRecord:
        """A copy of the stored record (for test assertions)."""
        with self._lock:
            return replace(self._ledger.subscription(subscription_id))

    def subscription_page(self, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        """One page of all subscriptions (every status, R21) and the offset of the next page, if any."""
        with self._lock:
            records = list(self._ledger.state.subscriptions.values())
            size = self._ledger.settings.page_size
            page = [record.to_api() for record in records[offset : offset + size]]
            next_offset = offset + size if offset + size < len(records) else None
            return page, next_offset

    def subscription_ids(self) -> list[str]:
        with self._lock:
            return list(self._ledger.state.subscriptions)

    def available_plans(self, subscription_id: str, plan_id: str | None = None) -> list[dict[str, Any]]:
        """Plans the beneficiary may switch to: not stop-sold, private only for its tenant (R23)."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            tenant = record.beneficiary.tenant_id
            plans = [
                plan
                for plan in self._ledger.offer(record.offer_id).plans
                if not plan.is_stop_sell and plan.visible_to(tenant)
            ]
            return [plan.to_api() for plan in plans if plan_id is None or plan.plan_id == plan_id]

    def operation(self, subscription_id: str, operation_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            body = self._ledger.operation(subscription_id, operation_id).to_api(record)
            return on_the_wire(body, self._ledger.settings.emulator_wire_format)

    def operation_record(self, operation_id: str) -> OperationRecord:
        """A copy of the stored operation (for test assertions and the control API)."""
        with self._lock:
            operation = self._ledger.state.operations.get(operation_id)
            if operation is None:
                raise MarketplaceNotFoundError(f"operation {operation_id} does not exist")
            return replace(operation)

    def pending_operations(self, subscription_id: str) -> list[dict[str, Any]]:
        """ListOperations: the InProgress operations waiting for the publisher (R28)."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            pending = [op for op in self._ledger.operations_of(subscription_id) if not op.is_finished()]
            emulator = self._ledger.settings.emulator_wire_format
            return [on_the_wire(op.to_api(record), emulator) for op in pending]

    def all_operations(self, subscription_id: str) -> list[dict[str, Any]]:
        """Every operation of a subscription with how it was decided (control API view), oldest first."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            operations = self._ledger.operations_of(subscription_id)
            return [
                {**op.to_api(record), "decision": op.decision, "decidedAt": op.decided_at}
                for op in operations
            ]

    # --- publisher calls ------------------------------------------------------------------------------------

    def activate(self, subscription_id: str, body: Any) -> None:
        """Activate: only from PendingFulfillmentStart with the purchased plan and quantity (R14)."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            if record.status == UNSUBSCRIBED:
                raise MarketplaceNotFoundError(f"subscription {subscription_id} is Unsubscribed")
            rules.check_activation(record, body)
            record.status = SUBSCRIBED
            rules.start_term(record, datetime.now(UTC).date())
            record.last_modified = now_iso()
            self._ledger.changed(record)
        log.info("subscription %s activated", subscription_id)

    def publisher_update(self, subscription_id: str, body: Any) -> str:
        """PATCH subscription: plan or quantity, never both (R24); returns the new operation id."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            if not isinstance(body, dict):
                raise MarketplaceBadRequestError("the body must be a JSON object with planId or quantity")
            if "planId" in body and "quantity" in body:
                raise MarketplaceBadRequestError("change either planId or quantity, not both in one request")
            if "Update" not in record.allowed_customer_operations:
                raise MarketplaceBadRequestError(
                    "Update is not in allowedCustomerOperations of this subscription"
                )
            operation = self._desk.start_change(record, body, SOURCE_PUBLISHER)
        self._desk.send_webhook(operation.id)
        return operation.id

    def publisher_delete(self, subscription_id: str) -> str:
        """DELETE subscription: Unsubscribed at once, Unsubscribe webhook (R26)."""
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            if "Delete" not in record.allowed_customer_operations:
                raise MarketplaceBadRequestError(
                    "Delete is not in allowedCustomerOperations of this subscription"
                )
            if record.status == UNSUBSCRIBED:
                raise MarketplaceBadRequestError(f"subscription {subscription_id} is already Unsubscribed")
            operation = self._desk.unsubscribe(record, SOURCE_PUBLISHER)
        self._desk.send_webhook(operation.id)
        return operation.id

    def update_operation(self, subscription_id: str, operation_id: str, body: Any) -> None:
        """PATCH operation: Success applies a pending change, Failure refuses it; 409 once finished (R29)."""
        status = body.get("status") if isinstance(body, dict) else None
        if status not in {"Success", "Failure"}:
            raise MarketplaceBadRequestError(
                'the body must be {"status": "Success"} or {"status": "Failure"}'
            )
        with self._lock:
            self._ledger.subscription(subscription_id)
            operation = self._ledger.operation(subscription_id, operation_id)
            if operation.is_finished():
                raise MarketplaceConflictError(f"operation {operation_id} is already {operation.status}")
            rules.check_operation_echo(operation, body)
            if status == "Success":
                self._desk.apply(operation, "accepted by the publisher (PATCH Success)")
            else:
                self._desk.refuse(operation, "rejected by the publisher (PATCH Failure)", "")

    # --- customer side (control API) ------------------------------------------------------------------------

    def customer_change_plan(self, subscription_id: str, plan_id: Any) -> str:
        return self._customer_change(subscription_id, {"planId": plan_id})

    def customer_change_quantity(self, subscription_id: str, quantity: Any) -> str:
        return self._customer_change(subscription_id, {"quantity": quantity})

    def _customer_change(self, subscription_id: str, body: dict[str, Any]) -> str:
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            operation = self._desk.start_change(record, body, SOURCE_CUSTOMER)
        self._desk.send_webhook(operation.id)
        return operation.id

    def suspend(self, subscription_id: str) -> str:
        return self._desk.act_at_once(subscription_id, "Suspend", {SUBSCRIBED}, SUSPENDED)

    def reinstate(self, subscription_id: str) -> str:
        return self._desk.act_at_once(subscription_id, "Reinstate", {SUSPENDED}, SUBSCRIBED)

    def renew(self, subscription_id: str) -> str:
        return self._desk.act_at_once(subscription_id, "Renew", {SUBSCRIBED}, SUBSCRIBED)

    def unsubscribe(self, subscription_id: str) -> str:
        with self._lock:
            record = self._ledger.subscription(subscription_id)
            if record.status == UNSUBSCRIBED:
                raise MarketplaceBadRequestError(
                    f"subscription {subscription_id} is already Unsubscribed (terminal)"
                )
            operation = self._desk.unsubscribe(record, SOURCE_CUSTOMER)
        self._desk.send_webhook(operation.id)
        return operation.id

    def record_webhook_answer(self, operation_id: str, status: int | None) -> bool:
        """Called by the webhook sender; True when the answer decided a pending change (no more retries)."""
        return self._desk.record_webhook_answer(operation_id, status)
