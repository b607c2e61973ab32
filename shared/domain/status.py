"""Subscription status as Microsoft reports it (R30) and the actions and operation statuses (R27, R33)."""

from __future__ import annotations

from enum import StrEnum


class SubscriptionStatus(StrEnum):
    PENDING_FULFILLMENT_START = "PendingFulfillmentStart"
    SUBSCRIBED = "Subscribed"
    SUSPENDED = "Suspended"
    UNSUBSCRIBED = "Unsubscribed"


class Action(StrEnum):
    """Webhook / operation actions. UNKNOWN stands for any value Microsoft may add later (R33, C5)."""

    CHANGE_PLAN = "ChangePlan"
    CHANGE_QUANTITY = "ChangeQuantity"
    SUSPEND = "Suspend"
    REINSTATE = "Reinstate"
    UNSUBSCRIBE = "Unsubscribe"
    RENEW = "Renew"
    UNKNOWN = "Unknown"


class OperationStatus(StrEnum):
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CONFLICT = "Conflict"
    UNKNOWN = "Unknown"

    @property
    def is_terminal(self) -> bool:
        return self in {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CONFLICT}


class UnknownStatusError(ValueError):
    """Microsoft sent a subscription status outside R30; refusing is safer than guessing."""


def _norm(value: object) -> str:
    return str(value or "").strip().lower()


_STATUS_ALIASES = {s.value.lower(): s for s in SubscriptionStatus} | {
    # The spec lists NotStarted as a subscription status; the docs never do. Treat it as pending (R30).
    "notstarted": SubscriptionStatus.PENDING_FULFILLMENT_START,
}


def parse_status(value: object) -> SubscriptionStatus:
    """Lenient on spelling (padding, case: R30), strict on meaning (an unknown status raises)."""
    try:
        return _STATUS_ALIASES[_norm(value)]
    except KeyError:
        raise UnknownStatusError(f"unknown saasSubscriptionStatus {value!r}") from None


def parse_action(value: object) -> Action:
    by_name = {a.value.lower(): a for a in Action}
    return by_name.get(_norm(value), Action.UNKNOWN)


# An older webhook sample in the docs says "Success", the word of the PATCH body, for a finished operation.
_OPERATION_STATUS_ALIASES = {"success": OperationStatus.SUCCEEDED}


def parse_operation_status(value: object) -> OperationStatus:
    by_name = {s.value.lower(): s for s in OperationStatus} | _OPERATION_STATUS_ALIASES
    return by_name.get(_norm(value), OperationStatus.UNKNOWN)
