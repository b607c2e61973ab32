"""Subscriptions and operations as Microsoft keeps them, the values their fields take, and their wire form.

`to_api` gives what the Fulfillment API and webhooks send (S1 `Subscription`, `SaaSOperation`,
`ResolvedSubscription`); `asdict` of a record is what the state file keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

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


def now_iso() -> str:
    """A timestamp as Microsoft writes `created`, `lastModified` and `timeStamp`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day_iso(day: date) -> str:
    """A term date as Microsoft writes `startDate` and `endDate`: midnight UTC."""
    return f"{day.isoformat()}T00:00:00Z"


@dataclass(frozen=True)
class WireParty:
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
    purchaser: WireParty
    beneficiary: WireParty
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

    def to_resolved(self) -> dict[str, Any]:
        """The S1 `ResolvedSubscription` a purchase token resolves to (R4)."""
        body: dict[str, Any] = {
            "id": self.id,
            "subscriptionName": self.name,
            "offerId": self.offer_id,
            "planId": self.plan_id,
            "subscription": self.to_api(),
        }
        if self.quantity is not None:
            body["quantity"] = self.quantity
        return body

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SubscriptionRecord:
        values = dict(raw)
        values["purchaser"] = WireParty(**values["purchaser"])
        values["beneficiary"] = WireParty(**values["beneficiary"])
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
    # When the operation left InProgress: with the webhook log's times, it says how long the publisher took.
    decided_at: str = ""

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


def on_the_wire(body: dict[str, Any], emulator_wire_format: bool) -> dict[str, Any]:
    """An operation as the API and webhooks send it: the docs' spelling, or the emulator's when asked."""
    if emulator_wire_format and "operationRequestSource" in body:
        body["operationRequestedSource"] = body.pop("operationRequestSource")
    return body
