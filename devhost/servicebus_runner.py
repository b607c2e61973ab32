"""Feeds the queue-triggered function from a real Azure Service Bus queue (a dev host pointed at Azure).

With `QUEUE_BACKEND=servicebus` the landing and the webhook send to the real namespace; this runner is what
the Functions host's trigger does there: accept the next free session, hand each message to the registered
function as an `azure.functions.ServiceBusMessage`, complete it on return and abandon it on an exception,
so Service Bus redelivers it and dead-letters it after the queue's max delivery count.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Protocol

from azure.functions.servicebus import ServiceBusMessage

from devhost.http_host import call_user_function
from devhost.queue_runner import QueueFunction, WorkerThreads, max_concurrent_sessions
from shared.logs import get_logger, log_context

_log = get_logger(__name__)
SESSION_IDLE_SECONDS = 5.0


class ReceivedMessage(Protocol):
    """The parts of `azure.servicebus.ServiceBusReceivedMessage` the runner reads."""

    body: Any
    message_id: str
    session_id: str | None
    content_type: str | None
    correlation_id: str | None
    delivery_count: int | None
    enqueued_time_utc: datetime | None
    sequence_number: int | None
    locked_until_utc: datetime | None
    lock_token: Any
    application_properties: dict[Any, Any] | None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def to_function_message(received: ReceivedMessage) -> ServiceBusMessage:
    """What the Python worker would hand the function for this received message."""
    body = received.body
    raw = body if isinstance(body, bytes) else b"".join(body)
    properties = {_text(k): v for k, v in (received.application_properties or {}).items()}
    return ServiceBusMessage(
        body=raw,
        message_id=received.message_id,
        session_id=received.session_id,
        content_type=received.content_type,
        correlation_id=received.correlation_id,
        delivery_count=received.delivery_count,
        enqueued_time_utc=received.enqueued_time_utc,
        sequence_number=received.sequence_number,
        locked_until=received.locked_until_utc,
        lock_token=str(received.lock_token),
        application_properties=properties,
        user_properties=dict(properties),
    )


class ServiceBusRunner(WorkerThreads):
    """Worker threads, each holding one session at a time, until `stop_event` is set."""

    def __init__(
        self,
        function: QueueFunction,
        client: Any,
        *,
        workers: int | None = None,
        stop_event: threading.Event | None = None,
        session_idle_seconds: float = SESSION_IDLE_SECONDS,
    ) -> None:
        # Like the Functions host: one receiver per session, as many as host.json's maxConcurrentSessions.
        super().__init__("devhost-servicebus", workers or max_concurrent_sessions(), stop_event)
        self.function = function
        self.client = client
        self._idle = session_idle_seconds

    def _work(self) -> None:
        from azure.servicebus import NEXT_AVAILABLE_SESSION
        from azure.servicebus.exceptions import OperationTimeoutError, ServiceBusError

        while not self.stop_event.is_set():
            try:
                with self.client.get_queue_receiver(
                    self.function.queue_name, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=self._idle
                ) as receiver:
                    self.drain(receiver)
            except OperationTimeoutError:
                continue  # no session had messages; ask again
            except ServiceBusError:
                _log.exception("receiving from Service Bus failed; trying again shortly")
                self.stop_event.wait(2.0)

    def drain(self, receiver: Any) -> int:
        """Processes the session's messages until it is idle or the runner stops; returns how many."""
        handled = 0
        for received in receiver:
            self.process(receiver, received)
            handled += 1
            if self.stop_event.is_set():
                break
        return handled

    def process(self, receiver: Any, received: ReceivedMessage) -> None:
        ids = {"message_id": received.message_id, "subscription_id": received.session_id}
        with log_context(function=self.function.name, correlation_id=received.correlation_id, **ids):
            try:
                message = to_function_message(received)
                call_user_function(self.function.user_function, **{self.function.argument: message})
            except Exception:
                _log.warning("function %s failed; abandoning the message", self.function.name, exc_info=True)
                receiver.abandon_message(received)
                return
            receiver.complete_message(received)
