"""Microsoft's side of SaaS subscriptions: purchases, the R31 state machine and operations.

`Marketplace` is thread-safe (one re-entrant lock) and writes its whole state as one JSON file under the state
directory after every change, so `make dev` restarts keep subscriptions, operations and purchase tokens.

Behaviour follows the requirements in `docs/requirements.md`:
- a purchase starts PendingFulfillmentStart and yields a short-lived purchase token (R1-R4);
- Activate moves it to Subscribed and starts the term (R14, R15);
- plan/quantity changes (customer side "Azure", or publisher PATCH "Partner") start an InProgress operation
  and a webhook; PATCH Success applies it, PATCH Failure or a 4xx webhook answer rejects it, silence until the
  window closes accepts it (R34, R36); `ignore_rejections` applies refused changes anyway (R52);
- Suspend, Reinstate, Unsubscribe and Renew act at once with a Succeeded operation and a notify-only webhook.
"""

from __future__ import annotations

import base64
import calendar
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sandbox.catalog import Offer, Plan, offer_from_json

log = logging.getLogger("sandbox.marketplace")

STATE_FILE = "marketplace.json"
STATE_VERSION = 1

PENDING = "PendingFulfillmentStart"
SUBSCRIBED = "Subscribed"
SUSPENDED = "Suspended"
UNSUBSCRIBED = "Unsubscribed"

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

CHANGE_PLAN = "ChangePlan"
CHANGE_QUANTITY = "ChangeQuantity"
CHANGE_ACTIONS = (CHANGE_PLAN, CHANGE_QUANTITY)

SOURCE_CUSTOMER = "Azure"
SOURCE_PUBLISHER = "Partner"

# Answers that say "try later" rather than "no": they never count as a rejection of a change.
_NOT_A_REFUSAL = {408, 429}


class MarketplaceError(Exception):
    """A request Microsoft would refuse; `status` is the HTTP status the Fulfillment API answers with."""

    status = 500
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(MarketplaceError):
    status = 400
    code = "BadRequest"


class NotFoundError(MarketplaceError):
    status = 404
    code = "NotFound"


class ConflictError(MarketplaceError):
    status = 409
    code = "Conflict"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _day_iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end(start: date, term_unit: str) -> date:
    """The last valid day of a term starting on `start` (R68: renewal happens the day after)."""
    months = 1 if term_unit == "P1M" else 12 * int(term_unit[1])
    return _add_months(start, months) - timedelta(days=1)


def _check_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in {"http", "https"} or "#" in value:
        raise BadRequestError(f"{name} must be an absolute http(s) URL without '#' (R3), got {value!r}")
    return value


def _check_number(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise BadRequestError(f"{name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _check_whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequestError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequestError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class SandboxSettings:
    """Knobs of the simulated Microsoft. Times are settings so tests can use fractions of a second."""

    webhook_url: str = "http://127.0.0.1:7071/api/webhook"
    landing_url: str = "http://127.0.0.1:7071/api/landing"
    auto_accept_seconds: float = 10.0
    ignore_rejections: bool = False
    webhook_max_attempts: int = 8
    webhook_base_delay_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    page_size: int = 100
    token_lifetime_seconds: float = 3600.0
    publisher_id: str = "contoso"
    # Answer as Microsoft's SaaS API emulator does (docs/wire-variants.md): ListOperations as a bare JSON
    # array and the operation's source spelled `operationRequestedSource`, so tests prove the app reads them.
    emulator_wire_format: bool = False

    _JSON_NAMES = {
        "webhookUrl": "webhook_url",
        "landingUrl": "landing_url",
        "autoAcceptSeconds": "auto_accept_seconds",
        "ignoreRejections": "ignore_rejections",
        "webhookMaxAttempts": "webhook_max_attempts",
        "webhookBaseDelaySeconds": "webhook_base_delay_seconds",
        "webhookTimeoutSeconds": "webhook_timeout_seconds",
        "pageSize": "page_size",
        "tokenLifetimeSeconds": "token_lifetime_seconds",
        "publisherId": "publisher_id",
        "emulatorWireFormat": "emulator_wire_format",
    }

    def to_json(self) -> dict[str, Any]:
        return {json_name: getattr(self, attr) for json_name, attr in self._JSON_NAMES.items()}

    def with_json(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A copy with camelCase `changes` applied; unknown keys and bad values raise BadRequestError."""
        unknown = sorted(set(changes) - set(self._JSON_NAMES))
        if unknown:
            raise BadRequestError(f"unknown setting(s) {unknown}; known: {sorted(self._JSON_NAMES)}")
        return self.with_changes({self._JSON_NAMES[name]: value for name, value in changes.items()})

    def with_changes(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A copy with snake_case `changes` applied, each value checked."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise BadRequestError(f"unknown setting(s) {unknown}")
        checked = {name: _check_setting(name, value) for name, value in changes.items()}
        return replace(self, **checked)


def _check_setting(name: str, value: Any) -> Any:
    if name in {"webhook_url", "landing_url"}:
        return _check_url(name, value)
    if name in {"ignore_rejections", "emulator_wire_format"}:
        return _check_flag(name, value)
    if name in {"webhook_max_attempts", "page_size"}:
        return _check_whole(name, value, 1)
    if name == "publisher_id":
        if not isinstance(value, str) or not value.strip():
            raise BadRequestError("publisher_id must be a non-empty string")
        return value
    return _check_number(name, value, 0.0)


@dataclass(frozen=True)
class Party:
    """`purchaser` or `beneficiary` (S1 `AadIdentifier`)."""

    email_id: str
    object_id: str
    tenant_id: str
    puid: str

    def to_api(self) -> dict[str, str]:
        return {
            "emailId": self.email_id,
            "objectId": self.object_id,
            "tenantId": self.tenant_id,
            "puid": self.puid,
        }


@dataclass
class SubscriptionRecord:
    """One SaaS subscription as Microsoft keeps it."""

    id: str
    name: str
    offer_id: str
    plan_id: str
    quantity: int | None
    status: str
    purchaser: Party
    beneficiary: Party
    term_unit: str
    term_start: str | None
    term_end: str | None
    auto_renew: bool
    is_test: bool
    is_free_trial: bool
    allowed_customer_operations: list[str]
    sandbox_type: str
    session_mode: str
    created: str
    last_modified: str
    publisher_id: str

    def to_api(self) -> dict[str, Any]:
        """The S1 `Subscription`; quantity and term dates are left out while unknown, as Microsoft does."""
        term: dict[str, Any] = {"termUnit": self.term_unit}
        if self.term_start and self.term_end:
            term.update(startDate=self.term_start, endDate=self.term_end)
        body: dict[str, Any] = {
            "id": self.id,
            "publisherId": self.publisher_id,
            "offerId": self.offer_id,
            "name": self.name,
            "saasSubscriptionStatus": self.status,
            "beneficiary": self.beneficiary.to_api(),
            "purchaser": self.purchaser.to_api(),
            "planId": self.plan_id,
            "term": term,
            "autoRenew": self.auto_renew,
            "isTest": self.is_test,
            "isFreeTrial": self.is_free_trial,
            "allowedCustomerOperations": list(self.allowed_customer_operations),
            "sandboxType": self.sandbox_type,
            "created": self.created,
            "lastModified": self.last_modified,
            "sessionMode": self.session_mode,
        }
        if self.quantity is not None:
            body["quantity"] = self.quantity
        return body

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SubscriptionRecord:
        values = dict(raw)
        values["purchaser"] = Party(**values["purchaser"])
        values["beneficiary"] = Party(**values["beneficiary"])
        return cls(**values)


@dataclass
class OperationRecord:
    """One operation (S1 `SaaSOperation`) plus how it was decided, which only the control API shows."""

    id: str
    activity_id: str
    subscription_id: str
    offer_id: str
    publisher_id: str
    plan_id: str
    quantity: int | None
    action: str
    status: str
    source: str
    time_stamp: str
    deadline: float | None = None  # epoch seconds when an unanswered change is accepted (R36)
    decision: str = ""
    error_status_code: str = ""
    error_message: str = ""

    def to_api(self, subscription: SubscriptionRecord) -> dict[str, Any]:
        """The operation as GetOperationStatus/ListOperations return it (R27) and webhooks carry it (R33)."""
        body: dict[str, Any] = {
            "id": self.id,
            "activityId": self.activity_id,
            "subscriptionId": self.subscription_id,
            "publisherId": self.publisher_id,
            "offerId": self.offer_id,
            "planId": self.plan_id,
            "action": self.action,
            "timeStamp": self.time_stamp,
            "status": self.status,
            "operationRequestSource": self.source,
            "errorStatusCode": self.error_status_code,
            "errorMessage": self.error_message,
            "subscription": subscription.to_api(),
            "purchaseToken": None,
        }
        if self.quantity is not None:
            body["quantity"] = self.quantity
        return body

    def is_finished(self) -> bool:
        return self.status != IN_PROGRESS


@dataclass(frozen=True)
class Purchase:
    subscription_id: str
    token: str


@dataclass
class _State:
    settings: SandboxSettings
    offers: dict[str, Offer]
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> subscriptionId, expiresAt


def new_purchase_token() -> str:
    """A token like Microsoft's: base64 with '+', '/' and '=' so single-decoding mistakes show (R2)."""
    while True:
        token = base64.b64encode(secrets.token_bytes(47)).decode("ascii")
        if "+" in token and "/" in token:
            return token


WebhookSink = Callable[[str, dict[str, Any]], None]


class Marketplace:
    """All subscriptions, operations and purchase tokens; every public method is thread-safe."""

    def __init__(
        self,
        *,
        offers: Mapping[str, Offer],
        settings: SandboxSettings | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._state_file = state_dir / STATE_FILE if state_dir else None
        self._state = _State(settings=settings or SandboxSettings(), offers=dict(offers))
        self._webhook_sink: WebhookSink = lambda _operation_id, _body: None
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False
        if self._state_file and self._state_file.exists():
            self._state = _load_state(self._state_file)
            log.info("marketplace state loaded from %s", self._state_file)

    # --- wiring -----------------------------------------------------------------------------------------

    def connect_webhooks(self, sink: WebhookSink) -> None:
        """Where webhook bodies go (the sender); also re-arms auto-accept timers of a restored state."""
        self._webhook_sink = sink
        with self._lock:
            for operation in self._state.operations.values():
                if operation.status == IN_PROGRESS and operation.deadline is not None:
                    self._arm_window(operation)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    # --- settings and catalog ---------------------------------------------------------------------------

    @property
    def settings(self) -> SandboxSettings:
        with self._lock:
            return self._state.settings

    def update_settings(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """Applies camelCase changes (control API form); raises BadRequestError on a bad value."""
        with self._lock:
            self._state.settings = self._state.settings.with_json(changes)
            self._save()
            return self._state.settings

    def replace_settings(self, settings: SandboxSettings) -> None:
        with self._lock:
            self._state.settings = settings
            self._save()

    def offers(self) -> list[Offer]:
        with self._lock:
            return list(self._state.offers.values())

    def offer(self, offer_id: str) -> Offer:
        with self._lock:
            offer = self._state.offers.get(offer_id)
            if offer is None:
                raise NotFoundError(f"offer {offer_id!r} does not exist")
            return offer

    def put_offer(self, offer: Offer) -> None:
        with self._lock:
            self._state.offers[offer.offer_id] = offer
            self._save()
        log.info("offer %s defined with plans %s", offer.offer_id, [p.plan_id for p in offer.plans])

    def put_plan(self, offer_id: str, plan: Plan) -> None:
        with self._lock:
            self._state.offers[offer_id] = self.offer(offer_id).with_plan(plan)
            self._save()
        log.info("plan %s/%s defined", offer_id, plan.plan_id)

    def set_stop_sell(self, offer_id: str, plan_id: str, stop_sell: bool) -> Plan:
        with self._lock:
            plan = self._plan(offer_id, plan_id)
            changed = replace(plan, is_stop_sell=stop_sell)
            self.put_plan(offer_id, changed)
            return changed

    def reset(self, offers: Mapping[str, Offer], settings: SandboxSettings) -> None:
        """Forgets every subscription, operation and token; the catalog and settings start over."""
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._state = _State(settings=settings, offers=dict(offers))
            self._save()
        log.info("marketplace reset")

    # --- purchases and the landing page token -----------------------------------------------------------

    def purchase(
        self,
        *,
        offer_id: str,
        plan_id: str,
        quantity: int | None,
        purchaser: Party,
        beneficiary: Party,
        csp: bool = False,
        name: str | None = None,
        is_test: bool = False,
        auto_renew: bool = True,
    ) -> Purchase:
        """A customer (or a CSP for a customer) buys a plan: PendingFulfillmentStart plus a purchase token."""
        with self._lock:
            plan = self._plan(offer_id, plan_id)
            self._check_purchasable(plan, beneficiary.tenant_id)
            now = _now_iso()
            record = SubscriptionRecord(
                id=str(uuid.uuid4()),
                name=name or f"{self.offer(offer_id).display_name} - {plan.display_name}",
                offer_id=offer_id,
                plan_id=plan_id,
                quantity=self._purchase_quantity(plan, quantity),
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
                publisher_id=self._state.settings.publisher_id,
            )
            self._state.subscriptions[record.id] = record
            token = self._issue_token_locked(record.id)
        log.info("purchase of %s/%s -> subscription %s (csp=%s)", offer_id, plan_id, record.id, csp)
        return Purchase(subscription_id=record.id, token=token)

    def issue_token(self, subscription_id: str) -> str:
        """A fresh purchase token for an existing subscription ("Configure account" opened again, R7)."""
        with self._lock:
            self._subscription(subscription_id)
            return self._issue_token_locked(subscription_id)

    def landing_url(self, token: str) -> str:
        """Where Microsoft sends the buyer: the landing page with the token URL-encoded once (R1, R2)."""
        return f"{self.settings.landing_url}?token={quote(token, safe='')}"

    def resolve(self, token: str | None) -> dict[str, Any]:
        """ResolvedSubscription for a purchase token; 400 when missing, unknown or expired (R4, R5)."""
        with self._lock:
            entry = self._state.tokens.get(token or "")
            if entry is None or entry["expiresAt"] < time.time():
                log.warning("resolve refused: marketplace token missing, unknown or expired")
                raise BadRequestError("x-ms-marketplace-token is missing, malformed, invalid or expired")
            record = self._subscription(entry["subscriptionId"])
            body: dict[str, Any] = {
                "id": record.id,
                "subscriptionName": record.name,
                "offerId": record.offer_id,
                "planId": record.plan_id,
                "subscription": record.to_api(),
            }
            if record.quantity is not None:
                body["quantity"] = record.quantity
            return body

    # --- reading -----------------------------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        with self._lock:
            return self._subscription(subscription_id).to_api()

    def subscription_record(self, subscription_id: str) -> SubscriptionRecord:
        """A copy of the stored record (for test assertions)."""
        with self._lock:
            return replace(self._subscription(subscription_id))

    def subscription_page(self, offset: int) -> tuple[list[dict[str, Any]], int | None]:
        """One page of all subscriptions (every status, R21) and the offset of the next page, if any."""
        with self._lock:
            records = list(self._state.subscriptions.values())
            size = self._state.settings.page_size
            page = [record.to_api() for record in records[offset : offset + size]]
            next_offset = offset + size if offset + size < len(records) else None
            return page, next_offset

    def available_plans(self, subscription_id: str, plan_id: str | None = None) -> list[dict[str, Any]]:
        """Plans the beneficiary may switch to: not stop-sold, private only for its tenant (R23)."""
        with self._lock:
            record = self._subscription(subscription_id)
            tenant = record.beneficiary.tenant_id
            plans = [
                plan
                for plan in self.offer(record.offer_id).plans
                if not plan.is_stop_sell and plan.visible_to(tenant)
            ]
            return [plan.to_api() for plan in plans if plan_id is None or plan.plan_id == plan_id]

    def operation(self, subscription_id: str, operation_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._subscription(subscription_id)
            return self._on_the_wire(self._operation(subscription_id, operation_id).to_api(record))

    def operation_record(self, operation_id: str) -> OperationRecord:
        """A copy of the stored operation (for test assertions and the control API)."""
        with self._lock:
            operation = self._state.operations.get(operation_id)
            if operation is None:
                raise NotFoundError(f"operation {operation_id} does not exist")
            return replace(operation)

    def pending_operations(self, subscription_id: str) -> list[dict[str, Any]]:
        """ListOperations: the InProgress operations waiting for the publisher (R28)."""
        with self._lock:
            record = self._subscription(subscription_id)
            pending = [op for op in self._operations_of(subscription_id) if not op.is_finished()]
            return [self._on_the_wire(op.to_api(record)) for op in pending]

    def _on_the_wire(self, body: dict[str, Any]) -> dict[str, Any]:
        """An operation as the API and webhooks send it: the docs' spelling, or the emulator's when asked."""
        if self.settings.emulator_wire_format and "operationRequestSource" in body:
            body["operationRequestedSource"] = body.pop("operationRequestSource")
        return body

    def all_operations(self, subscription_id: str) -> list[dict[str, Any]]:
        """Every operation of a subscription with how it was decided (control API view), oldest first."""
        with self._lock:
            record = self._subscription(subscription_id)
            return [
                {**op.to_api(record), "decision": op.decision} for op in self._operations_of(subscription_id)
            ]

    def subscription_ids(self) -> list[str]:
        with self._lock:
            return list(self._state.subscriptions)

    # --- publisher calls ------------------------------------------------------------------------------------

    def activate(self, subscription_id: str, body: Any) -> None:
        """Activate: only from PendingFulfillmentStart with the purchased plan and quantity (R14)."""
        with self._lock:
            record = self._subscription(subscription_id)
            if record.status == UNSUBSCRIBED:
                raise NotFoundError(f"subscription {subscription_id} is Unsubscribed")
            self._check_activation(record, body)
            start = datetime.now(UTC).date()
            record.status = SUBSCRIBED
            record.term_start = _day_iso(start)
            record.term_end = _day_iso(term_end(start, record.term_unit))
            record.last_modified = _now_iso()
            self._save()
        log.info("subscription %s activated", subscription_id)

    def publisher_update(self, subscription_id: str, body: Any) -> str:
        """PATCH subscription: plan or quantity, never both (R24); returns the new operation id."""
        with self._lock:
            record = self._subscription(subscription_id)
            if not isinstance(body, dict):
                raise BadRequestError("the body must be a JSON object with planId or quantity")
            if "planId" in body and "quantity" in body:
                raise BadRequestError("change either planId or quantity, not both in one request")
            if "Update" not in record.allowed_customer_operations:
                raise BadRequestError("Update is not in allowedCustomerOperations of this subscription")
            operation = self._start_change(record, body, SOURCE_PUBLISHER)
        self._send_webhook(operation.id)
        return operation.id

    def publisher_delete(self, subscription_id: str) -> str:
        """DELETE subscription: Unsubscribed at once, Unsubscribe webhook (R26)."""
        with self._lock:
            record = self._subscription(subscription_id)
            if "Delete" not in record.allowed_customer_operations:
                raise BadRequestError("Delete is not in allowedCustomerOperations of this subscription")
            if record.status == UNSUBSCRIBED:
                raise BadRequestError(f"subscription {subscription_id} is already Unsubscribed")
            operation = self._unsubscribe_locked(record, SOURCE_PUBLISHER)
        self._send_webhook(operation.id)
        return operation.id

    def update_operation(self, subscription_id: str, operation_id: str, body: Any) -> None:
        """PATCH operation: Success applies a pending change, Failure refuses it; 409 once finished (R29)."""
        status = body.get("status") if isinstance(body, dict) else None
        if status not in {"Success", "Failure"}:
            raise BadRequestError('the body must be {"status": "Success"} or {"status": "Failure"}')
        with self._lock:
            self._subscription(subscription_id)
            operation = self._operation(subscription_id, operation_id)
            if operation.is_finished():
                raise ConflictError(f"operation {operation_id} is already {operation.status}")
            self._check_operation_echo(operation, body)
            if status == "Success":
                self._apply_change(operation, "accepted by the publisher (PATCH Success)")
            else:
                self._refuse_change(operation, "rejected by the publisher (PATCH Failure)", "")

    # --- customer side (control API) ------------------------------------------------------------------------

    def customer_change_plan(self, subscription_id: str, plan_id: Any) -> str:
        return self._customer_change(subscription_id, {"planId": plan_id})

    def customer_change_quantity(self, subscription_id: str, quantity: Any) -> str:
        return self._customer_change(subscription_id, {"quantity": quantity})

    def suspend(self, subscription_id: str) -> str:
        return self._immediate(subscription_id, "Suspend", {SUBSCRIBED}, SUSPENDED)

    def reinstate(self, subscription_id: str) -> str:
        return self._immediate(subscription_id, "Reinstate", {SUSPENDED}, SUBSCRIBED)

    def renew(self, subscription_id: str) -> str:
        return self._immediate(subscription_id, "Renew", {SUBSCRIBED}, SUBSCRIBED)

    def unsubscribe(self, subscription_id: str) -> str:
        with self._lock:
            record = self._subscription(subscription_id)
            if record.status == UNSUBSCRIBED:
                raise BadRequestError(f"subscription {subscription_id} is already Unsubscribed (terminal)")
            operation = self._unsubscribe_locked(record, SOURCE_CUSTOMER)
        self._send_webhook(operation.id)
        return operation.id

    def record_webhook_answer(self, operation_id: str, status: int | None) -> bool:
        """Called by the webhook sender; True when the answer decided a pending change (no more retries)."""
        if status is None or not 400 <= status < 500 or status in _NOT_A_REFUSAL:
            return False
        with self._lock:
            operation = self._state.operations.get(operation_id)
            if operation is None or operation.action not in CHANGE_ACTIONS:
                return False
            if not operation.is_finished():
                self._refuse_change(operation, f"rejected by the webhook answer {status}", str(status))
            return True

    # --- internals: lookups ---------------------------------------------------------------------------------

    def _subscription(self, subscription_id: str) -> SubscriptionRecord:
        record = self._state.subscriptions.get(subscription_id)
        if record is None:
            raise NotFoundError(f"subscription {subscription_id} does not exist")
        return record

    def _operation(self, subscription_id: str, operation_id: str) -> OperationRecord:
        operation = self._state.operations.get(operation_id)
        if operation is None or operation.subscription_id != subscription_id:
            raise NotFoundError(f"operation {operation_id} does not exist for subscription {subscription_id}")
        return operation

    def _operations_of(self, subscription_id: str) -> list[OperationRecord]:
        return [op for op in self._state.operations.values() if op.subscription_id == subscription_id]

    def _plan(self, offer_id: str, plan_id: Any) -> Plan:
        plan = self.offer(offer_id).plan(plan_id) if isinstance(plan_id, str) else None
        if plan is None:
            raise BadRequestError(f"plan {plan_id!r} does not exist in offer {offer_id!r}")
        return plan

    def _issue_token_locked(self, subscription_id: str) -> str:
        token = new_purchase_token()
        lifetime = self._state.settings.token_lifetime_seconds
        self._state.tokens[token] = {"subscriptionId": subscription_id, "expiresAt": time.time() + lifetime}
        self._forget_expired_tokens()
        self._save()
        return token

    def _forget_expired_tokens(self) -> None:
        now = time.time()
        expired = [token for token, entry in self._state.tokens.items() if entry["expiresAt"] < now]
        for token in expired:
            del self._state.tokens[token]

    # --- internals: rules -----------------------------------------------------------------------------------

    @staticmethod
    def _check_purchasable(plan: Plan, tenant_id: str) -> None:
        if plan.is_stop_sell:
            raise BadRequestError(f"plan {plan.plan_id} is stop-sold")
        if not plan.visible_to(tenant_id):
            raise BadRequestError(
                f"plan {plan.plan_id} is private and tenant {tenant_id} is not in its audience"
            )

    @staticmethod
    def _purchase_quantity(plan: Plan, quantity: Any) -> int | None:
        if not plan.is_price_per_seat:
            if quantity is not None:
                raise BadRequestError(f"plan {plan.plan_id} is flat rate: buy it without a quantity")
            return None
        if quantity is None:
            return plan.min_quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not plan.allows_quantity(quantity):
            raise BadRequestError(
                f"quantity must be a whole number {plan.min_quantity}..{plan.max_quantity}, got {quantity!r}"
            )
        return quantity

    @staticmethod
    def _check_activation(record: SubscriptionRecord, body: Any) -> None:
        if record.status != PENDING:
            raise BadRequestError(f"subscription {record.id} is {record.status}, not PendingFulfillmentStart")
        if not isinstance(body, dict) or not body.get("planId"):
            raise BadRequestError("the body must be a JSON object with the purchased planId")
        if body["planId"] != record.plan_id:
            raise BadRequestError(f"planId {body['planId']!r} is not the purchased plan {record.plan_id!r}")
        quantity = body.get("quantity")
        if quantity is not None and quantity != record.quantity:
            raise BadRequestError(f"quantity {quantity!r} is not the purchased quantity {record.quantity!r}")

    def _check_plan_change(self, record: SubscriptionRecord, plan_id: Any) -> tuple[Plan, int | None]:
        if not isinstance(plan_id, str) or not plan_id:
            raise BadRequestError("planId must be a non-empty string")
        if plan_id == record.plan_id:
            raise BadRequestError(f"the subscription is already on plan {plan_id}")
        plan = self._plan(record.offer_id, plan_id)
        self._check_purchasable(plan, record.beneficiary.tenant_id)
        if not plan.is_price_per_seat:
            return plan, None
        quantity = record.quantity if record.quantity is not None else plan.min_quantity
        if not plan.allows_quantity(quantity):
            raise BadRequestError(
                f"quantity {quantity} is outside {plan.min_quantity}..{plan.max_quantity} of plan {plan_id}; "
                "change the quantity first"
            )
        return plan, quantity

    def _check_quantity_change(self, record: SubscriptionRecord, quantity: Any) -> int:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise BadRequestError(f"quantity must be a whole number, got {quantity!r}")
        plan = self._plan(record.offer_id, record.plan_id)
        if not plan.is_price_per_seat:
            raise BadRequestError(f"plan {plan.plan_id} is flat rate: it has no quantity")
        if quantity == record.quantity:
            raise BadRequestError(f"the subscription already has quantity {quantity}")
        if not plan.allows_quantity(quantity):
            raise BadRequestError(
                f"quantity {quantity} is outside {plan.min_quantity}..{plan.max_quantity} "
                f"of plan {plan.plan_id}"
            )
        return quantity

    @staticmethod
    def _check_operation_echo(operation: OperationRecord, body: dict[str, Any]) -> None:
        """The spec lets the publisher repeat planId/quantity; if it does, they must be the operation's."""
        if "planId" in body and body["planId"] != operation.plan_id:
            raise BadRequestError(f"planId {body['planId']!r} is not the operation's {operation.plan_id!r}")
        if "quantity" in body and body["quantity"] not in (None, operation.quantity):
            raise BadRequestError(
                f"quantity {body['quantity']!r} is not the operation's {operation.quantity!r}"
            )

    # --- internals: operations ------------------------------------------------------------------------------

    def _new_operation(
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
            time_stamp=_now_iso(),
        )
        self._state.operations[operation.id] = operation
        return operation

    def _customer_change(self, subscription_id: str, body: dict[str, Any]) -> str:
        with self._lock:
            operation = self._start_change(self._subscription(subscription_id), body, SOURCE_CUSTOMER)
        self._send_webhook(operation.id)
        return operation.id

    def _start_change(self, record: SubscriptionRecord, body: dict[str, Any], source: str) -> OperationRecord:
        if record.status != SUBSCRIBED:
            raise BadRequestError(f"subscription {record.id} is {record.status}; only Subscribed can change")
        if "planId" in body:
            plan, quantity = self._check_plan_change(record, body["planId"])
            operation = self._new_operation(record, CHANGE_PLAN, source, plan.plan_id, quantity)
        elif "quantity" in body:
            quantity = self._check_quantity_change(record, body["quantity"])
            operation = self._new_operation(record, CHANGE_QUANTITY, source, record.plan_id, quantity)
        else:
            raise BadRequestError("the body must name planId or quantity")
        operation.deadline = time.time() + self._state.settings.auto_accept_seconds
        self._arm_window(operation)
        self._save()
        log.info("operation %s %s started by %s on %s", operation.id, operation.action, source, record.id)
        return operation

    def _arm_window(self, operation: OperationRecord) -> None:
        if self._closed or operation.deadline is None:
            return
        delay = max(0.0, operation.deadline - time.time())
        timer = threading.Timer(delay, self._window_closed, args=(operation.id,))
        timer.daemon = True
        self._timers[operation.id] = timer
        timer.start()

    def _window_closed(self, operation_id: str) -> None:
        with self._lock:
            self._timers.pop(operation_id, None)
            operation = self._state.operations.get(operation_id)
            if operation is None or operation.is_finished() or self._closed:
                return
            self._apply_change(operation, "auto-accepted: no answer within the window")

    def _apply_change(self, operation: OperationRecord, decision: str) -> None:
        record = self._subscription(operation.subscription_id)
        if operation.action in CHANGE_ACTIONS:
            if record.status != SUBSCRIBED:
                self._finish(operation, FAILED, decision, f"subscription became {record.status}")
                return
            self._change_subscription(record, operation)
        self._finish(operation, SUCCEEDED, decision, "")
        log.info("operation %s %s applied: %s", operation.id, operation.action, decision)

    def _change_subscription(self, record: SubscriptionRecord, operation: OperationRecord) -> None:
        plan = self._plan(record.offer_id, operation.plan_id)
        record.plan_id = plan.plan_id
        record.quantity = operation.quantity
        record.term_unit = plan.term_unit
        # Moving to a plan without a trial ends the trial at once (R70).
        record.is_free_trial = record.is_free_trial and plan.has_free_trials
        record.last_modified = _now_iso()

    def _refuse_change(self, operation: OperationRecord, decision: str, error_code: str) -> None:
        if self._state.settings.ignore_rejections:
            self._apply_change(operation, f"{decision}, ignored (ignoreRejections)")
            return
        self._finish(operation, FAILED, decision, decision, error_code)
        log.info("operation %s %s refused: %s", operation.id, operation.action, decision)

    def _finish(
        self, operation: OperationRecord, status: str, decision: str, message: str, error_code: str = ""
    ) -> None:
        operation.status = status
        operation.decision = decision
        operation.error_message = message if status == FAILED else ""
        operation.error_status_code = error_code
        operation.deadline = None
        timer = self._timers.pop(operation.id, None)
        if timer is not None:
            timer.cancel()
        self._save()

    def _immediate(self, subscription_id: str, action: str, allowed_from: set[str], target: str) -> str:
        with self._lock:
            record = self._subscription(subscription_id)
            if record.status not in allowed_from:
                raise BadRequestError(
                    f"{action} needs status {sorted(allowed_from)}, the subscription is {record.status}"
                )
            record.status = target
            if action == "Renew":
                self._roll_term(record)
            record.last_modified = _now_iso()
            operation = self._new_operation(record, action, SOURCE_CUSTOMER, record.plan_id, record.quantity)
            self._finish(operation, SUCCEEDED, "acted at once (notify only)", "")
        log.info("subscription %s: %s -> %s", subscription_id, action, target)
        self._send_webhook(operation.id)
        return operation.id

    @staticmethod
    def _roll_term(record: SubscriptionRecord) -> None:
        """Renew (R69): the next term starts the day after the current one ends; a trial converts to paid."""
        if record.term_end:
            start = date.fromisoformat(record.term_end[:10]) + timedelta(days=1)
        else:
            start = datetime.now(UTC).date()
        record.term_start = _day_iso(start)
        record.term_end = _day_iso(term_end(start, record.term_unit))
        record.is_free_trial = False

    def _unsubscribe_locked(self, record: SubscriptionRecord, source: str) -> OperationRecord:
        for pending in self._operations_of(record.id):
            if not pending.is_finished():
                self._finish(pending, FAILED, "overtaken by Unsubscribe", "the subscription was unsubscribed")
        record.status = UNSUBSCRIBED
        record.last_modified = _now_iso()
        operation = self._new_operation(record, "Unsubscribe", source, record.plan_id, record.quantity)
        self._finish(operation, SUCCEEDED, "acted at once (notify only)", "")
        log.info("subscription %s unsubscribed by %s", record.id, source)
        return operation

    def _send_webhook(self, operation_id: str) -> None:
        """Hands the webhook body to the sender, outside the lock so a slow publisher never blocks us."""
        with self._lock:
            operation = self._state.operations[operation_id]
            body = self._on_the_wire(operation.to_api(self._subscription(operation.subscription_id)))
            if "quantity" not in body:
                body["quantity"] = None  # webhook bodies carry the field even for flat-rate plans (R33)
        self._webhook_sink(operation_id, body)

    # --- persistence ----------------------------------------------------------------------------------------

    def _save(self) -> None:
        if self._state_file is None:
            return
        document = {
            "version": STATE_VERSION,
            "settings": asdict(self._state.settings),
            "offers": [offer.to_json() for offer in self._state.offers.values()],
            "subscriptions": [asdict(record) for record in self._state.subscriptions.values()],
            "operations": [asdict(operation) for operation in self._state.operations.values()],
            "tokens": self._state.tokens,
        }
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
        # Replace in one step so a crash mid-write never leaves half a state file behind.
        os.replace(temporary, self._state_file)


def _load_state(path: Path) -> _State:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != STATE_VERSION:
            raise ValueError(f"state version {document.get('version')!r}, expected {STATE_VERSION}")
        return _State(
            settings=SandboxSettings(**document["settings"]),
            offers={o["offerId"]: offer_from_json(o) for o in document["offers"]},
            subscriptions={s["id"]: SubscriptionRecord.from_json(s) for s in document["subscriptions"]},
            operations={o["id"]: OperationRecord(**o) for o in document["operations"]},
            tokens=dict(document["tokens"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("cannot read sandbox state %s: %s (delete it or use another --state-dir)", path, exc)
        raise RuntimeError(f"cannot read sandbox state {path}: {exc}") from exc
