"""Which subscription states follow which (R31), and how Microsoft's snapshot updates the mirror (R22, R37).

Microsoft owns the state; the publisher only mirrors it. `next_status` is the R31 table, used to judge a
single trigger. `apply_snapshot` is what the worker runs: it copies Microsoft's truth onto the stored
record, but refuses a snapshot the stored state can never lead to (a resurrected Unsubscribed, a return to
PendingFulfillmentStart), and it keeps "last operation" from moving backwards when webhooks arrive out of
order or twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime

from shared.domain.status import Action, SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Subscription

ACTIVATE = "Activate"

_PENDING = SubscriptionStatus.PENDING_FULFILLMENT_START
_SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
_SUSPENDED = SubscriptionStatus.SUSPENDED
_UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED

# R31: trigger -> {from: to}. A trigger missing from a row is refused from that state.
_TABLE: dict[str, dict[SubscriptionStatus, SubscriptionStatus]] = {
    ACTIVATE: {_PENDING: _SUBSCRIBED},
    Action.CHANGE_PLAN.value: {_SUBSCRIBED: _SUBSCRIBED},
    Action.CHANGE_QUANTITY.value: {_SUBSCRIBED: _SUBSCRIBED},
    Action.RENEW.value: {_SUBSCRIBED: _SUBSCRIBED},
    Action.SUSPEND.value: {_SUBSCRIBED: _SUSPENDED},
    Action.REINSTATE.value: {_SUSPENDED: _SUBSCRIBED},
    Action.UNSUBSCRIBE.value: {
        _PENDING: _UNSUBSCRIBED,
        _SUBSCRIBED: _UNSUBSCRIBED,
        _SUSPENDED: _UNSUBSCRIBED,
    },
}

# Written on every sync, so listing them would make every audit entry look like a change.
_NOT_AUDITED = frozenset({"last_synced_at", "updated_at", "etag"})


class TransitionRefusedError(ValueError):
    """A trigger or snapshot that R31 does not allow from the current state."""

    def __init__(self, current: SubscriptionStatus, trigger: Action | str, reason: str | None = None) -> None:
        self.current = current
        self.trigger = str(trigger)
        self.reason = reason or _why_refused(current, self.trigger)
        super().__init__(f"refusing {self.trigger!r} from {current.value}: {self.reason}")


class SubscriptionMismatchError(ValueError):
    """A snapshot of one subscription offered to the record of another: a caller bug, never data to mirror."""

    def __init__(self, stored_id: str, snapshot_id: str) -> None:
        self.stored_id = stored_id
        self.snapshot_id = snapshot_id
        super().__init__(f"snapshot of subscription {snapshot_id!r} cannot update record {stored_id!r}")


class NaiveDatetimeError(ValueError):
    """Timestamps must carry a time zone: naive and aware values cannot be ordered against each other."""

    def __init__(self, name: str, value: datetime) -> None:
        self.name = name
        super().__init__(f"{name} must be timezone-aware, got {value.isoformat()}")


def _why_refused(current: SubscriptionStatus, trigger: str) -> str:
    if current is _UNSUBSCRIBED:
        return "Unsubscribed is terminal"
    row = _TABLE.get(trigger)
    if row is None:
        return f"{trigger!r} is not a trigger that changes subscription state"
    allowed = " or ".join(status.value for status in row)
    return f"{trigger} applies only from {allowed}"


def _trigger_key(trigger: Action | str) -> str:
    # Action is a StrEnum, so an Action and its value name the same row.
    return trigger.value if isinstance(trigger, Action) else str(trigger)


def next_status(current: SubscriptionStatus, trigger: Action | str) -> SubscriptionStatus:
    """The status R31 leads to from `current` on `trigger`; raises TransitionRefusedError if none."""
    key = _trigger_key(trigger)
    target = _TABLE.get(key, {}).get(current)
    if target is None:
        raise TransitionRefusedError(current, key)
    return target


def _successors(status: SubscriptionStatus) -> set[SubscriptionStatus]:
    return {row[status] for row in _TABLE.values() if status in row}


def can_reach(current: SubscriptionStatus, target: SubscriptionStatus) -> bool:
    """True when `target` follows `current` in zero or more R31 steps (missed webhooks are no error)."""
    seen = {current}
    frontier = [current]
    while frontier:
        for following in _successors(frontier.pop()):
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return target in seen


@dataclass(frozen=True)
class Cause:
    """Why a snapshot is being applied: the operation (empty id for a reconcile), who sent it and when."""

    operation_id: str
    action: str
    source: str
    at: datetime

    def __post_init__(self) -> None:
        _require_aware("Cause.at", self.at)


@dataclass(frozen=True)
class Outcome:
    """The record to store, and field name -> (old, new) for every audited field that changed."""

    subscription: Subscription
    changes: dict[str, tuple[object, object]]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(name, value)


def apply_snapshot(
    stored: Subscription | None, snapshot: MicrosoftSubscription, cause: Cause, now: datetime
) -> Outcome:
    """The stored record mirrored to Microsoft's snapshot, with bookkeeping, and what changed.

    Raises TransitionRefusedError when the stored status can never lead to the snapshot's status, and
    SubscriptionMismatchError when the snapshot belongs to another subscription.
    """
    _require_aware("now", now)
    if stored is None:
        updated = replace(Subscription.from_microsoft(snapshot), created_at=now)
    else:
        _check_can_mirror(stored, snapshot, cause)
        updated = stored.mirrored(snapshot)
    updated = _with_bookkeeping(updated, stored, cause, now)
    return Outcome(subscription=updated, changes=_changes(stored, updated))


def _check_can_mirror(stored: Subscription, snapshot: MicrosoftSubscription, cause: Cause) -> None:
    if stored.id != snapshot.id:
        raise SubscriptionMismatchError(stored.id, snapshot.id)
    if not can_reach(stored.status, snapshot.status):
        reason = (
            "Unsubscribed is terminal"
            if stored.status is _UNSUBSCRIBED
            else f"{stored.status.value} never leads to {snapshot.status.value}"
        )
        raise TransitionRefusedError(stored.status, cause.action or "sync", reason)


def _with_bookkeeping(
    updated: Subscription, stored: Subscription | None, cause: Cause, now: datetime
) -> Subscription:
    if _is_newest(cause, stored):
        updated = replace(
            updated,
            last_operation_id=cause.operation_id,
            last_operation_action=cause.action,
            last_operation_at=cause.at,
        )
    if updated.status is _SUBSCRIBED and updated.activated_at is None:
        updated = replace(updated, activated_at=now)
    if updated.status is _UNSUBSCRIBED and updated.unsubscribed_at is None:
        updated = replace(updated, unsubscribed_at=now)
    return replace(updated, last_synced_at=now, updated_at=now)


def _is_newest(cause: Cause, stored: Subscription | None) -> bool:
    """A cause replaces the last operation unless it is older: a late duplicate never moves it back."""
    if not cause.operation_id:
        return False
    last_at = stored.last_operation_at if stored is not None else None
    return last_at is None or cause.at >= last_at


def _audited_fields() -> Iterable[str]:
    return (f.name for f in fields(Subscription) if f.name not in _NOT_AUDITED)


def _is_blank(value: object) -> bool:
    return value is None or value == "" or value == frozenset()


def _changes(stored: Subscription | None, updated: Subscription) -> dict[str, tuple[object, object]]:
    """Field -> (old, new). On first sight old is None, and blank fields are left out as saying nothing."""
    changes: dict[str, tuple[object, object]] = {}
    for name in _audited_fields():
        new = getattr(updated, name)
        if stored is None and _is_blank(new):
            continue
        old = getattr(stored, name) if stored is not None else None
        if old != new:
            changes[name] = (old, new)
    return changes
