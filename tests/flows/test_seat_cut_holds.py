"""End to end: a seat cut Microsoft announces holds the seats at the lower quantity until it is over.

The worker counts the seats beside GetOperation and decides; until the cut is mirrored, a seat assigned
against the stored (old, higher) quantity would license more people than the new quantity pays for. So an
accepted cut checks the seats again and holds the lower limit in one write, refusing the cut if a seat was
assigned in between, and its re-check releases the hold once Microsoft's final quantity is stored.
"""

from __future__ import annotations

import time

import pytest

from shared.domain.access import Role
from shared.domain.identity import Person
from shared.domain.seats import SeatLimitError
from shared.queueing.messages import track_message
from shared.workflows import publisher_changes
from shared.workflows.publisher_changes import Requester
from tests.support.sandbox import wait_until
from tests.support.stack import Stack

GET_OPERATION = "SubscriptionOperations_GetOperationStatus"
PURCHASER = frozenset({Role.PURCHASER})


def _final(stack: Stack, operation_id: str) -> str:
    return wait_until(
        lambda: (lambda op: op["status"] if op["status"] != "InProgress" else None)(
            stack.control.operation(operation_id)
        ),
        15,
    )


def _assign(stack: Stack, subscription_id: str, email: str, quantity: int) -> None:
    stack.services.seats.assign(subscription_id, email, quantity=quantity, assigned_by="test")


def test_an_accepted_cut_holds_the_seats_until_its_recheck_releases_them(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)

    operation_id = stack.control.change_quantity(subscription_id, 1)["operationId"]
    assert _final(stack, operation_id) == "Succeeded"
    stack.settled()
    assert stack.services.operations.get(subscription_id, operation_id).holds_seats

    # Held: even a caller that still believes in 3 seats gets one.
    _assign(stack, subscription_id, "one@contoso.example", 3)
    with pytest.raises(SeatLimitError):
        _assign(stack, subscription_id, "two@contoso.example", 3)

    # A re-check (sent now rather than waiting 15 s for the scheduled one, under another message id so
    # the queue does not take it for that one) finds the operation final and releases the hold.
    stack.queue.send(track_message(subscription_id, operation_id, "test-recheck", attempt=99))
    stack.settled()
    _assign(stack, subscription_id, "two@contoso.example", 3)
    assert stack.services.seats.count(subscription_id) == 2


def test_a_seat_assigned_while_the_cut_was_decided_makes_the_worker_refuse_it(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    # GetOperation hangs; the seat count beside it has long been read (0) when two seats are assigned.
    stack.control.add_fault(operation=GET_OPERATION, kind="hang", share=1, hangSeconds=2, maxCount=1)

    operation_id = stack.control.change_quantity(subscription_id, 1)["operationId"]
    wait_until(lambda: any(rule["hits"] for rule in stack.control.request("GET", "/faults")["faults"]), 10)
    time.sleep(0.3)
    _assign(stack, subscription_id, "one@contoso.example", 3)
    _assign(stack, subscription_id, "two@contoso.example", 3)

    assert _final(stack, operation_id) == "Failed"
    stack.settled()
    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.decision == "refuse"
    assert "below the 2 seats already assigned" in record.reason
    assert not record.holds_seats
    assert stack.microsoft(subscription_id)["quantity"] == 3
    assert stack.services.seats.count(subscription_id) == 2


def test_a_redelivery_keeps_the_hold_its_first_delivery_placed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first delivery holds the seats, records the decision, then crashes before the PATCH: the
    # redelivery decides (and holds) again, finds the first row, sends its decision, and must not let go of
    # the hold that row stands on while Microsoft applies the cut.
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    monkeypatch.setenv("FAULT_POINTS", "worker.after_state_write:1")  # armed after the activation used it

    operation_id = stack.control.change_quantity(subscription_id, 1)["operationId"]
    assert _final(stack, operation_id) == "Succeeded"
    stack.settled()

    record = stack.services.operations.get(subscription_id, operation_id)
    assert record.holds_seats
    assert stack.services.seats.holds(subscription_id).holds(operation_id)


def test_the_portals_cut_keeps_its_hold_through_the_workers_handling(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    subscription = stack.stored(subscription_id)
    buyer = Requester(
        Person.of(subscription.purchaser.tenant_id, subscription.purchaser.object_id), PURCHASER
    )

    operation_id = publisher_changes.change_quantity(
        subscription, "1", requester=buyer, ports=stack.services.change_ports, seats=stack.services.seats
    )
    record = wait_until(
        lambda: (lambda r: r if r is not None and r.decision == "accept" else None)(
            stack.services.operations.get(subscription_id, operation_id)
        ),
        15,
    )

    # The worker accepted the portal's own change and saved its row: the row still says it holds the seats,
    # under the request's correlation id, so its tracking releases that hold when the change is over.
    assert record.holds_seats
    assert stack.services.seats.holds(subscription_id).holds(record.correlation_id)
    stack.queue.send(track_message(subscription_id, operation_id, "test-recheck", attempt=99))
    stack.settled()
    wait_until(lambda: not stack.services.seats.holds(subscription_id).held, 10)
