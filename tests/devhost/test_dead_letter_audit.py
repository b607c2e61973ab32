"""Every replay and discard is on the audit trail before the queue acts: the workflow on the local queue and
a real `AuditTrail` on Azurite. An audit that cannot be written is made real (the table is deleted), so the
entry must stay where it was; a body naming no subscription is audited in the fixed partition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from devhost.local_queue import LocalDeadLetters, LocalQueue
from shared.domain.audit import AuditAction, AuditEntry
from shared.domain.dead_letters import DeadLetterSelection, DeadLetterSource
from shared.queueing.messages import QueueMessage
from shared.storage.audit import AuditTrail
from shared.workflows.dead_letters import (
    UNASSIGNED_SUBSCRIPTION,
    DeadLetterOutcome,
    DeadLetterPorts,
    discard_dead_letters,
    list_dead_letters,
    replay_dead_letters,
)

A = AuditAction


def message(message_id: str, session_id: str = "sub-1") -> QueueMessage:
    body = {"kind": "webhook", "payload": {"id": message_id, "subscriptionId": session_id}}
    return QueueMessage(message_id=message_id, session_id=session_id, body=body, correlation_id="c")


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[LocalQueue]:
    with LocalQueue(tmp_path / "queue.sqlite3", max_delivery_count=1) as q:
        yield q


@pytest.fixture
def service(azurite_connection_string: str) -> TableServiceClient:
    return TableServiceClient.from_connection_string(azurite_connection_string)


@pytest.fixture
def trail(service: TableServiceClient, table_prefix: str) -> AuditTrail:
    return AuditTrail(service.create_table_if_not_exists(f"{table_prefix}subs"))


@pytest.fixture
def broken_trail(service: TableServiceClient, table_prefix: str) -> AuditTrail:
    """A trail whose table is gone: every append fails in the storage service, as an outage would."""
    name = f"{table_prefix}gone"
    table = service.create_table_if_not_exists(name)
    service.delete_table(name)
    return AuditTrail(table)


class OutcomeNotWritten:
    """An `AuditLog` (the port) that takes the request and then fails, as storage failing mid-way would."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail
        self.calls = 0

    def append(self, entry: AuditEntry) -> AuditEntry:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("table storage went away")
        return self._trail.append(entry)


def discard(box: LocalDeadLetters, ports: DeadLetterPorts) -> DeadLetterOutcome:
    [result] = discard_dead_letters(
        box.list(), reason="forged", operator="bob", correlation_id="corr", ports=ports
    )
    return result.outcome


def test_a_discard_or_replay_whose_audit_fails_is_not_done(
    queue: LocalQueue, broken_trail: AuditTrail
) -> None:
    queue.dead_letter(message("op-1"), "UnknownOperation", "forged")
    box = LocalDeadLetters(queue)
    ports = DeadLetterPorts(box=box, audit=broken_trail)
    [entry] = box.list()

    assert discard(box, ports) is DeadLetterOutcome.FAILED
    [replayed] = replay_dead_letters([entry], operator="alice", correlation_id="corr", ports=ports)
    assert replayed.outcome is DeadLetterOutcome.FAILED

    assert [e.key for e in box.list()] == [entry.key]  # still there, for a try once the audit works
    assert queue.peek_all() == []  # and no copy went out


def test_the_request_is_audited_before_the_outcome(queue: LocalQueue, trail: AuditTrail) -> None:
    queue.dead_letter(message("op-1"), "UnknownOperation", "forged")
    queue.dead_letter(message("op-2"), "UnknownOperation", "forged")
    box = LocalDeadLetters(queue)
    ports = DeadLetterPorts(box=box, audit=trail)
    first, second = box.list()

    [replayed] = replay_dead_letters([first], operator="alice", correlation_id="corr", ports=ports)
    [discarded] = discard_dead_letters(
        [second], reason="forged", operator="bob", correlation_id="corr", ports=ports
    )

    assert (replayed.outcome, discarded.outcome) == (DeadLetterOutcome.REPLAYED, DeadLetterOutcome.DISCARDED)
    history = trail.list("sub-1")
    assert [e.action for e in history] == [
        A.DEAD_LETTER_REPLAY_REQUESTED,
        A.DEAD_LETTER_REPLAYED,
        A.DEAD_LETTER_DISCARD_REQUESTED,
        A.DEAD_LETTER_DISCARDED,
    ]
    replay_requested, _, discard_requested, _ = history
    assert replay_requested.actor == "alice"
    assert replay_requested.changes["message_id"] == ("op-1", replayed.replay_message_id)
    assert replay_requested.changes["dead_letter_reason"] == ("UnknownOperation", None)
    assert discard_requested.actor == "bob"
    assert discard_requested.changes["message_id"] == ("op-2", None)
    assert discard_requested.changes["discard_reason"] == (None, "forged")


def test_a_message_naming_no_subscription_is_audited_in_the_unassigned_partition(
    queue: LocalQueue, trail: AuditTrail
) -> None:
    garbled = QueueMessage(message_id="m-1", session_id="", body={"raw": "not json"}, correlation_id="c")
    queue.dead_letter(garbled, "MalformedMessage", "the body is not JSON")
    box = LocalDeadLetters(queue)

    assert discard(box, DeadLetterPorts(box=box, audit=trail)) is DeadLetterOutcome.DISCARDED

    history = trail.list(UNASSIGNED_SUBSCRIPTION)
    assert [e.action for e in history] == [A.DEAD_LETTER_DISCARD_REQUESTED, A.DEAD_LETTER_DISCARDED]
    assert all(e.actor == "bob" and e.changes["message_id"][0] == "m-1" for e in history)


def test_an_outcome_that_cannot_be_audited_still_reports_what_the_queue_did(
    queue: LocalQueue, trail: AuditTrail
) -> None:
    queue.dead_letter(message("op-1"), "UnknownOperation", "forged")
    box = LocalDeadLetters(queue)
    audit = OutcomeNotWritten(trail)

    [result] = discard_dead_letters(
        box.list(), reason="forged", operator="bob", correlation_id="corr", ports=DeadLetterPorts(box, audit)
    )

    # The entry is gone: calling it FAILED would send the operator after an entry that is not there.
    assert result.outcome is DeadLetterOutcome.DISCARDED
    assert "audit" in result.error
    assert box.list() == []
    assert [e.action for e in trail.list("sub-1")] == [A.DEAD_LETTER_DISCARD_REQUESTED]


def test_a_listing_filtered_by_place_alone_shows_that_place_only(
    queue: LocalQueue, trail: AuditTrail
) -> None:
    # `deadletters list --source parking`: a place alone selects nothing to act on, but it does filter a list.
    queue.dead_letter(message("op-1"), "UnknownOperation", "forged")
    queue.send(message("op-2"))
    lease = queue.receive(timeout=1)
    assert lease is not None
    queue.abandon(lease, "RuntimeError: boom")  # the last allowed delivery: moved to the sub-queue
    ports = DeadLetterPorts(box=LocalDeadLetters(queue), audit=trail)

    parked = list_dead_letters(DeadLetterSelection(source=DeadLetterSource.PARKING), ports=ports)
    exhausted = list_dead_letters(DeadLetterSelection(source=DeadLetterSource.DEAD_LETTER), ports=ports)

    assert [e.message_id for e in parked] == ["op-1"]
    assert [e.message_id for e in exhausted] == ["op-2"]
    assert len(list_dead_letters(DeadLetterSelection(), ports=ports)) == 2
