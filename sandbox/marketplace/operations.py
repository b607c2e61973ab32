"""Operations from start to end: the change window, the publisher's and the webhook's answers, webhooks out.

Plan and quantity changes (customer side "Azure", or publisher PATCH "Partner") start an InProgress
operation and a webhook; PATCH Success applies it, PATCH Failure or a 4xx webhook answer rejects it, silence
until the window closes accepts it (R34, R36); `ignore_rejections` applies refused changes anyway (R52).
Suspend, Reinstate, Unsubscribe and Renew act at once with a Succeeded operation and a notify-only webhook.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.marketplace.errors import MarketplaceBadRequestError
from sandbox.marketplace.ledger import Ledger
from sandbox.marketplace.records import (
    CHANGE_ACTIONS,
    CHANGE_PLAN,
    CHANGE_QUANTITY,
    FAILED,
    IN_PROGRESS,
    SOURCE_CUSTOMER,
    SUBSCRIBED,
    SUCCEEDED,
    UNSUBSCRIBED,
    OperationRecord,
    SubscriptionRecord,
    now_iso,
    on_the_wire,
)
from sandbox.marketplace.rules import apply_plan, check_plan_change, check_quantity_change, roll_term

log = logging.getLogger("sandbox.marketplace")

WebhookSink = Callable[[str, dict[str, Any]], None]

# Answers that say "try later" rather than "no": they never count as a rejection of a change.
_NOT_A_REFUSAL = {408, 429}


class OperationDesk:
    """Starts, decides and finishes operations in the ledger; arms a timer per open change window."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._webhook_sink: WebhookSink = lambda _operation_id, _body: None
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False

    def connect_webhooks(self, sink: WebhookSink) -> None:
        """Where webhook bodies go (the sender); also re-arms auto-accept timers of a restored state."""
        self._webhook_sink = sink
        with self._ledger.lock:
            for operation in self._ledger.state.operations.values():
                if operation.status == IN_PROGRESS and operation.deadline is not None:
                    self._arm_window(operation)

    def close(self) -> None:
        with self._ledger.lock:
            self._closed = True
            self.cancel_windows()

    def cancel_windows(self) -> None:
        with self._ledger.lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    # --- starting ----------------------------------------------------------------------------------------

    def new_operation(
        self, record: SubscriptionRecord, action: str, source: str, plan_id: str, quantity: int | None
    ) -> OperationRecord:
        operation = OperationRecord(
            id=str(uuid.uuid4()),
            activity_id=str(uuid.uuid4()),
            subscription_id=record.id,
            offer_id=record.offer_id,
            publisher_id=record.publisher_id,
            plan_id=plan_id,
            quantity=quantity,
            action=action,
            status=IN_PROGRESS,
            source=source,
            time_stamp=now_iso(),
        )
        self._ledger.state.operations[operation.id] = operation
        return operation

    def start_change(self, record: SubscriptionRecord, body: dict[str, Any], source: str) -> OperationRecord:
        """An InProgress ChangePlan/ChangeQuantity with its window armed; the caller sends the webhook."""
        if record.status != SUBSCRIBED:
            raise MarketplaceBadRequestError(
                f"subscription {record.id} is {record.status}; only Subscribed can change"
            )
        offer = self._ledger.offer(record.offer_id)
        if "planId" in body:
            plan, quantity = check_plan_change(record, body["planId"], offer)
            operation = self.new_operation(record, CHANGE_PLAN, source, plan.plan_id, quantity)
        elif "quantity" in body:
            quantity = check_quantity_change(record, body["quantity"], offer)
            operation = self.new_operation(record, CHANGE_QUANTITY, source, record.plan_id, quantity)
        else:
            raise MarketplaceBadRequestError("the body must name planId or quantity")
        operation.deadline = time.time() + self._ledger.settings.auto_accept_seconds
        self._arm_window(operation)
        self._ledger.changed(operation)
        log.info("operation %s %s started by %s on %s", operation.id, operation.action, source, record.id)
        return operation

    def act_at_once(self, subscription_id: str, action: str, allowed_from: set[str], target: str) -> str:
        """Suspend, Reinstate or Renew: the status moves now, a Succeeded operation and a webhook tell."""
        with self._ledger.lock:
            record = self._ledger.subscription(subscription_id)
            if record.status not in allowed_from:
                raise MarketplaceBadRequestError(
                    f"{action} needs status {sorted(allowed_from)}, the subscription is {record.status}"
                )
            record.status = target
            if action == "Renew":
                roll_term(record, datetime.now(UTC).date())
            record.last_modified = now_iso()
            operation = self.new_operation(record, action, SOURCE_CUSTOMER, record.plan_id, record.quantity)
            self._finish(operation, SUCCEEDED, "acted at once (notify only)", "")
        log.info("subscription %s: %s -> %s", subscription_id, action, target)
        self.send_webhook(operation.id)
        return operation.id

    def unsubscribe(self, record: SubscriptionRecord, source: str) -> OperationRecord:
        """Unsubscribed at once; a pending change is overtaken. Call under the lock, then send the webhook."""
        for pending in self._ledger.operations_of(record.id):
            if not pending.is_finished():
                self._finish(pending, FAILED, "overtaken by Unsubscribe", "the subscription was unsubscribed")
        record.status = UNSUBSCRIBED
        record.last_modified = now_iso()
        operation = self.new_operation(record, "Unsubscribe", source, record.plan_id, record.quantity)
        self._finish(operation, SUCCEEDED, "acted at once (notify only)", "")
        log.info("subscription %s unsubscribed by %s", record.id, source)
        return operation

    # --- deciding ----------------------------------------------------------------------------------------

    def apply(self, operation: OperationRecord, decision: str) -> None:
        record = self._ledger.subscription(operation.subscription_id)
        if operation.action in CHANGE_ACTIONS:
            if record.status != SUBSCRIBED:
                self._finish(operation, FAILED, decision, f"subscription became {record.status}")
                return
            apply_plan(record, self._ledger.plan(record.offer_id, operation.plan_id), operation.quantity)
        self._finish(operation, SUCCEEDED, decision, "")
        log.info("operation %s %s applied: %s", operation.id, operation.action, decision)

    def refuse(self, operation: OperationRecord, decision: str, error_code: str) -> None:
        if self._ledger.settings.ignore_rejections:
            self.apply(operation, f"{decision}, ignored (ignoreRejections)")
            return
        self._finish(operation, FAILED, decision, decision, error_code)
        log.info("operation %s %s refused: %s", operation.id, operation.action, decision)

    def record_webhook_answer(self, operation_id: str, status: int | None) -> bool:
        """Called by the webhook sender; True when the answer decided a pending change (no more retries)."""
        if status is None or not 400 <= status < 500 or status in _NOT_A_REFUSAL:
            return False
        with self._ledger.lock:
            operation = self._ledger.state.operations.get(operation_id)
            if operation is None or operation.action not in CHANGE_ACTIONS:
                return False
            if not operation.is_finished():
                self.refuse(operation, f"rejected by the webhook answer {status}", str(status))
            return True

    def send_webhook(self, operation_id: str) -> None:
        """Hands the webhook body to the sender, outside the lock so a slow publisher never blocks us."""
        with self._ledger.lock:
            operation = self._ledger.state.operations[operation_id]
            record = self._ledger.subscription(operation.subscription_id)
            body = on_the_wire(operation.to_api(record), self._ledger.settings.emulator_wire_format)
            if "quantity" not in body:
                body["quantity"] = None  # webhook bodies carry the field even for flat-rate plans (R33)
        self._webhook_sink(operation_id, body)

    # --- the change window -------------------------------------------------------------------------------

    def _arm_window(self, operation: OperationRecord) -> None:
        if self._closed or operation.deadline is None:
            return
        delay = max(0.0, operation.deadline - time.time())
        timer = threading.Timer(delay, self._window_closed, args=(operation.id,))
        timer.daemon = True
        self._timers[operation.id] = timer
        timer.start()

    def _window_closed(self, operation_id: str) -> None:
        with self._ledger.lock:
            self._timers.pop(operation_id, None)
            operation = self._ledger.state.operations.get(operation_id)
            if operation is None or operation.is_finished() or self._closed:
                return
            self.apply(operation, "auto-accepted: no answer within the window")

    def _finish(
        self, operation: OperationRecord, status: str, decision: str, message: str, error_code: str = ""
    ) -> None:
        operation.status = status
        operation.decision = decision
        operation.error_message = message if status == FAILED else ""
        operation.error_status_code = error_code
        operation.deadline = None
        operation.decided_at = now_iso()
        timer = self._timers.pop(operation.id, None)
        if timer is not None:
            timer.cancel()
        # The subscription too: applying, Suspend, Renew and Unsubscribe change it before finishing.
        self._ledger.changed(operation, self._ledger.state.subscriptions.get(operation.subscription_id))
