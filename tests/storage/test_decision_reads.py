"""The reads a change decision starts while GetOperation is on the wire, in a burst (stores on Azurite).

They go to a small shared pool. A pooled read once waited on a second pooled read (the seat counter): as soon
as every pool thread held such a read, nothing could run the reads they waited for, and every worker stalled
until Microsoft's window closed (a burst of 60 changes over 10 subscriptions got 2 answers). Many messages
starting their reads at the same instant must all get their facts.
"""

from __future__ import annotations

import threading
import time
import uuid

from shared.config import Settings
from shared.domain.policy import PublisherPolicy
from shared.queueing.memory import InMemoryQueue
from shared.storage.licenses import LicenseIndex
from shared.storage.seats import SeatStore
from shared.storage.tables import TableSet
from shared.workflows.operations import OperationPorts, _read_ahead
from shared.workflows.sync import SyncPorts

AT_ONCE = 12  # three times the decision-read pool's threads


def test_decision_reads_started_by_many_messages_at_once_all_complete(
    azurite_connection_string: str, table_prefix: str
) -> None:
    tables = TableSet.from_settings(
        Settings(storage_connection_string=azurite_connection_string, table_subscriptions=f"{table_prefix}s")
    )
    ports = OperationPorts(
        sync=SyncPorts(
            marketplace=None,  # not called: the reads ahead touch only our own tables
            subscriptions=tables.subscriptions,
            seats=SeatStore(tables.table(f"{table_prefix}seats")),
            licenses=LicenseIndex(tables.table(f"{table_prefix}seatslicenses")),
        ),
        inbox=tables.operations,
        audit=tables.audit,
        events=InMemoryQueue(),
        policy=PublisherPolicy(refuse_quantity_below_assigned=True),  # so the seat counter is read too
    )
    start_together = threading.Barrier(AT_ONCE)
    results: list[object] = []

    def read_for_one_message() -> None:
        start_together.wait()
        ahead = _read_ahead(ports, str(uuid.uuid4()), None, {"action": "ChangeQuantity"})
        assert ahead is not None
        results.append(ahead.result())

    # Daemon threads, joined with a deadline: a stalled pool fails this test instead of hanging it.
    threads = [threading.Thread(target=read_for_one_message, daemon=True) for _ in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))

    assert len(results) == AT_ONCE, f"only {len(results)} of {AT_ONCE} messages got their facts"
