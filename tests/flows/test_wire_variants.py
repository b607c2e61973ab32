"""End to end with the sandbox answering in the spelling of Microsoft's SaaS API emulator.

ListOperations comes back as a bare array and every operation names its source `operationRequestedSource`
(docs/wire-variants.md). The app must read both: a reconcile must not be dead-lettered, and a change the
publisher asked for must be recorded as "Partner" and decided as the publisher's own request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.queueing.messages import reconcile_message
from tests.support.ports import refusing_port
from tests.support.sandbox import ApiCaller, wait_until
from tests.support.stack import Stack, running_stack

# The policy refuses downgrades, so only the "Partner" branch of the decision can accept one.
DOWNGRADES_BLOCKED = {"POLICY_BLOCK_DOWNGRADES": "true", "POLICY_PLAN_ORDER": "basic,pro"}


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[Stack]:
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        env=DOWNGRADES_BLOCKED,
        emulator_wire_format=True,
        auto_accept_seconds=60.0,  # every outcome below is the app's answer, never the window closing
    ) as running:
        yield running


def final_status(stack: Stack, operation_id: str) -> str:
    return wait_until(
        lambda: (lambda op: op["status"] if op["status"] != "InProgress" else None)(
            stack.control.operation(operation_id)
        ),
        15,
    )


def test_the_sandbox_really_answers_in_the_emulators_spelling(stack: Stack) -> None:
    """Guards the tests below: without the switch they would prove nothing."""
    subscription_id = stack.buy_and_activate("pro")
    with refusing_port() as port:
        stack.control.settings(webhookUrl=f"http://127.0.0.1:{port}/api/webhook")
        stack.control.change_plan(subscription_id, "basic")
        answer = ApiCaller(stack.sandbox).call("GET", f"/subscriptions/{subscription_id}/operations").json()
    assert isinstance(answer, list)
    assert answer[0]["operationRequestedSource"] == "Azure"
    assert "operationRequestSource" not in answer[0]


def test_a_partner_change_keeps_its_source_and_is_accepted_as_the_publishers_own(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("pro")

    operation_id = stack.services.fulfillment.change_plan(subscription_id, "basic")

    assert final_status(stack, operation_id) == "Succeeded"
    assert "PATCH Success" in stack.sandbox.marketplace.operation_record(operation_id).decision
    stack.settled()
    record = stack.services.operations.get(subscription_id, operation_id)
    assert (record.source, record.decision) == ("Partner", "accept")
    wait_until(lambda: stack.stored(subscription_id).plan_id == "basic", 15)
    entries = [e for e in stack.services.audit.list(subscription_id) if e.operation_id == operation_id]
    assert entries, "the change is in the audit trail"
    assert {e.source for e in entries if e.action == "ChangePlan"} == {"Partner"}


def test_a_reconcile_reads_a_bare_array_and_answers_the_missed_operation(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("basic")
    with refusing_port() as port:
        # The webhook never arrives: only the reconcile's ListOperations can find the change.
        stack.control.settings(webhookUrl=f"http://127.0.0.1:{port}/api/webhook")
        operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]

        stack.queue.send(reconcile_message(subscription_id, "test", "wire-variants"))

        assert final_status(stack, operation_id) == "Succeeded"
        stack.settled()
    assert stack.queue.counts().dead_lettered == 0
    record = stack.services.operations.get(subscription_id, operation_id)
    assert (record.source, record.decision) == ("Azure", "accept")
