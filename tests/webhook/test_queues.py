"""The queue adapters: what reaches the Service Bus SDK, failures as QueueUnavailableError, memory queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import ServiceBusConnectionError

from shared.config import ConfigurationError, Settings
from shared.queueing.memory import InMemoryQueue
from shared.queueing.messages import QueueMessage, QueueUnavailableError, reconcile_message, webhook_message
from shared.queueing.servicebus import ServiceBusEventQueue
from tests.support.ports import free_port

QUEUE = "saas-events"
DEAD_LETTERS = "saas-events-deadletter"


class RecordingSender:
    """The SDK boundary: keeps every ServiceBusMessage it is given; can be told to fail like a broken link."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.sent: list[ServiceBusMessage] = []
        self.failure = failure
        self.closed = False

    def send_messages(self, message: ServiceBusMessage, **kwargs: Any) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


class RecordingClient:
    """Hands out senders per queue name and remembers each one, to show reuse and recreation."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.senders: list[tuple[str, RecordingSender]] = []
        self._failures = list(failures or [])

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> RecordingSender:
        sender = RecordingSender(self._failures.pop(0) if self._failures else None)
        self.senders.append((queue_name, sender))
        return sender

    def sent_to(self, queue_name: str) -> list[ServiceBusMessage]:
        return [message for name, sender in self.senders if name == queue_name for message in sender.sent]


def a_webhook_message(action: str = "ChangePlan") -> QueueMessage:
    payload = {
        "id": str(uuid.uuid4()),
        "subscriptionId": str(uuid.uuid4()),
        "action": action,
        "planId": "gold",
    }
    return webhook_message(
        payload, received_at="2024-05-01T10:00:00.000+00:00", correlation_id=str(uuid.uuid4())
    )


def body_of(message: ServiceBusMessage) -> bytes:
    return b"".join(message.body)


def test_send_hands_the_sdk_a_message_with_ids_session_and_json_body():
    client = RecordingClient()
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)
    message = a_webhook_message()

    queue.send(message)

    [sent] = client.sent_to(QUEUE)
    assert sent.message_id == message.message_id == message.body["payload"]["id"]
    assert sent.session_id == message.session_id == message.body["payload"]["subscriptionId"]
    assert sent.content_type == "application/json"
    assert sent.correlation_id == message.correlation_id
    assert json.loads(body_of(sent)) == message.body


def test_one_sender_per_queue_is_reused_across_sends():
    client = RecordingClient()
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)

    for _ in range(3):
        queue.send(a_webhook_message())

    assert [name for name, _ in client.senders] == [QUEUE]
    assert len(client.sent_to(QUEUE)) == 3


def test_dead_letter_parks_the_same_body_with_reason_and_description_on_its_own_queue():
    client = RecordingClient()
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)
    message = a_webhook_message()

    queue.dead_letter(message, "MalformedMessage", "body is not an object with a known 'kind'")

    assert client.sent_to(QUEUE) == []
    [parked] = client.sent_to(DEAD_LETTERS)
    assert json.loads(body_of(parked)) == message.body
    assert parked.message_id == message.message_id
    assert parked.application_properties == {
        "deadLetterReason": "MalformedMessage",
        "deadLetterDescription": "body is not an object with a known 'kind'",
    }


def test_a_failed_link_becomes_queue_unavailable_and_the_next_send_opens_a_fresh_sender():
    client = RecordingClient(failures=[ServiceBusConnectionError(message="link detached")])
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)

    with pytest.raises(QueueUnavailableError, match="link detached"):
        queue.send(a_webhook_message())
    queue.send(a_webhook_message())

    (_, broken), (_, fresh) = client.senders
    assert broken.closed
    assert not fresh.closed
    assert len(fresh.sent) == 1


def test_an_os_error_also_becomes_queue_unavailable():
    client = RecordingClient(failures=[ConnectionResetError("reset by peer")])
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)

    with pytest.raises(QueueUnavailableError, match="reset by peer"):
        queue.dead_letter(a_webhook_message(), "reason", "description")


def closed_port_settings() -> Settings:
    connection = (
        f"Endpoint=sb://127.0.0.1:{free_port()}/;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=bm90LWEtcmVhbC1rZXk=;UseDevelopmentEmulator=true"
    )
    return Settings.from_env({"ServiceBusConnection": connection, "SERVICEBUS_QUEUE": QUEUE})


def test_real_client_against_a_closed_port_fails_fast_as_queue_unavailable():
    queue = ServiceBusEventQueue.from_settings(closed_port_settings())
    started = time.monotonic()

    with pytest.raises(QueueUnavailableError):
        queue.send(a_webhook_message())

    assert time.monotonic() - started < 5
    queue.close()


def test_from_settings_without_connection_or_namespace_names_the_settings():
    with pytest.raises(ConfigurationError, match="ServiceBusConnection"):
        ServiceBusEventQueue.from_settings(Settings.from_env({}))


def test_from_settings_rejects_a_malformed_connection_string():
    with pytest.raises(ConfigurationError, match="not a valid connection string"):
        ServiceBusEventQueue.from_settings(Settings.from_env({"ServiceBusConnection": "nonsense"}))


def test_memory_queue_keeps_sends_and_dead_letters_in_order():
    queue = InMemoryQueue()
    first, second = a_webhook_message(), a_webhook_message()

    queue.send(first)
    queue.send(second)
    queue.dead_letter(first, "MalformedMessage", "why")

    assert queue.messages == [first, second]
    assert queue.dead_letters == [(first, "MalformedMessage", "why")]


def test_memory_queue_loses_nothing_under_concurrent_sends():
    queue = InMemoryQueue()

    def send_many() -> None:
        for _ in range(200):
            queue.send(a_webhook_message())

    threads = [threading.Thread(target=send_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({message.message_id for message in queue.messages}) == 1600


def test_a_scheduled_message_reaches_the_sdk_with_its_enqueue_time():
    from datetime import UTC, datetime, timedelta

    from shared.queueing.messages import track_message

    client = RecordingClient()
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)
    later = datetime.now(UTC) + timedelta(seconds=15)

    queue.send(track_message(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), scheduled_at=later))

    [sent] = client.sent_to(QUEUE)
    assert sent.scheduled_enqueue_time_utc == later


class BatchingSender(RecordingSender):
    """A sender whose batches hold little, as Service Bus's size limit does, to show the page is split."""

    def __init__(self, failure: Exception | None = None, batch_bytes: int = 2_000) -> None:
        super().__init__(failure)
        self.batches: list[list[str]] = []
        self.batch_bytes = batch_bytes

    def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=self.batch_bytes)

    def send_messages(self, message: Any, **kwargs: Any) -> None:
        if self.failure is not None:
            raise self.failure
        inner = message._messages  # the SDK keeps a batch's messages here
        self.batches.append([m.message_id for m in inner])


def a_reconcile_message(number: int) -> QueueMessage:
    return reconcile_message(f"sub-{number}", "sweep", "sweep-1")


def test_send_many_fills_batches_up_to_the_size_limit_and_sends_each_once() -> None:
    sender = BatchingSender()
    queue = ServiceBusEventQueue(SingleSenderClient(sender), QUEUE, DEAD_LETTERS)
    queue.send_many([a_reconcile_message(n) for n in range(12)])
    assert len(sender.batches) > 1  # 12 did not fit one small batch
    assert all(len(batch) > 1 for batch in sender.batches[:-1])  # each batch filled before the next
    assert [i for batch in sender.batches for i in batch] == [
        a_reconcile_message(n).message_id for n in range(12)
    ]


def test_send_many_refused_becomes_queue_unavailable_and_forgets_the_sender() -> None:
    sender = BatchingSender(failure=ServiceBusConnectionError(message="link detached"))
    client = SingleSenderClient(sender)
    queue = ServiceBusEventQueue(client, QUEUE, DEAD_LETTERS)
    with pytest.raises(QueueUnavailableError):
        queue.send_many([a_reconcile_message(1)])
    assert sender.closed
    with pytest.raises(QueueUnavailableError):
        queue.send_many([a_reconcile_message(1)])
    assert client.opened == 2


def test_send_many_refuses_a_message_too_big_for_any_batch() -> None:
    sender = BatchingSender(batch_bytes=60)
    queue = ServiceBusEventQueue(SingleSenderClient(sender), QUEUE, DEAD_LETTERS)
    with pytest.raises(QueueUnavailableError):
        queue.send_many([a_reconcile_message(1)])
    assert sender.batches == []


class SingleSenderClient:
    def __init__(self, sender: BatchingSender) -> None:
        self.sender = sender
        self.opened = 0

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> BatchingSender:
        self.opened += 1
        return self.sender
