"""The `DeadLetterBox` on Azure Service Bus: the parking queue and the events queue's dead-letter sub-queue.

Listing peeks (no lock, no delivery counted). Settling one entry needs its lock, and Service Bus receives
by sequence number only a message that was deferred, so the adapter receives from the head and defers
every other message it passes: a deferred message is never delivered again, stays visible to a peek and is
fetched by its number next time (`receive_deferred_messages`). Each waiting message is thus received at
most once by a scan, however many entries an operator settles, and the parking queue's `maxDeliveryCount`
(infra/queues.json) never moves a message an operator has not touched to that queue's own dead-letter
sub-queue. A deferred message reads as `deferred` in the Azure portal's explorer; nothing else reads it.

Replay sends the copy through the events queue's `EventQueue` first and completes the entry after, so a
lost lock leaves the entry for another try and the worker, keyed on the operation, handles the copy once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.servicebus import ServiceBusSubQueue
from azure.servicebus.exceptions import MessageNotFoundError

from shared.config import Settings
from shared.domain.dead_letters import DeadLetterEntry, DeadLetterSource, parked_history
from shared.logs import get_logger
from shared.queueing.messages import EventQueue, QueueMessage
from shared.queueing.servicebus import ServiceBusEventQueue, service_bus_client

log = get_logger(__name__)
PEEK_PAGE = 100
RECEIVE_PAGE = 20
RECEIVE_WAIT_SECONDS = 5.0


class _Received(Protocol):
    """The parts of `azure.servicebus.ServiceBusReceivedMessage` read here."""

    @property
    def sequence_number(self) -> int | None: ...
    @property
    def message_id(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def body(self) -> Any: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def application_properties(self) -> dict[Any, Any] | None: ...
    @property
    def delivery_count(self) -> int | None: ...
    @property
    def enqueued_time_utc(self) -> datetime | None: ...
    @property
    def dead_letter_reason(self) -> str | None: ...
    @property
    def dead_letter_error_description(self) -> str | None: ...


class _Receiver(AbstractContextManager["_Receiver"], Protocol):
    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[Any]: ...
    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[Any]: ...
    def receive_deferred_messages(self, sequence_numbers: int | list[int]) -> list[Any]: ...
    def complete_message(self, message: Any) -> None: ...
    def defer_message(self, message: Any) -> None: ...


class _Client(Protocol):
    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> _Receiver: ...


@dataclass(frozen=True)
class _Place:
    source: DeadLetterSource
    queue_name: str
    sub_queue: ServiceBusSubQueue | None


class ServiceBusDeadLetters:
    """Lists, replays and discards the parked and dead-lettered messages of one events queue."""

    def __init__(self, client: _Client, events: EventQueue, events_queue: str, parking_queue: str) -> None:
        self._client = client
        self._events = events
        self._places = (
            _Place(DeadLetterSource.PARKING, parking_queue, None),
            _Place(DeadLetterSource.DEAD_LETTER, events_queue, ServiceBusSubQueue.DEAD_LETTER),
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: Callable[[], TokenCredential] | None = None
    ) -> ServiceBusDeadLetters:
        client = service_bus_client(settings, credential=credential)
        events = ServiceBusEventQueue(client, settings.servicebus_queue, settings.servicebus_deadletter_queue)
        return cls(client, events, settings.servicebus_queue, settings.servicebus_deadletter_queue)

    def list(self, *, limit: int | None = None) -> list[DeadLetterEntry]:
        entries: list[DeadLetterEntry] = []
        for place in self._places:
            for received in self._peek(place):
                if limit is not None and len(entries) >= limit:
                    return entries
                entries.append(to_entry(place.source, received))
        return entries

    def replay(self, entry: DeadLetterEntry, message: QueueMessage) -> bool:
        def send_then_complete(receiver: _Receiver, received: Any) -> None:
            self._events.send(message)
            receiver.complete_message(received)

        return self._settle(entry, send_then_complete)

    def discard(self, entry: DeadLetterEntry) -> bool:
        return self._settle(entry, lambda receiver, received: receiver.complete_message(received))

    # --- the SDK --------------------------------------------------------------------------------------

    def _receiver(self, place: _Place) -> _Receiver:
        return self._client.get_queue_receiver(
            place.queue_name, sub_queue=place.sub_queue, max_wait_time=RECEIVE_WAIT_SECONDS
        )

    def _peek(self, place: _Place) -> Iterator[Any]:
        with self._receiver(place) as receiver:
            next_number = 1
            while page := receiver.peek_messages(PEEK_PAGE, sequence_number=next_number):
                yield from page
                next_number = int(page[-1].sequence_number) + 1

    def _settle(self, entry: DeadLetterEntry, act: Callable[[_Receiver, Any], None]) -> bool:
        place = next(p for p in self._places if p.source is entry.source)
        with self._receiver(place) as receiver:
            received = self._deferred(receiver, entry.sequence_number) or self._scan(
                receiver, entry.sequence_number
            )
            if received is None:
                return False
            act(receiver, received)
        return True

    def _deferred(self, receiver: _Receiver, sequence_number: int) -> Any:
        try:
            found = receiver.receive_deferred_messages([sequence_number])
        except MessageNotFoundError:
            return None
        return found[0] if found else None

    def _scan(self, receiver: _Receiver, sequence_number: int) -> Any:
        """Receives from the head until the entry comes, deferring every other message on the way."""
        while batch := receiver.receive_messages(RECEIVE_PAGE, max_wait_time=RECEIVE_WAIT_SECONDS):
            target = None
            for received in batch:
                if received.sequence_number == sequence_number:
                    target = received
                else:
                    receiver.defer_message(received)
            if target is not None:
                return target
        log.info("dead letter not found; settled already", extra={"sequence_number": sequence_number})
        return None


def to_entry(source: DeadLetterSource, received: _Received) -> DeadLetterEntry:
    properties = {_text(k): _text(v) for k, v in (received.application_properties or {}).items()}
    parked = source is DeadLetterSource.PARKING
    deliveries, first_enqueued = (
        parked_history(properties)
        if parked
        else (int(received.delivery_count or 0), received.enqueued_time_utc)
    )
    return DeadLetterEntry(
        source=source,
        sequence_number=int(received.sequence_number or 0),
        message_id=str(received.message_id or ""),
        session_id=str(received.session_id or ""),
        # The worker parks with properties of its own; the broker sets these two on its sub-queue.
        reason=properties.get("deadLetterReason", "") if parked else str(received.dead_letter_reason or ""),
        description=(
            properties.get("deadLetterDescription", "")
            if parked
            else str(received.dead_letter_error_description or "")
        ),
        body=_body(received.body),
        content_type=str(received.content_type or "application/json"),
        correlation_id=str(received.correlation_id or ""),
        application_properties=properties,
        delivery_count=deliveries,
        first_enqueued_at=first_enqueued,
        # On the parking queue, its own enqueue time is when the worker parked it; the sub-queue keeps the
        # original enqueue time and says nothing of when the broker moved the message.
        dead_lettered_at=received.enqueued_time_utc if parked else None,
    )


def _body(raw: Any) -> dict[str, Any]:
    data = raw if isinstance(raw, bytes | str) else b"".join(raw)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {"raw": data.decode("utf-8", "replace") if isinstance(data, bytes) else data}
    return body if isinstance(body, dict) else {"raw": body}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
