"""What one webhook ChangeQuantity costs in Table Storage round trips, counted on the wire.

The whole stack runs against Azurite behind the counting proxy (tests/support/storage_counter.py), so the
count is every request the Azure SDK sends, nothing patched. The number is pinned: a store that re-reads a
row it has just written, or a new read on the worker's path, shows up here as a failing count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.storage.tables import TableSet
from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack
from tests.support.storage_counter import CountingStorageProxy

# Per webhook ChangeQuantity (accepted, no seat assigned), by table and HTTP method.
# Before the PATCH (Microsoft's window, R34/R36), only what the decision needs:
#   ops:      POST (the one durable record: the row inserted with the decision in it; a change is not looked
#             up first, a row stored already makes this insert fail and the handling start from that row)
#   subs:     GET (the policy reads the subscription; the mirror starts from this read)
#   seats:    GET (seat counter for the policy; on a second thread, beside the subscription read)
# After the PATCH, bookkeeping:
#   subs:     POST (decision audit row), POST $batch (mirror: row and audit row in one transaction)
#   ops:      PUT x2 (acknowledged, done)
#   seats:    GET (seat holders for the license index)
#   licenses: GET (the index rows the new quantity rewrites)
# Before this layout: 7 before the PATCH (inbox saved three times, subscription read twice) and 12 in all;
# then 4 and 10 while the inbox was looked up before the insert.
EXPECTED_BEFORE_ANSWER = 3
EXPECTED_TOTAL = 9


@pytest.fixture
def counted_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[tuple[Stack, CountingStorageProxy, str]]:
    with (
        CountingStorageProxy(azurite_connection_string) as proxy,
        running_stack(
            monkeypatch, tmp_path, connection_string=proxy.connection_string, table_prefix=table_prefix
        ) as stack,
    ):
        yield stack, proxy, table_prefix


def test_one_change_quantity_costs_a_fixed_number_of_round_trips(
    counted_stack: tuple[Stack, CountingStorageProxy, str], azurite_connection_string: str
) -> None:
    stack, proxy, prefix = counted_stack
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)
    stack.settled()
    proxy.clear()
    # Each request is labelled with whether Microsoft still waits for our answer when it arrives: the
    # worker sends the PATCH and waits for its reply, so the label splits the path exactly.
    marketplace = stack.sandbox.marketplace
    proxy.label_with(lambda: "before" if marketplace.pending_operations(subscription_id) else "after")

    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]

    # The test watches through its own clients, straight to Azurite, so only the app's requests count.
    direct = TableSet.from_settings(
        Settings(
            storage_connection_string=azurite_connection_string,
            table_subscriptions=f"{prefix}subs",
            table_operations=f"{prefix}ops",
        )
    )
    wait_until(lambda: _quantity(direct, subscription_id) == 7, 10)
    wait_until(lambda: _inbox_state(direct, subscription_id, operation_id) == "done", 10)
    stack.settled()
    # Creating a table (POST /Tables) happens once per process on first use, not once per event.
    seen = [
        (label, method, path)
        for label, method, path in proxy.labelled_requests()
        if not _is_table_creation(path)
    ]
    by_table = Counter(f"{label} {_table_of(path, prefix)} {method}" for label, method, path in seen)
    before = [request for request in seen if request[0] == "before"]
    print("round trips per ChangeQuantity:", len(before), "before the PATCH,", len(seen), "in all")
    print(dict(sorted(by_table.items())))
    assert marketplace.operation_record(operation_id).decision.endswith("(PATCH Success)")
    assert len(before) == EXPECTED_BEFORE_ANSWER, dict(sorted(by_table.items()))
    assert len(seen) == EXPECTED_TOTAL, dict(sorted(by_table.items()))


def _quantity(tables: TableSet, subscription_id: str) -> int | None:
    stored = tables.subscriptions.get(subscription_id)
    return None if stored is None else stored.quantity


def _inbox_state(tables: TableSet, subscription_id: str, operation_id: str) -> str:
    record = tables.operations.get(subscription_id, operation_id)
    return "" if record is None else str(record.state)


def _is_table_creation(path: str) -> bool:
    return path.split("?", 1)[0].rstrip("/").endswith("/Tables")


def _table_of(path: str, prefix: str) -> str:
    name = path.split("?", 1)[0].split("/")[2].split("(")[0]
    return name.removeprefix(prefix)
