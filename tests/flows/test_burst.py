"""Many changes over many subscriptions at once, with the worker running host.json's session limit (16),
as under `make dev` and the Functions host: every ChangeQuantity is answered by the worker's PATCH inside
Microsoft's window. (`tests/storage/test_decision_reads.py` pins the pool stall a burst once caused.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.sandbox import wait_until
from tests.support.stack import Stack

SUBSCRIPTIONS = 12  # more than the decision-read pool has threads (4), fewer than the session limit (16)
CHANGES_EACH = 3


def test_changes_to_many_subscriptions_at_once_are_each_answered_inside_the_window(stack: Stack) -> None:
    ids = [stack.buy_and_activate("team-seats", quantity=3) for _ in range(SUBSCRIPTIONS)]

    changes = [(sid, 4 + n) for n in range(CHANGES_EACH) for sid in ids]
    with ThreadPoolExecutor(max_workers=8) as fire:
        started = list(fire.map(lambda c: stack.control.change_quantity(*c)["operationId"], changes))

    def decided() -> bool:
        return all(stack.control.operation(op)["status"] != "InProgress" for op in started)

    wait_until(decided, 30)
    decisions = [stack.sandbox.marketplace.operation_record(op).decision for op in started]
    assert all("PATCH Success" in decision for decision in decisions), decisions
