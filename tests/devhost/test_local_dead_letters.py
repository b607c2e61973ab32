"""The local queue's dead letters behave as Service Bus's two places do: parked and moved by the queue, both
listed, replayed (copy in, entry out, in one transaction) and discarded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from devhost.local_queue import LocalDeadLetters, LocalQueue
from shared.domain.dead_letters import DeadLetterSource
from shared.queueing.messages import QueueMessage, QueueUnavailableError
from shared.workflows.dead_letters import replay_message


def message(message_id: str, session_id: str = "sub-1") -> QueueMessage:
    body = {"kind": "webhook", "payload": {"id": message_id, "subscriptionId": session_id}}
    return QueueMessage(message_id=message_id, session_id=session_id, body=body, correlation_id="c")


@pytest.fixture
def queue(tmp_path: Path) -> LocalQueue:
    with LocalQueue(tmp_path / "queue.sqlite3", max_delivery_count=1) as q:
        yield q


def fail_once(queue: LocalQueue, msg: QueueMessage) -> None:
    queue.send(msg)
    lease = queue.receive(timeout=1)
    queue.abandon(lease, "RuntimeError: boom")  # the last allowed delivery: moved to the dead letters


def test_parked_and_exhausted_messages_are_listed_apart_parking_first(queue: LocalQueue) -> None:
    fail_once(queue, message("op-1"))
    queue.dead_letter(
        message("op-2"),
        "UnknownOperation",
        "forged",
    )

    first, second = LocalDeadLetters(queue).list()

    assert (first.source, first.message_id, first.reason) == (
        DeadLetterSource.PARKING,
        "op-2",
        "UnknownOperation",
    )
    assert (second.source, second.message_id) == (DeadLetterSource.DEAD_LETTER, "op-1")
    assert second.reason == "MaxDeliveryCountExceeded"
    assert second.description == "RuntimeError: boom"
    assert second.delivery_count == 1
    assert second.first_enqueued_at is not None
    assert second.dead_lettered_at is not None
    assert second.key == f"deadletter:{second.sequence_number}"


def test_replay_puts_a_fresh_copy_in_the_session_and_removes_the_entry(queue: LocalQueue) -> None:
    fail_once(queue, message("op-1"))
    box = LocalDeadLetters(queue)
    [entry] = box.list()
    copy = replay_message(entry, "alice")

    assert box.replay(entry, copy)
    assert box.replay(entry, replay_message(entry, "alice")) is False  # gone: replayed once only

    assert box.list() == []
    [queued] = queue.peek_all()
    assert queued.message.message_id == copy.message_id
    assert queued.message.session_id == "sub-1"
    assert queued.message.body == entry.body
    assert queued.message.application_properties["originalMessageId"] == "op-1"
    assert queued.message.application_properties["replayedBy"] == "alice"


def test_a_replay_dropped_as_a_duplicate_keeps_the_entry(queue: LocalQueue) -> None:
    queue.dead_letter(message("op-9"), "UnknownOperation", "forged")
    box = LocalDeadLetters(queue)
    [entry] = box.list()
    copy = replay_message(entry, "alice")
    queue.send(copy)  # the same id again, within the duplicate window

    with pytest.raises(QueueUnavailableError):
        box.replay(entry, copy)

    assert [e.key for e in box.list()] == [entry.key]


def test_discard_removes_for_good(queue: LocalQueue) -> None:
    queue.dead_letter(message("op-3"), "UnknownOperation", "forged")
    box = LocalDeadLetters(queue)
    [entry] = box.list()

    assert box.discard(entry)
    assert box.discard(entry) is False
    assert box.list() == []
    assert queue.peek_all() == []


def test_a_queue_file_from_before_sources_is_migrated_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, "
            "session_id TEXT NOT NULL, body BLOB NOT NULL, content_type TEXT NOT NULL, correlation_id TEXT "
            "NOT NULL, properties TEXT NOT NULL, enqueued_at REAL NOT NULL, delivery_count INTEGER NOT NULL, "
            "reason TEXT NOT NULL, description TEXT NOT NULL, dead_lettered_at REAL NOT NULL)"
        )
        for message_id, reason in (("a", "MaxDeliveryCountExceeded"), ("b", "MalformedMessage")):
            db.execute(
                "INSERT INTO dead_letters (message_id, session_id, body, content_type, correlation_id, "
                "properties, enqueued_at, delivery_count, reason, description, dead_lettered_at) "
                "VALUES (?, 's', ?, 'application/json', '', '{}', 0, 1, ?, '', 0)",
                (message_id, json.dumps({"kind": "webhook"}), reason),
            )

    with LocalQueue(path) as queue:
        sources = {d.message.message_id: d.source for d in queue.dead_letters()}
    with LocalQueue(path) as queue:  # a second open finds the column and leaves it be
        assert len(queue.dead_letters()) == 2

    assert sources == {"a": DeadLetterSource.DEAD_LETTER, "b": DeadLetterSource.PARKING}
