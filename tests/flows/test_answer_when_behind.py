"""A change that waited in the queue (a burst) is answered with the least work, and mirrored by its re-check.

The sandbox's own webhook goes nowhere here; the test puts Microsoft's notification on the local queue itself
with the time the webhook would have taken it in, so the worker sees how long the message waited. Round trips
are counted on the wire by the counting proxy in front of Azurite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.domain.answer_window import ANSWER_WINDOW, BEHIND_AFTER, RECHECK_AFTER_WHEN_BEHIND
from shared.domain.audit import AuditAction
from shared.domain.status import Action
from shared.queueing.messages import MessageKind, track_message, webhook_message
from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack
from tests.support.storage_counter import CountingStorageProxy

# While behind, per accepted seat increase: before the PATCH the subscription and the seat count read beside
# GetOperation, and the inbox row with the decision (no lookup first); after it only the `acknowledged` mark.
# The decision's audit row and the mirror (GetSubscription, $batch, license index) wait for the re-check.
EXPECTED_BEFORE_ANSWER = 3
EXPECTED_TOTAL = 4
DECISION = AuditAction.decision_on(Action.CHANGE_QUANTITY).value


@pytest.fixture
def counted_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[tuple[Stack, CountingStorageProxy]]:
    with (
        CountingStorageProxy(azurite_connection_string) as proxy,
        running_stack(
            monkeypatch, tmp_path, connection_string=proxy.connection_string, table_prefix=table_prefix
        ) as stack,
    ):
        yield stack, proxy


def _scheduled_rechecks(stack: Stack, operation_id: str) -> list[float]:
    """Seconds from now until each queued re-check of the operation is due."""
    now = datetime.now(UTC)
    return [
        (entry.enqueued_time - now).total_seconds()  # the local queue's "available at"
        for entry in stack.queue.peek_all()
        if entry.message.body.get("kind") == MessageKind.TRACK
        and entry.message.body.get("operationId") == operation_id
    ]


def test_a_change_that_waited_is_answered_first_and_mirrored_by_its_recheck(
    counted_stack: tuple[Stack, CountingStorageProxy],
) -> None:
    stack, proxy = counted_stack
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]
    marketplace = stack.sandbox.marketplace
    proxy.clear()
    proxy.label_with(lambda: "before" if marketplace.pending_operations(subscription_id) else "after")

    stack.announce(subscription_id, operation_id, waited=BEHIND_AFTER + timedelta(seconds=1))

    wait_until(lambda: marketplace.operation_record(operation_id).decision.endswith("(PATCH Success)"), 8)
    stack.settled()
    # Taken before the test's own reads below, which go through the same proxy.
    seen = [request for request in proxy.labelled_requests() if "/Tables" not in request[2]]
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.state == "acknowledged"
    assert record.left_to_recheck
    assert stack.stored(subscription_id).quantity == 3, "the mirror waits for the re-check"
    assert DECISION not in stack.audit_actions(subscription_id), "so does the decision's audit row"
    due = _scheduled_rechecks(stack, operation_id)
    assert len(due) == 1, due
    assert due[0] > RECHECK_AFTER_WHEN_BEHIND.total_seconds() - 10, due
    by_kind = Counter(f"{label} {method} {path.split('?')[0].split('(')[0]}" for label, method, path in seen)
    assert len([1 for label, _, _ in seen if label == "before"]) == EXPECTED_BEFORE_ANSWER, by_kind
    assert len(seen) == EXPECTED_TOTAL, by_kind

    # The re-check, now instead of in a minute: it mirrors Microsoft's new quantity and closes the record.
    stack.queue.send(track_message(subscription_id, operation_id, "behind-test", attempt=1))
    wait_until(lambda: stack.stored(subscription_id).quantity == 7, 8)
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 8)
    closed = stack.services.operations.get(subscription_id, operation_id)
    assert closed.outcome == "Succeeded"
    assert not closed.left_to_recheck
    assert "ChangeQuantity" in stack.audit_actions(subscription_id)
    assert stack.audit_actions(subscription_id).count(DECISION) == 1


def test_a_change_that_did_not_wait_is_mirrored_at_once(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 6)["operationId"]

    stack.announce(subscription_id, operation_id, waited=timedelta(0))

    wait_until(lambda: stack.stored(subscription_id).quantity == 6, 8)
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 8)
    # The console's webhook-to-answer latency: when the webhook took it in, when our PATCH got there.
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.received_at is not None
    assert record.answered_at is not None
    assert timedelta(0) <= record.answered_at - record.received_at < timedelta(seconds=10)


def test_an_accepted_plan_change_is_mirrored_at_once_even_when_behind(stack: Stack) -> None:
    # The next plan decision reads the stored plan: left stale for a minute, a downgrade after this upgrade
    # would be judged from the old plan and pass as an upgrade.
    subscription_id = stack.buy_and_activate("basic")
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_plan(subscription_id, "pro")["operationId"]

    stack.announce(subscription_id, operation_id, waited=BEHIND_AFTER + timedelta(seconds=1))

    wait_until(lambda: stack.stored(subscription_id).plan_id == "pro", 8)
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 8)


def test_an_accepted_seat_cut_is_mirrored_at_once_even_when_behind(stack: Stack) -> None:
    # Seat assignment reads the stored quantity: left at the old, higher one, seats past the new limit could
    # be handed out until the re-check.
    subscription_id = stack.buy_and_activate("team-seats", quantity=8)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 5)["operationId"]

    stack.announce(subscription_id, operation_id, waited=BEHIND_AFTER + timedelta(seconds=1))

    wait_until(lambda: stack.stored(subscription_id).quantity == 5, 8)


def test_a_redelivery_that_finds_the_change_final_writes_the_decision_left_to_the_recheck(
    stack: Stack,
) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1)
    operation_id = stack.control.change_quantity(subscription_id, 9)["operationId"]
    stack.announce(subscription_id, operation_id, waited=BEHIND_AFTER + timedelta(seconds=1))
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id) is not None, 8)
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).left_to_recheck, 8)

    # Microsoft sends the notification again after duplicate detection's window (a new message); the
    # operation is final by now (our PATCH accepted it).
    payload = stack.sandbox.marketplace.operation(subscription_id, operation_id)
    again = webhook_message(payload, received_at=datetime.now(UTC).isoformat(), correlation_id="again")
    stack.queue.send(replace(again, message_id=f"{again.message_id}-again"))

    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 8)
    assert stack.audit_actions(subscription_id).count(DECISION) == 1
    assert stack.stored(subscription_id).quantity == 9


def test_a_change_microsoft_decided_while_it_waited_is_left_to_its_recheck(stack: Stack) -> None:
    # Behind the window (auto-accepted already), nothing is owed to Microsoft: the mirror waits for the
    # re-check, so the changes still inside their window get the worker first.
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    stack.control.settings(
        webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1, autoAcceptSeconds=0.2
    )
    operation_id = stack.control.change_quantity(subscription_id, 4)["operationId"]
    wait_until(lambda: stack.control.operation(operation_id)["status"] == "Succeeded", 8)

    stack.announce(subscription_id, operation_id, waited=ANSWER_WINDOW + timedelta(seconds=1))

    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id) is not None, 8)
    stack.settled()
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.left_to_recheck
    assert record.decision == "Succeeded"
    assert stack.stored(subscription_id).quantity == 3
    assert len(_scheduled_rechecks(stack, operation_id)) == 1

    stack.queue.send(track_message(subscription_id, operation_id, "behind-test", attempt=1))
    wait_until(lambda: stack.stored(subscription_id).quantity == 4, 8)
    wait_until(lambda: stack.services.operations.get(subscription_id, operation_id).state == "done", 8)
    assert DECISION not in stack.audit_actions(subscription_id), "Microsoft decided: no decision of ours"
