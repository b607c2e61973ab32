"""A change is not looked up before its decision goes in: a row stored first still decides what is sent.

The worker inserts a change's decision as the operation's first inbox row without reading the inbox first
(one Table round trip less inside Microsoft's window). When a row is there already, the insert fails before
anything is sent and the handling starts again from that row. These tests store such a row first, then put
Microsoft's notification on the queue, and check which answer reached the sandbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.domain.inbox import InboxRecord, InboxState
from shared.queueing.messages import webhook_message
from tests.support.sandbox import wait_until
from tests.support.stack import Stack


def _row(subscription_id: str, operation_id: str, **fields: object) -> InboxRecord:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "subscription_id": subscription_id,
        "operation_id": operation_id,
        "action": "ChangeQuantity",
        "state": InboxState.RECEIVED,
        "source": "Customer",
        "correlation_id": "stored-first",
        "created_at": now,
        "updated_at": now,
    }
    return InboxRecord(**{**base, **fields})  # type: ignore[arg-type]


def test_a_refusal_recorded_before_the_webhook_is_the_answer_sent(stack: Stack) -> None:
    # The policy accepts a seat increase; a refusal already recorded (an operator's, whose PATCH a crash
    # stopped) must be the one answer Microsoft gets, not the policy's fresh "accept".
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]
    stored = _row(
        subscription_id, operation_id, quantity=7, decision="refuse", reason="held", decided_by="ops@x"
    )
    assert stack.services.operations.put_new(stored) is not None

    stack.announce(subscription_id, operation_id)

    marketplace = stack.sandbox.marketplace
    wait_until(lambda: marketplace.operation_record(operation_id).decision.endswith("(PATCH Failure)"), 8)
    stack.settled()
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.decision == "refuse"
    assert record.decided_by == "ops@x"
    assert stack.stored(subscription_id).quantity == 3


def test_a_row_without_a_decision_gets_the_policys_decision_under_its_etag(stack: Stack) -> None:
    # A row stored without a decision (an older version's, or one received and never decided): the policy
    # decides, the decision goes into that row, and the answer is sent once.
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 6)["operationId"]
    assert stack.services.operations.put_new(_row(subscription_id, operation_id, quantity=6)) is not None

    stack.announce(subscription_id, operation_id)

    marketplace = stack.sandbox.marketplace
    wait_until(lambda: marketplace.operation_record(operation_id).decision.endswith("(PATCH Success)"), 8)
    wait_until(lambda: stack.stored(subscription_id).quantity == 6, 8)
    stack.settled()
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.decision == "accept"
    assert record.state == InboxState.DONE


def test_a_change_already_done_is_not_answered_again(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 5)["operationId"]
    done = _row(subscription_id, operation_id, quantity=5, decision="refuse", state=InboxState.DONE)
    assert stack.services.operations.put_new(done) is not None

    stack.announce(subscription_id, operation_id)

    stack.settled()
    # Nothing sent: the operation still waits for an answer at Microsoft, and the row is as it was.
    assert stack.control.operation(operation_id)["status"] == "InProgress"
    assert stack.services.operations.get(subscription_id, operation_id).decision == "refuse"


def test_a_stored_refusal_is_sent_even_while_the_policys_reads_fail(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looked up first, a decided row never needed the policy's reads; handled without a lookup, it must not
    # wait on them either, or the recorded refusal never reaches Microsoft before its window closes.
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]
    stored = _row(subscription_id, operation_id, quantity=7, decision="refuse", decided_by="ops@x")
    assert stack.services.operations.put_new(stored) is not None
    monkeypatch.setenv("FAULT_POINTS", "worker.policy_reads")  # every read of the policy's facts fails

    stack.announce(subscription_id, operation_id)

    marketplace = stack.sandbox.marketplace
    wait_until(lambda: marketplace.operation_record(operation_id).decision.endswith("(PATCH Failure)"), 8)


def test_a_duplicate_of_a_finished_change_is_not_parked_when_microsoft_no_longer_knows_it(
    stack: Stack,
) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    real = stack.control.change_quantity(subscription_id, 5)["operationId"]
    forgotten = str(uuid.uuid4())  # finished here; GetOperation answers 404 for it now
    done = _row(subscription_id, forgotten, quantity=5, decision="accept", state=InboxState.DONE)
    assert stack.services.operations.put_new(done) is not None
    payload = {**stack.sandbox.marketplace.operation(subscription_id, real), "id": forgotten}
    received = datetime.now(UTC).isoformat(timespec="milliseconds")

    stack.queue.send(webhook_message(payload, received_at=received, correlation_id="stored-first"))

    stack.settled()
    assert not stack.queue.dead_letters()
    assert stack.services.operations.get(subscription_id, forgotten).state == InboxState.DONE
