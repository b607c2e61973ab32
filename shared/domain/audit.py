"""An entry in a subscription's history: what happened, who caused it, and which fields changed.

Actions and sources are closed sets so that every writer names one of them and every reader can switch on
them. Rows written before these enums existed hold plain strings: `AuditAction.parse` / `AuditSource.parse`
read any string (spelling is forgiven, as for Microsoft's actions) and map one they do not know to
`UNKNOWN`, so an old table always renders instead of failing on one odd row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.status import Action


def _norm(value: object) -> str:
    return str(value or "").strip().lower()


# The audit trail's partition for reconciliation sweeps: a sweep concerns every subscription, not one.
SWEEPS_PARTITION = "_sweeps"


class AuditAction(StrEnum):
    """What an entry records. Microsoft's actions keep Microsoft's spelling (they are `Action` values)."""

    # Microsoft's operations, mirrored from GetSubscription (see shared/domain/status.py).
    CHANGE_PLAN = Action.CHANGE_PLAN.value
    CHANGE_QUANTITY = Action.CHANGE_QUANTITY.value
    SUSPEND = Action.SUSPEND.value
    REINSTATE = Action.REINSTATE.value
    UNSUBSCRIBE = Action.UNSUBSCRIBE.value
    RENEW = Action.RENEW.value
    # The publisher's own steps.
    RESOLVE = "Resolve"  # the landing resolved a purchase token and recorded the subscription it names
    ACTIVATE = "Activate"
    RECONCILE = "Reconcile"
    PROVISIONED = "Provisioned"
    CONFIRM = "Confirm"
    CONFIRM_ROLLED_BACK = "ConfirmRolledBack"
    CHANGE_PLAN_DECISION = "ChangePlanDecision"
    CHANGE_QUANTITY_DECISION = "ChangeQuantityDecision"
    # An operator's action (the CLI, later the console), with who in `actor`.
    RECONCILE_REQUESTED = "ReconcileRequested"
    ACTIVATION_RETRY_REQUESTED = "ActivationRetryRequested"
    CANCEL_REQUESTED = "CancelRequested"  # the DELETE Microsoft accepted; its operation id with it
    DEAD_LETTER_REPLAY_REQUESTED = "DeadLetterReplayRequested"  # written before the queue acts
    DEAD_LETTER_REPLAYED = "DeadLetterReplayed"
    DEAD_LETTER_DISCARD_REQUESTED = "DeadLetterDiscardRequested"  # written before the queue acts
    DEAD_LETTER_DISCARDED = "DeadLetterDiscarded"
    # The retention period ended: personal data deleted or anonymised, counts in `changes` (R58).
    PERSONAL_DATA_PURGED = "PersonalDataPurged"
    # A reconciliation sweep ran: its counts in `changes`, who asked in `actor` (the timer: none). Kept in
    # the fixed partition SWEEPS_PARTITION, as a sweep is about every subscription.
    SWEEP = "Sweep"
    SWEEP_REQUESTED = "SweepRequested"
    # A Microsoft action this code does not know yet, or a stored string from an older version.
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: object) -> AuditAction:
        return _ACTIONS.get(_norm(value), cls.UNKNOWN)

    @classmethod
    def decision_on(cls, action: Action) -> AuditAction:
        """The entry recording the publisher's accept/refuse of a ChangePlan or ChangeQuantity."""
        if action is Action.CHANGE_PLAN:
            return cls.CHANGE_PLAN_DECISION
        if action is Action.CHANGE_QUANTITY:
            return cls.CHANGE_QUANTITY_DECISION
        raise ValueError(f"only ChangePlan and ChangeQuantity are decided, not {action.value}")


class AuditSource(StrEnum):
    """Who caused an entry: Microsoft's requestSource of an operation, or the publisher's component."""

    AZURE = "Azure"  # the customer, through Microsoft (requestSource of an operation)
    PARTNER = "Partner"  # the publisher, through the Fulfillment API (R42)
    LANDING = "landing"
    RECONCILIATION = "reconciliation"
    PUBLISHER_POLICY = "publisher-policy"
    OPERATOR = "operator"  # the publisher's staff, by the CLI or the console; `actor` names the person
    RETENTION = "retention"  # the purge timer, once a subscription's retention period ended
    # No requestSource on the operation, or a stored string from an older version.
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: object) -> AuditSource:
        return _SOURCES.get(_norm(value), cls.UNKNOWN)


_ACTIONS = {member.value.lower(): member for member in AuditAction}
_SOURCES = {member.value.lower(): member for member in AuditSource}


@dataclass(frozen=True)
class AuditEntry:
    """One event in a subscription's history.

    `changes` maps a field name to (old, new). Written, they are Python values (datetimes, enums, parties);
    read back, they are what the stored JSON holds (ISO strings, enum values, objects as dicts).
    `entry_id` is given by the store when the entry is written. `actor` names the person behind an
    operator's action (empty for the app's own steps).
    """

    subscription_id: str
    at: datetime
    action: AuditAction
    source: AuditSource
    operation_id: str = ""
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    correlation_id: str = ""
    entry_id: str = ""
    actor: str = ""
