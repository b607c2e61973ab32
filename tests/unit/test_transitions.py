"""The R31 state machine over every (status, trigger) pair, reachability, and mirroring snapshots."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.status import Action, SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Party, Subscription, Term
from shared.domain.transitions import (
    ACTIVATE,
    Cause,
    NaiveDatetimeError,
    SubscriptionMismatchError,
    TransitionRefusedError,
    apply_snapshot,
    can_reach,
    next_status,
)

PENDING = SubscriptionStatus.PENDING_FULFILLMENT_START
SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
SUSPENDED = SubscriptionStatus.SUSPENDED
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED

BOGUS_TRIGGER = "Transfer"
TRIGGERS: list[Action | str] = [*Action, ACTIVATE, BOGUS_TRIGGER]

# R31 written out by hand, independently of the module's table: every pair not listed here is refused.
ALLOWED: dict[tuple[SubscriptionStatus, str], SubscriptionStatus] = {
    (PENDING, "Activate"): SUBSCRIBED,
    (SUBSCRIBED, "ChangePlan"): SUBSCRIBED,
    (SUBSCRIBED, "ChangeQuantity"): SUBSCRIBED,
    (SUBSCRIBED, "Renew"): SUBSCRIBED,
    (SUBSCRIBED, "Suspend"): SUSPENDED,
    (SUSPENDED, "Reinstate"): SUBSCRIBED,
    (PENDING, "Unsubscribe"): UNSUBSCRIBED,
    (SUBSCRIBED, "Unsubscribe"): UNSUBSCRIBED,
    (SUSPENDED, "Unsubscribe"): UNSUBSCRIBED,
}

REACHABLE: dict[SubscriptionStatus, set[SubscriptionStatus]] = {
    PENDING: {PENDING, SUBSCRIBED, SUSPENDED, UNSUBSCRIBED},
    SUBSCRIBED: {SUBSCRIBED, SUSPENDED, UNSUBSCRIBED},
    SUSPENDED: {SUBSCRIBED, SUSPENDED, UNSUBSCRIBED},
    UNSUBSCRIBED: {UNSUBSCRIBED},
}

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SUB_ID = "0f1e2d3c-0000-4000-8000-000000000001"


def _trigger_value(trigger: Action | str) -> str:
    return trigger.value if isinstance(trigger, Action) else trigger


# --- next_status


@pytest.mark.parametrize(
    ("current", "trigger"),
    list(itertools.product(SubscriptionStatus, TRIGGERS)),
    ids=lambda value: str(value),
)
def test_next_status_for_every_status_and_trigger(current: SubscriptionStatus, trigger: Action | str) -> None:
    expected = ALLOWED.get((current, _trigger_value(trigger)))
    if expected is None:
        with pytest.raises(TransitionRefusedError) as caught:
            next_status(current, trigger)
        assert caught.value.current is current
        assert caught.value.trigger == _trigger_value(trigger)
    else:
        assert next_status(current, trigger) is expected


def test_the_product_covers_every_allowed_pair() -> None:
    # Guards the hand-written table against a typo that would silently turn a case into a refusal.
    assert set(ALLOWED) <= {
        (s, _trigger_value(t)) for s, t in itertools.product(SubscriptionStatus, TRIGGERS)
    }
    assert len(ALLOWED) == 9


@pytest.mark.parametrize("action", [a for a in Action if a is not Action.UNKNOWN])
def test_a_plain_string_names_the_same_trigger_as_the_action(action: Action) -> None:
    for current in SubscriptionStatus:
        expected = ALLOWED.get((current, action.value))
        if expected is not None:
            assert next_status(current, str(action.value)) is expected


@pytest.mark.parametrize("trigger", [*Action, ACTIVATE])
def test_unsubscribed_refusal_says_it_is_terminal(trigger: Action | str) -> None:
    with pytest.raises(TransitionRefusedError, match="Unsubscribed is terminal") as caught:
        next_status(UNSUBSCRIBED, trigger)
    message = str(caught.value)
    assert "Unsubscribed" in message
    assert _trigger_value(trigger) in message


def test_refusal_names_state_trigger_and_where_the_trigger_applies() -> None:
    with pytest.raises(TransitionRefusedError) as caught:
        next_status(SUSPENDED, Action.CHANGE_PLAN)
    assert (
        str(caught.value) == "refusing 'ChangePlan' from Suspended: ChangePlan applies only from Subscribed"
    )


@pytest.mark.parametrize(
    ("current", "trigger", "reason"),
    [
        (SUBSCRIBED, ACTIVATE, "Activate applies only from PendingFulfillmentStart"),
        (SUSPENDED, ACTIVATE, "Activate applies only from PendingFulfillmentStart"),
        (SUBSCRIBED, Action.REINSTATE, "Reinstate applies only from Suspended"),
        (PENDING, Action.SUSPEND, "Suspend applies only from Subscribed"),
        (SUSPENDED, Action.RENEW, "Renew applies only from Subscribed"),
        (PENDING, Action.CHANGE_QUANTITY, "ChangeQuantity applies only from Subscribed"),
    ],
)
def test_refusal_reason_says_where_the_trigger_applies(
    current: SubscriptionStatus, trigger: Action | str, reason: str
) -> None:
    with pytest.raises(TransitionRefusedError) as caught:
        next_status(current, trigger)
    assert caught.value.reason == reason
    assert current.value in str(caught.value)


@pytest.mark.parametrize("trigger", [Action.UNKNOWN, BOGUS_TRIGGER, ""])
def test_unknown_triggers_are_refused_as_not_state_changing(trigger: Action | str) -> None:
    with pytest.raises(TransitionRefusedError, match="not a trigger that changes subscription state"):
        next_status(SUBSCRIBED, trigger)


def test_transition_refused_is_a_value_error() -> None:
    assert issubclass(TransitionRefusedError, ValueError)


# --- can_reach


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(SubscriptionStatus, SubscriptionStatus)),
    ids=lambda value: str(value),
)
def test_can_reach_for_every_pair(current: SubscriptionStatus, target: SubscriptionStatus) -> None:
    assert can_reach(current, target) is (target in REACHABLE[current])


# --- apply_snapshot


def _snapshot(**overrides: object) -> MicrosoftSubscription:
    values: dict[str, object] = {
        "id": SUB_ID,
        "name": "Contoso seats",
        "offer_id": "contoso-offer",
        "plan_id": "silver",
        "quantity": 5,
        "status": SUBSCRIBED,
        "purchaser": Party(email="buyer@contoso.example", tenant_id="tenant-a"),
        "beneficiary": Party(email="user@contoso.example", tenant_id="tenant-a"),
        "term": Term(unit="P1M", start=T0, end=T0 + timedelta(days=30)),
    }
    values.update(overrides)
    return MicrosoftSubscription(**values)  # type: ignore[arg-type]


def _cause(operation_id: str = "op-1", action: str = "ChangePlan", at: datetime = T0) -> Cause:
    return Cause(operation_id=operation_id, action=action, source="webhook", at=at)


def _stored(**overrides: object) -> Subscription:
    base = replace(
        Subscription.from_microsoft(_snapshot()),
        created_at=T0 - timedelta(days=3),
        activated_at=T0 - timedelta(days=3),
        last_operation_id="op-0",
        last_operation_action="Renew",
        last_operation_at=T0 - timedelta(days=1),
        last_synced_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
        etag="W/\"datetime'2024-05-01T00%3A00%3A00Z'\"",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _mirrored_fields(record: Subscription) -> dict[str, object]:
    names = {f.name for f in fields(MicrosoftSubscription)} & {f.name for f in fields(Subscription)}
    return {name: getattr(record, name) for name in names}


def test_first_sight_builds_the_record_from_microsoft() -> None:
    now = T0 + timedelta(minutes=5)
    snapshot = _snapshot(status=PENDING)
    outcome = apply_snapshot(None, snapshot, _cause("", "Resolve"), now)
    record = outcome.subscription
    assert _mirrored_fields(record) == _mirrored_fields(Subscription.from_microsoft(snapshot))
    assert record.created_at == now
    assert record.last_synced_at == now
    assert record.updated_at == now
    assert record.etag == ""
    assert record.activated_at is None
    assert record.unsubscribed_at is None
    assert record.last_operation_id == ""
    assert record.last_operation_at is None


def test_first_sight_changes_list_every_value_as_new() -> None:
    now = T0 + timedelta(minutes=5)
    outcome = apply_snapshot(None, _snapshot(), _cause("op-7", "ChangePlan"), now)
    changes = outcome.changes
    assert changes["id"] == (None, SUB_ID)
    assert changes["status"] == (None, SUBSCRIBED)
    assert changes["plan_id"] == (None, "silver")
    assert changes["quantity"] == (None, 5)
    assert changes["created_at"] == (None, now)
    assert changes["activated_at"] == (None, now)
    assert changes["last_operation_id"] == (None, "op-7")
    assert "last_synced_at" not in changes
    assert "updated_at" not in changes
    assert "etag" not in changes
    assert "unsubscribed_at" not in changes  # still None: a blank says nothing
    assert "allowed_customer_operations" not in changes  # empty: a blank says nothing
    assert all(old is None for old, _ in changes.values())


def test_first_sight_as_subscribed_marks_it_activated() -> None:
    now = T0 + timedelta(minutes=1)
    record = apply_snapshot(None, _snapshot(), _cause(), now).subscription
    assert record.activated_at == now


def test_plan_change_is_mirrored_and_listed_in_changes() -> None:
    stored = _stored()
    now = T0 + timedelta(minutes=2)
    outcome = apply_snapshot(stored, _snapshot(plan_id="gold"), _cause("op-1", "ChangePlan", T0), now)
    assert outcome.subscription.plan_id == "gold"
    assert outcome.changes == {
        "plan_id": ("silver", "gold"),
        "last_operation_id": ("op-0", "op-1"),
        "last_operation_action": ("Renew", "ChangePlan"),
        "last_operation_at": (T0 - timedelta(days=1), T0),
    }
    assert outcome.subscription.last_synced_at == now
    assert outcome.subscription.updated_at == now


def test_a_field_emptied_by_microsoft_is_listed_as_a_change() -> None:
    # Moving to a flat-rate plan clears the quantity: blank is only skipped on first sight.
    stored = _stored(allowed_customer_operations=frozenset({"Read", "Update"}))
    outcome = apply_snapshot(stored, _snapshot(quantity=None), _cause("", "Reconcile"), T0)
    assert outcome.changes["quantity"] == (5, None)
    assert outcome.changes["allowed_customer_operations"] == (frozenset({"Read", "Update"}), frozenset())


def test_a_resync_with_nothing_new_reports_no_changes_but_still_stamps_the_sync() -> None:
    stored = _stored()
    now = T0 + timedelta(hours=1)
    outcome = apply_snapshot(stored, _snapshot(), _cause("", "Reconcile", now), now)
    assert outcome.changes == {}
    assert outcome.subscription.last_synced_at == now
    assert outcome.subscription.updated_at == now
    assert outcome.subscription == replace(stored, last_synced_at=now, updated_at=now)


def test_a_reconcile_without_operation_id_leaves_the_last_operation_alone() -> None:
    stored = _stored()
    later = T0 + timedelta(days=10)
    record = apply_snapshot(stored, _snapshot(quantity=9), _cause("", "Reconcile", later), later).subscription
    assert record.quantity == 9
    assert (record.last_operation_id, record.last_operation_action, record.last_operation_at) == (
        "op-0",
        "Renew",
        T0 - timedelta(days=1),
    )


def test_an_older_operation_delivered_late_never_moves_the_last_operation_back() -> None:
    newer = _stored(last_operation_id="op-new", last_operation_action="ChangeQuantity", last_operation_at=T0)
    late = _cause("op-old", "ChangePlan", T0 - timedelta(minutes=1))
    outcome = apply_snapshot(newer, _snapshot(plan_id="gold"), late, T0 + timedelta(minutes=3))
    record = outcome.subscription
    assert record.last_operation_id == "op-new"
    assert record.last_operation_action == "ChangeQuantity"
    assert record.last_operation_at == T0
    # The truth is still mirrored: the late message only carries a stale "why", not a stale "what".
    assert record.plan_id == "gold"
    assert set(outcome.changes) == {"plan_id"}


def test_an_operation_with_the_same_timestamp_replaces_the_last_operation() -> None:
    stored = _stored(last_operation_id="op-a", last_operation_at=T0)
    record = apply_snapshot(stored, _snapshot(), _cause("op-b", "Renew", T0), T0).subscription
    assert record.last_operation_id == "op-b"


def test_a_record_with_no_last_operation_takes_any_operation() -> None:
    stored = _stored(last_operation_id="", last_operation_action="", last_operation_at=None)
    old = T0 - timedelta(days=365)
    record = apply_snapshot(stored, _snapshot(), _cause("op-x", "Renew", old), T0).subscription
    assert (record.last_operation_id, record.last_operation_at) == ("op-x", old)


def test_unsubscribed_at_is_set_the_first_time_and_kept_afterwards() -> None:
    first = T0 + timedelta(minutes=1)
    outcome = apply_snapshot(_stored(), _snapshot(status=UNSUBSCRIBED), _cause("op-u", "Unsubscribe"), first)
    assert outcome.subscription.unsubscribed_at == first
    assert outcome.changes["unsubscribed_at"] == (None, first)
    assert outcome.changes["status"] == (SUBSCRIBED, UNSUBSCRIBED)

    again = first + timedelta(hours=2)
    later = apply_snapshot(
        outcome.subscription, _snapshot(status=UNSUBSCRIBED), _cause("", "Reconcile"), again
    )
    assert later.subscription.unsubscribed_at == first
    assert "unsubscribed_at" not in later.changes


@pytest.mark.parametrize("status", [PENDING, SUBSCRIBED, SUSPENDED])
def test_unsubscribed_at_stays_empty_while_not_unsubscribed(status: SubscriptionStatus) -> None:
    stored = _stored(status=PENDING, activated_at=None)
    record = apply_snapshot(stored, _snapshot(status=status), _cause(), T0).subscription
    assert record.unsubscribed_at is None


def test_activated_at_is_set_when_first_subscribed_and_kept_afterwards() -> None:
    pending = _stored(status=PENDING, activated_at=None)
    first = T0 + timedelta(minutes=1)
    activated = apply_snapshot(pending, _snapshot(), _cause("", ACTIVATE), first).subscription
    assert activated.activated_at == first

    suspended = apply_snapshot(
        activated, _snapshot(status=SUSPENDED), _cause("s", "Suspend"), first
    ).subscription
    reinstated = apply_snapshot(suspended, _snapshot(), _cause("r", "Reinstate"), first + timedelta(days=2))
    assert reinstated.subscription.activated_at == first


def test_pending_record_stays_unactivated() -> None:
    stored = _stored(status=PENDING, activated_at=None)
    record = apply_snapshot(stored, _snapshot(status=PENDING), _cause(), T0).subscription
    assert record.activated_at is None


@pytest.mark.parametrize("status", [PENDING, SUBSCRIBED, SUSPENDED])
def test_unsubscribed_is_never_resurrected(status: SubscriptionStatus) -> None:
    gone = _stored(status=UNSUBSCRIBED, unsubscribed_at=T0)
    with pytest.raises(TransitionRefusedError, match="Unsubscribed is terminal") as caught:
        apply_snapshot(gone, _snapshot(status=status), _cause("op-r", "Reinstate"), T0)
    assert caught.value.current is UNSUBSCRIBED
    assert caught.value.trigger == "Reinstate"


@pytest.mark.parametrize("status", [SUBSCRIBED, SUSPENDED])
def test_an_activated_subscription_never_returns_to_pending(status: SubscriptionStatus) -> None:
    with pytest.raises(
        TransitionRefusedError, match=f"{status.value} never leads to PendingFulfillmentStart"
    ):
        apply_snapshot(_stored(status=status), _snapshot(status=PENDING), _cause("", ""), T0)


@pytest.mark.parametrize(
    ("stored_status", "snapshot_status"),
    [
        pair
        for pair in itertools.product(SubscriptionStatus, SubscriptionStatus)
        if pair[1] in REACHABLE[pair[0]]
    ],
    ids=lambda value: str(value),
)
def test_every_reachable_status_is_mirrored(
    stored_status: SubscriptionStatus, snapshot_status: SubscriptionStatus
) -> None:
    # A missed webhook (Pending -> Suspended, Subscribed -> Unsubscribed via Suspended) is no error.
    record = apply_snapshot(_stored(status=stored_status), _snapshot(status=snapshot_status), _cause(), T0)
    assert record.subscription.status is snapshot_status


def test_the_stored_etag_is_kept() -> None:
    stored = _stored(etag="etag-123")
    record = apply_snapshot(stored, _snapshot(quantity=50, plan_id="gold"), _cause(), T0).subscription
    assert record.etag == "etag-123"


def test_publisher_bookkeeping_survives_a_mirror() -> None:
    requested = T0 - timedelta(days=3)
    stored = _stored(provisioned=True, activation_requested_at=requested)
    record = apply_snapshot(stored, _snapshot(quantity=6), _cause(), T0).subscription
    assert record.provisioned is True
    assert record.activation_requested_at == requested
    assert record.created_at == stored.created_at


def test_a_snapshot_of_another_subscription_is_refused() -> None:
    other = _snapshot(id="another-subscription")
    with pytest.raises(SubscriptionMismatchError, match="another-subscription"):
        apply_snapshot(_stored(), other, _cause(), T0)


def test_naive_now_is_refused_with_a_typed_error() -> None:
    with pytest.raises(NaiveDatetimeError, match="now must be timezone-aware"):
        apply_snapshot(_stored(), _snapshot(), _cause(), datetime(2024, 5, 1, 12, 0))


def test_naive_cause_time_is_refused_with_a_typed_error() -> None:
    with pytest.raises(NaiveDatetimeError, match=r"Cause\.at must be timezone-aware"):
        Cause(operation_id="op", action="Renew", source="webhook", at=datetime(2024, 5, 1))


def test_times_in_other_zones_are_ordered_by_instant() -> None:
    stored = _stored(last_operation_id="op-utc", last_operation_at=T0)
    # 13:30 at +02:00 is 11:30 UTC: older than the stored 12:00 UTC despite the larger wall-clock time.
    earlier_elsewhere = datetime(2024, 5, 1, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    record = apply_snapshot(
        stored, _snapshot(), _cause("op-cest", "Renew", earlier_elsewhere), T0
    ).subscription
    assert record.last_operation_id == "op-utc"
