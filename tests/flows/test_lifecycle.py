"""End to end over real sockets: the sandbox plays Microsoft, the dev host runs the registered functions.

Each test buys in the sandbox, lets the worker activate, then acts from "Microsoft's side" and checks both
sides agree: the sandbox's view (what Microsoft bills) and the publisher's Table Storage mirror.
"""

from __future__ import annotations

import requests

from tests.support.sandbox import wait_until
from tests.support.stack import Stack


def operation_status(stack: Stack, operation_id: str) -> str:
    return stack.control.operation(operation_id)["status"]


def test_activation_makes_both_sides_subscribed_and_audits_it(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=5)

    stored = stack.stored(subscription_id)
    assert stored.plan_id == "team-seats"
    assert stored.quantity == 5
    assert stored.activated_at is not None
    assert stored.provisioned
    actions = [entry.action for entry in stack.services.audit.list(subscription_id)]
    assert "Provisioned" in actions
    assert "Activate" in actions


def test_a_second_activation_request_activates_nothing_twice(stack: Stack) -> None:
    from shared.queueing.messages import activation_message

    subscription_id = stack.buy_and_activate("basic")
    term_start = stack.microsoft(subscription_id)["term"]["startDate"]
    stack.queue.send(activation_message(subscription_id, "basic", None, "again-after-window"))
    stack.settled()

    audit = [entry.action for entry in stack.services.audit.list(subscription_id)]
    assert audit.count("Provisioned") == 1
    assert stack.microsoft(subscription_id)["term"]["startDate"] == term_start
    assert not stack.queue.dead_letters()
    assert stack.stored(subscription_id).status.value == "Subscribed"


def test_customer_plan_change_is_accepted_inside_the_window(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("basic")

    operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]

    wait_until(lambda: operation_status(stack, operation_id) == "Succeeded", 8)
    operation = stack.sandbox.marketplace.operation_record(operation_id)
    assert "PATCH Success" in operation.decision, "the worker must answer before Microsoft's window closes"
    wait_until(lambda: stack.stored(subscription_id).plan_id == "pro", 8)
    assert stack.microsoft(subscription_id)["planId"] == "pro"
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.decision == "accept"


def test_customer_quantity_change_is_mirrored(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)

    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]

    wait_until(lambda: operation_status(stack, operation_id) == "Succeeded", 8)
    wait_until(lambda: stack.stored(subscription_id).quantity == 7, 8)


def test_suspend_reinstate_renew_and_unsubscribe_are_mirrored(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("basic")
    term_end = stack.stored(subscription_id).term.end

    stack.control.suspend(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 8)
    stack.control.reinstate(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).status.value == "Subscribed", 8)
    stack.control.renew(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).term.end != term_end, 8)
    stack.control.unsubscribe(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).status.value == "Unsubscribed", 8)

    stored = stack.stored(subscription_id)
    assert stored.unsubscribed_at is not None
    assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Unsubscribed"


def test_a_duplicated_webhook_is_handled_once(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("basic")
    operation_id = stack.control.suspend(subscription_id)["operationId"]
    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 8)
    stack.settled()
    audit_before = len(stack.services.audit.list(subscription_id))

    # Microsoft sends the same notification again (R37: up to 500 times).
    body = stack.sandbox.marketplace.operation(subscription_id, operation_id)
    token = stack.sandbox.entra.mint_webhook_token()
    for _ in range(3):
        answer = requests.post(
            f"{stack.app_url}/api/webhook",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200
    stack.settled()

    assert len(stack.services.audit.list(subscription_id)) == audit_before
    assert stack.services.operations.get(subscription_id, operation_id).state == "done"


def test_a_forged_operation_with_a_valid_token_changes_nothing(stack: Stack) -> None:
    import uuid

    subscription_id = stack.buy_and_activate("basic")
    token = stack.sandbox.entra.mint_webhook_token()
    forged = {
        "id": str(uuid.uuid4()),
        "subscriptionId": subscription_id,
        "action": "Unsubscribe",
        "status": "Succeeded",
        "saasSubscriptionStatus": "Unsubscribed",
    }
    answer = requests.post(
        f"{stack.app_url}/api/webhook", json=forged, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200  # accepted for checking: the webhook never calls Microsoft (R82)

    wait_until(lambda: any(d.message.message_id == forged["id"] for d in stack.queue.dead_letters()), 10)
    [parked] = [d for d in stack.queue.dead_letters() if d.message.message_id == forged["id"]]
    assert parked.reason == "UnknownOperation"
    assert stack.stored(subscription_id).status.value == "Subscribed"
