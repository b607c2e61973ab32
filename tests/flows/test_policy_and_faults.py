"""End to end: the publisher's policy refusing changes, and convergence despite faults and crashes.

Faults come from the sandbox (429 with Retry-After, 500, hangs, for a share of calls) and from a fault
point inside the worker (a crash between writing our state and answering Microsoft). In every case the
service must end where Microsoft is, with nothing lost and nothing done twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack


def start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: str, prefix: str, **kwargs: object):
    return running_stack(monkeypatch, tmp_path, connection_string=azurite, table_prefix=prefix, **kwargs)


def final_status(stack: Stack, operation_id: str) -> str:
    return wait_until(
        lambda: (lambda op: op["status"] if op["status"] != "InProgress" else None)(
            stack.control.operation(operation_id)
        ),
        12,
    )


DOWNGRADES_BLOCKED = {"POLICY_BLOCK_DOWNGRADES": "true", "POLICY_PLAN_ORDER": "basic,pro"}


def test_a_blocked_downgrade_is_refused_and_microsoft_keeps_the_plan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    with start(
        monkeypatch, tmp_path, azurite_connection_string, table_prefix, env=DOWNGRADES_BLOCKED
    ) as stack:
        subscription_id = stack.buy_and_activate("pro")

        operation_id = stack.control.change_plan(subscription_id, "basic")["operationId"]

        assert final_status(stack, operation_id) == "Failed"
        assert "PATCH Failure" in stack.sandbox.marketplace.operation_record(operation_id).decision
        stack.settled()
        assert stack.microsoft(subscription_id)["planId"] == "pro"
        assert stack.stored(subscription_id).plan_id == "pro"
        record = stack.services.operations.get(subscription_id, operation_id)
        assert record.decision == "refuse"
        assert "downgrade" in record.reason


def test_an_ignored_refusal_still_converges_to_microsofts_plan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    with start(
        monkeypatch,
        tmp_path,
        azurite_connection_string,
        table_prefix,
        env=DOWNGRADES_BLOCKED,
        ignore_rejections=True,
    ) as stack:
        subscription_id = stack.buy_and_activate("pro")

        stack.control.change_plan(subscription_id, "basic")

        wait_until(lambda: stack.microsoft(subscription_id)["planId"] == "basic", 10)
        wait_until(lambda: stack.stored(subscription_id).plan_id == "basic", 10)


def test_a_quantity_below_the_assigned_seats_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    with start(monkeypatch, tmp_path, azurite_connection_string, table_prefix) as stack:
        subscription_id = stack.buy_and_activate("team-seats", quantity=5)
        for n in range(4):
            stack.services.seats.assign(
                subscription_id, f"user{n}@contoso.example", quantity=5, assigned_by="test"
            )

        operation_id = stack.control.change_quantity(subscription_id, 2)["operationId"]

        assert final_status(stack, operation_id) == "Failed"
        stack.settled()
        assert stack.microsoft(subscription_id)["quantity"] == 5
        assert stack.stored(subscription_id).quantity == 5


def test_throttling_and_server_errors_on_a_share_of_calls_lose_nothing_and_do_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    with start(monkeypatch, tmp_path, azurite_connection_string, table_prefix) as stack:
        stack.control.add_fault(operation="*", kind="429", share=0.3, retryAfter=1, seed=7)
        stack.control.add_fault(operation="*", kind="500", share=0.3, seed=11)

        subscription_id = stack.buy_and_activate("basic")
        plan_change = stack.control.change_plan(subscription_id, "pro")["operationId"]
        assert final_status(stack, plan_change) == "Succeeded"
        suspend = stack.control.suspend(subscription_id)["operationId"]
        wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 20)
        stack.settled(30)

        stored = stack.stored(subscription_id)
        assert stored.plan_id == "pro"
        assert stored.last_operation_id == suspend
        assert not stack.queue.dead_letters()
        hits = sum(rule["hits"] for rule in stack.control.request("GET", "/faults")["faults"])
        assert hits > 0, "the faults must actually have fired"
        audit = [entry.action for entry in stack.services.audit.list(subscription_id)]
        assert audit.count("Provisioned") == 1
        assert audit.count("ChangePlanDecision") == 1


def test_calls_that_hang_past_the_read_timeout_are_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    env = {"FULFILLMENT_READ_TIMEOUT": "0.5"}
    with start(monkeypatch, tmp_path, azurite_connection_string, table_prefix, env=env) as stack:
        stack.control.add_fault(
            operation="FulfillmentOperations_GetSubscription",
            kind="hang",
            share=1.0,
            hangSeconds=1.5,
            maxCount=2,
        )

        subscription_id = stack.buy_and_activate("basic")

        assert stack.stored(subscription_id).status.value == "Subscribed"
        assert not stack.queue.dead_letters()


def test_a_crash_between_writing_state_and_answering_microsoft_converges_on_redelivery(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    # Two crashes: once after provisioning (before Activate), once after deciding a change (before PATCH).
    env = {"FAULT_POINTS": "worker.after_state_write:2"}
    with start(monkeypatch, tmp_path, azurite_connection_string, table_prefix, env=env) as stack:
        subscription_id = stack.buy_and_activate("basic")

        operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]

        assert final_status(stack, operation_id) == "Succeeded"
        assert "PATCH Success" in stack.sandbox.marketplace.operation_record(operation_id).decision
        wait_until(lambda: stack.stored(subscription_id).plan_id == "pro", 10)
        stack.settled()
        audit = [entry.action for entry in stack.services.audit.list(subscription_id)]
        assert audit.count("Provisioned") == 1
        assert audit.count("ChangePlanDecision") == 1
        assert stack.services.operations.get(subscription_id, operation_id).state == "done"


def test_a_crash_right_after_answering_microsoft_keeps_one_answer_and_one_audited_decision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    # The bookkeeping after the PATCH (audit row, `acknowledged`, re-check, mirror) is not on the answer's
    # critical path: a crash there must neither lose the decision's audit row nor change the answer.
    env = {"FAULT_POINTS": "worker.after_answer:1"}
    with start(monkeypatch, tmp_path, azurite_connection_string, table_prefix, env=env) as stack:
        subscription_id = stack.buy_and_activate("basic")

        operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]

        assert final_status(stack, operation_id) == "Succeeded"
        assert "PATCH Success" in stack.sandbox.marketplace.operation_record(operation_id).decision
        wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 10)
        stack.settled()
        assert stack.stored(subscription_id).plan_id == "pro"
        audit = [entry.action for entry in stack.services.audit.list(subscription_id)]
        assert audit.count("ChangePlanDecision") == 1
        record = stack.services.operations.get(subscription_id, operation_id)
        assert record.decision == "accept"
        assert not stack.queue.dead_letters()
