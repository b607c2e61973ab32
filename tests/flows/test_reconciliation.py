"""Reconciliation repairs what webhooks and failed deliveries missed, driven by the dev host's real timer.

Each test makes Microsoft and our mirror disagree the way production would (a webhook lost, an activation
that failed until its message was dead-lettered, a change made while the app was down, a row lost on our
side), then starts the dev host's timer runner on `function_app.py`'s registrations with a fast
RECONCILE_SCHEDULE and waits for the sweep and the worker to repair it, with an audit entry by
`reconciliation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from devhost.timer_runner import TimerRunner
from shared.domain.changes import Change
from shared.queueing.messages import activation_message, reconcile_message
from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack

FAST_SCHEDULE = "*/2 * * * * *"
NOWHERE = "http://127.0.0.1:9/unreachable"


@contextmanager
def sweeping(monkeypatch: pytest.MonkeyPatch) -> Iterator[TimerRunner]:
    """The dev host's timer runner on the app's registrations, sweeping every two seconds."""
    import function_app

    monkeypatch.setenv("RECONCILE_SCHEDULE", FAST_SCHEDULE)
    monkeypatch.setenv("PURGE_SCHEDULE", "0 0 0 1 1 *")  # the other timer, out of the way
    runner = TimerRunner.for_app(function_app.app)
    assert runner is not None
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def lose_webhooks(stack: Stack) -> None:
    stack.control.settings(webhookUrl=NOWHERE, webhookMaxAttempts=1)


def reconciled(stack: Stack, subscription_id: str) -> list[dict[str, object]]:
    """The changes of each audit entry written by reconciliation."""
    return [
        dict(entry.changes)
        for entry in stack.services.audit.list(subscription_id)
        if entry.source == "reconciliation"
    ]


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[Stack]:
    with running_stack(
        monkeypatch, tmp_path, connection_string=azurite_connection_string, table_prefix=table_prefix
    ) as running:
        yield running


def test_a_lost_suspension_webhook_is_repaired_by_the_timer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription_id = stack.buy_and_activate("basic")
    lose_webhooks(stack)
    stack.control.suspend(subscription_id)
    assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Suspended"
    assert stack.stored(subscription_id).status.value == "Subscribed"  # the webhook never came

    with sweeping(monkeypatch) as timer:
        wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 15)
        wait_until(lambda: any("status" in changes for changes in reconciled(stack, subscription_id)), 10)
    assert timer.stats["reconciliation_sweep"].runs >= 1
    assert timer.stats["reconciliation_sweep"].failures == 0


def test_a_plan_changed_while_the_app_was_down_is_mirrored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    # Microsoft accepts an unanswered change after its window: one second here, ten minutes... in Azure.
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        auto_accept_seconds=1.0,
    ) as stack:
        subscription_id = stack.buy_and_activate("basic")
        lose_webhooks(stack)
        stack.control.change_plan(subscription_id, "pro")
        wait_until(lambda: stack.microsoft(subscription_id)["planId"] == "pro", 10)
        assert stack.stored(subscription_id).plan_id == "basic"

        with sweeping(monkeypatch):
            wait_until(lambda: stack.stored(subscription_id).plan_id == "pro", 15)
        assert any(changes.get("plan_id") for changes in reconciled(stack, subscription_id))


def test_a_change_microsoft_still_waits_on_is_answered_by_a_reconcile(stack: Stack) -> None:
    # The sweep leaves a subscription in step alone (an unanswered change shows up as drift once Microsoft's
    # window closes); reconciling the one subscription, as an operator does, answers it inside the window.
    subscription_id = stack.buy_and_activate("basic")
    lose_webhooks(stack)
    operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]
    assert stack.control.operation(operation_id)["status"] == "InProgress"

    stack.queue.send(reconcile_message(subscription_id, "operator", "test-reconcile"))
    wait_until(lambda: stack.control.operation(operation_id)["status"] == "Succeeded", 15)
    wait_until(lambda: stack.stored(subscription_id).plan_id == "pro", 15)
    assert "accepted by the publisher" in stack.control.operation(operation_id)["decision"]
    assert {"unanswered_operation": ("ChangePlan", "answered")} in reconciled(stack, subscription_id)


def test_an_activation_that_failed_five_times_is_finished_once_microsoft_recovers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        env={"FULFILLMENT_MAX_ATTEMPTS": "1"},  # one Activate per delivery
        max_delivery_count=5,
    ) as stack:
        fault = stack.control.add_fault(operation="FulfillmentOperations_ActivateSubscription", kind="500")
        subscription_id = confirmed_purchase(stack, "basic")
        stack.queue.send(activation_message(subscription_id, "basic", None, "test-activation"))
        wait_until(
            lambda: any(
                d.message.message_id == f"activate-{subscription_id}" for d in stack.queue.dead_letters()
            ),
            30,
        )
        assert next(f for f in stack.control.request("GET", "/faults")["faults"])["hits"] == 5
        assert fault["operation"] == "FulfillmentOperations_ActivateSubscription"
        assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "PendingFulfillmentStart"
        stack.control.clear_faults()

        with sweeping(monkeypatch):
            wait_until(lambda: stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Subscribed", 15)
            wait_until(lambda: stack.stored(subscription_id).status.value == "Subscribed", 15)
        activations = [
            entry for entry in stack.services.audit.list(subscription_id) if entry.action == "Activate"
        ]
        assert activations
        assert all(entry.source == "reconciliation" for entry in activations)


def test_a_row_lost_on_our_side_while_a_webhook_was_lost_is_recreated_from_microsoft(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, azurite_connection_string: str, table_prefix: str
) -> None:
    subscription_id = stack.buy_and_activate("basic")
    lose_webhooks(stack)
    stack.control.suspend(subscription_id)
    tables = TableServiceClient.from_connection_string(azurite_connection_string)
    tables.get_table_client(f"{table_prefix}subs").delete_entity(subscription_id, "subscription")
    assert stack.stored(subscription_id) is None

    with sweeping(monkeypatch):
        wait_until(lambda: stack.stored(subscription_id) is not None, 15)
    recreated = stack.stored(subscription_id)
    assert recreated.status.value == "Suspended"
    assert recreated.plan_id == "basic"
    assert any(changes.get("status") for changes in reconciled(stack, subscription_id))


def confirmed_purchase(stack: Stack, plan_id: str) -> str:
    """A purchase resolved and confirmed by the buyer (activation requested), not yet activated."""
    from shared.workflows.confirmation import record_purchase

    subscription_id: str = stack.control.buy(plan_id)["subscriptionId"]
    token = stack.control.new_token(subscription_id)["token"]
    record_purchase(stack.services.fulfillment.resolve(token), "test", sync=stack.services.sync_ports)

    def confirm(current: object) -> Change | None:
        assert current is not None
        return Change(replace(current, activation_requested_at=datetime.now(UTC)))  # type: ignore[type-var]

    stack.services.subscriptions.update(subscription_id, confirm)
    return subscription_id


def test_a_subscription_unknown_locally_is_created_from_the_listed_record_without_asking_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, azurite_connection_string: str, table_prefix: str
) -> None:
    # The sweep's page already holds Microsoft's record: a second GetSubscription per unknown subscription
    # doubled the round trips of a first sweep (fresh deployment, lost storage). With every GetSubscription
    # failing, the row can only come back from the listed record the reconcile message carries.
    subscription_id = stack.buy_and_activate("basic")
    lose_webhooks(stack)
    tables = TableServiceClient.from_connection_string(azurite_connection_string)
    tables.get_table_client(f"{table_prefix}subs").delete_entity(subscription_id, "subscription")
    stack.control.add_fault(operation="FulfillmentOperations_GetSubscription", kind="500", share=1)

    with sweeping(monkeypatch):
        wait_until(lambda: stack.stored(subscription_id) is not None, 15)
    recreated = stack.stored(subscription_id)
    assert recreated.status.value == "Subscribed"
    assert recreated.plan_id == "basic"
    assert any(changes.get("status") for changes in reconciled(stack, subscription_id))


def test_a_row_stored_since_the_sweep_listed_it_is_not_overwritten_from_the_list(stack: Stack) -> None:
    # Listed while Subscribed; the suspension's webhook then created a newer row before the reconcile ran.
    subscription_id = stack.buy_and_activate("basic")
    listed = stack.services.fulfillment.get_subscription(subscription_id)
    stack.control.suspend(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 15)
    stack.settled()

    stack.queue.send(reconcile_message(subscription_id, "sweep", "test-stale-list", listed=listed))
    stack.settled()
    assert stack.stored(subscription_id).status.value == "Suspended"
    assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Suspended"
