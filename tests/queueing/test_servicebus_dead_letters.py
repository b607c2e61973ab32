"""The Service Bus dead-letter adapter against a recording fake of the azure-servicebus client.

No Service Bus emulator runs here, so the fake stands in at the SDK boundary only (client, receiver,
sender and received messages, with the broker behaviour the adapter relies on: peek takes no lock, receive
locks and counts a delivery, deferred messages are skipped by receive and fetched by sequence number, an
unsettled lock is released when the receiver closes). Everything above it is the real code. The same
workflow runs for real against the local queue in tests/devhost and tests/cli.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessageNotFoundError,
    ServiceBusConnectionError,
)

from shared.domain.dead_letters import DeadLetterSource
from shared.queueing.servicebus import ServiceBusEventQueue
from shared.queueing.servicebus_dead_letters import ServiceBusDeadLetters
from shared.workflows.dead_letters import replay_message

EVENTS = "saas-events"
PARKING = "saas-events-deadletter"
ENQUEUED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class FakeReceived:
    """A ServiceBusReceivedMessage: the attributes the adapter reads, and the broker's state of it."""

    sequence_number: int
    message_id: str
    session_id: str | None
    body: Any
    application_properties: dict[bytes, Any]
    content_type: str | None = "application/json"
    correlation_id: str | None = "corr"
    delivery_count: int = 0
    enqueued_time_utc: datetime | None = ENQUEUED
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None
    state: str = "active"  # active | locked | deferred | completed


@dataclass
class FakeBroker:
    entities: dict[tuple[str, Any], list[FakeReceived]] = field(default_factory=dict)
    receivers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: list[tuple[str, ServiceBusMessage]] = field(default_factory=list)
    send_failure: Exception | None = None
    complete_failures: list[Exception] = field(default_factory=list)  # raised by the next completes

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> FakeReceiver:
        self.receivers.append((queue_name, kwargs))
        return FakeReceiver(self.entities.setdefault((queue_name, kwargs.get("sub_queue")), []), self)

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> FakeSender:
        return FakeSender(self, queue_name)


@dataclass
class FakeSender:
    broker: FakeBroker
    queue_name: str

    def send_messages(self, message: ServiceBusMessage, **kwargs: Any) -> None:
        if self.broker.send_failure is not None:
            raise self.broker.send_failure
        self.broker.sent.append((self.queue_name, message))

    def close(self) -> None:
        pass


@dataclass
class FakeReceiver:
    messages: list[FakeReceived]
    broker: FakeBroker | None = None
    calls: list[str] = field(default_factory=list)

    def __enter__(self) -> FakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        for message in self.messages:  # closing releases unsettled locks, as the broker does
            if message.state == "locked":
                message.state = "active"

    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[FakeReceived]:
        live = [m for m in self.messages if m.state != "completed" and m.sequence_number >= sequence_number]
        return live[:max_message_count]

    def receive_messages(
        self, max_message_count: int = 1, max_wait_time: float | None = None
    ) -> list[FakeReceived]:
        batch = [m for m in self.messages if m.state == "active"][:max_message_count]
        for message in batch:
            message.state = "locked"
            message.delivery_count += 1
        return batch

    def receive_deferred_messages(self, sequence_numbers: list[int]) -> list[FakeReceived]:
        found = [m for m in self.messages if m.sequence_number in sequence_numbers and m.state == "deferred"]
        if not found:
            raise MessageNotFoundError(message="not deferred")
        for message in found:
            message.state = "locked"
            message.delivery_count += 1
        return found

    def complete_message(self, message: FakeReceived) -> None:
        assert message.state == "locked"
        if self.broker is not None and self.broker.complete_failures:
            raise self.broker.complete_failures.pop(0)
        message.state = "completed"

    def defer_message(self, message: FakeReceived) -> None:
        assert message.state == "locked"
        message.state = "deferred"


def parked(
    sequence_number: int, reason: str = "UnknownOperation", subscription: str = "sub-1"
) -> FakeReceived:
    body = {"kind": "webhook", "payload": {"id": f"op-{sequence_number}", "subscriptionId": subscription}}
    return FakeReceived(
        sequence_number=sequence_number,
        message_id=f"op-{sequence_number}",
        session_id=subscription,
        body=iter([json.dumps(body).encode()]),  # the SDK hands the body as a generator of sections
        application_properties={
            b"deadLetterReason": reason.encode(),
            b"deadLetterDescription": b"GetOperation does not know this operation",
            b"firstEnqueuedTimeUtc": b"2026-12-01T08:59:00+00:00",
            b"deliveryCount": b"1",
        },
        enqueued_time_utc=ENQUEUED,
    )


def dead_lettered(sequence_number: int) -> FakeReceived:
    body = {"kind": "activate", "subscriptionId": "sub-2"}
    return FakeReceived(
        sequence_number=sequence_number,
        message_id="activate-sub-2",
        session_id="sub-2",
        body=json.dumps(body).encode(),
        application_properties={},
        delivery_count=10,
        dead_letter_reason="MaxDeliveryCountExceeded",
        dead_letter_error_description="Message could not be consumed after 10 delivery attempts.",
    )


@pytest.fixture
def broker() -> FakeBroker:
    broker = FakeBroker()
    broker.entities[(PARKING, None)] = [parked(1), parked(2, "OperationMismatch"), parked(3)]
    broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)] = [dead_lettered(7)]
    return broker


def adapter(broker: FakeBroker) -> ServiceBusDeadLetters:
    return ServiceBusDeadLetters(broker, ServiceBusEventQueue(broker, EVENTS, PARKING), EVENTS, PARKING)


def test_list_peeks_both_places_parking_first_with_each_ones_reason_and_delivery() -> None:
    broker = FakeBroker()
    broker.entities[(PARKING, None)] = [parked(1)]
    broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)] = [dead_lettered(7)]

    first, second = adapter(broker).list()

    assert (first.key, first.reason, first.subscription_id, first.operation_id) == (
        "parking:1",
        "UnknownOperation",
        "sub-1",
        "op-1",
    )
    assert first.delivery_count == 1  # what the worker recorded, not the parking queue's own count
    assert first.first_enqueued_at == datetime(2026, 12, 1, 8, 59, tzinfo=UTC)
    assert first.dead_lettered_at == ENQUEUED
    assert first.body["payload"]["id"] == "op-1"
    assert (second.key, second.source, second.reason) == (
        "deadletter:7",
        DeadLetterSource.DEAD_LETTER,
        "MaxDeliveryCountExceeded",
    )
    assert second.delivery_count == 10
    assert second.first_enqueued_at == ENQUEUED
    assert [(name, kwargs["sub_queue"]) for name, kwargs in broker.receivers] == [
        (PARKING, None),
        (EVENTS, ServiceBusSubQueue.DEAD_LETTER),
    ]
    # Peeking takes no lock and counts no delivery.
    assert broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)][0].delivery_count == 10


def test_list_stops_at_the_limit() -> None:
    broker = FakeBroker()
    broker.entities[(PARKING, None)] = [parked(n) for n in range(1, 6)]
    assert [e.key for e in adapter(broker).list(limit=2)] == ["parking:1", "parking:2"]


def test_replay_sends_a_fresh_id_in_the_same_session_then_completes_and_defers_what_it_passed(
    broker: FakeBroker,
) -> None:
    box = adapter(broker)
    entry = next(e for e in box.list() if e.key == "parking:3")
    copy = replay_message(entry, "alice@contoso")

    assert box.replay(entry, copy)

    [(queue, sent)] = broker.sent
    assert queue == EVENTS
    assert sent.message_id == copy.message_id != "op-3"
    assert sent.session_id == "sub-1"
    assert json.loads(b"".join(sent.body)) == dict(entry.body)
    properties = {
        k.decode() if isinstance(k, bytes) else k: v for k, v in sent.application_properties.items()
    }
    assert properties["originalMessageId"] == "op-3"
    assert properties["replayedBy"] == "alice@contoso"
    assert "deadLetterReason" not in properties
    assert "deliveryCount" not in properties
    states = {m.sequence_number: m.state for m in broker.entities[(PARKING, None)]}
    assert states == {1: "deferred", 2: "deferred", 3: "completed"}


def test_a_deferred_entry_is_fetched_by_number_and_nothing_is_received_by_a_scan_twice(
    broker: FakeBroker,
) -> None:
    box = adapter(broker)
    entries = {e.key: e for e in box.list()}

    assert box.discard(entries["parking:3"])
    assert box.discard(entries["parking:1"])
    assert box.replay(entries["parking:2"], replay_message(entries["parking:2"], "bob"))

    messages = broker.entities[(PARKING, None)]
    assert all(m.state == "completed" for m in messages)
    # Passed once by the first scan, then fetched by number: the parking queue's maxDeliveryCount is far.
    assert [m.delivery_count for m in messages] == [2, 2, 1]
    assert [e.key for e in box.list()] == ["deadletter:7"]


def test_an_entry_settled_by_someone_else_is_reported_gone(broker: FakeBroker) -> None:
    box = adapter(broker)
    entry = next(e for e in box.list() if e.key == "deadletter:7")
    broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)][0].state = "completed"

    assert box.discard(entry) is False


def test_a_replay_the_queue_refuses_leaves_the_entry_where_it_was(broker: FakeBroker) -> None:
    from shared.queueing.messages import QueueUnavailableError

    box = adapter(broker)
    entry = next(e for e in box.list() if e.key == "deadletter:7")
    broker.send_failure = ServiceBusConnectionError(message="link detached")

    with pytest.raises(QueueUnavailableError):
        box.replay(entry, replay_message(entry, "carol"))

    [message] = broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)]
    assert message.state == "active"  # the lock was released unsettled: it waits for the next try
    assert [e.key for e in box.list()][-1] == "deadletter:7"


def test_a_replay_retried_after_its_complete_failed_sends_the_same_message_id(broker: FakeBroker) -> None:
    box = adapter(broker)
    entry = next(e for e in box.list() if e.key == "deadletter:7")
    broker.complete_failures.append(MessageLockLostError(message="lock lost"))

    with pytest.raises(MessageLockLostError):
        box.replay(entry, replay_message(entry, "carol"))
    # The copy went out but the entry stayed; the operator tries again, with a copy built afresh.
    assert box.replay(entry, replay_message(entry, "carol"))

    first, second = (message for _, message in broker.sent)
    # One id for both: Service Bus duplicate detection (infra/queues.json) drops the second copy.
    assert first.message_id == second.message_id == "replay-activate-sub-2-deadletter-7"
    assert [m.state for m in broker.entities[(EVENTS, ServiceBusSubQueue.DEAD_LETTER)]] == ["completed"]


def test_replay_ids_tell_the_two_places_and_each_entry_apart(broker: FakeBroker) -> None:
    entries = adapter(broker).list()

    ids = {replay_message(e, "dave").message_id for e in entries}

    assert len(ids) == len(entries)
    assert "replay-op-3-parking-3" in ids
