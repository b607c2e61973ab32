"""The `EventQueue` on Azure Service Bus: one client and one sender per queue for the whole process.

Opening an AMQP link costs round trips, so the composition root builds this adapter once and every
invocation of a warm instance reuses its senders. A sender whose connection failed is closed and forgotten;
the next send opens a fresh one, so a broken link heals without a restart.

Dead-lettering: a Python function triggered by Service Bus can only complete a message (return) or abandon
it (raise); moving it to the queue's own dead-letter sub-queue needs a preview extension. So a poison
message (one no retry can fix, e.g. a malformed body) is parked on a dedicated queue
(`SERVICEBUS_DEADLETTER_QUEUE`) with `deadLetterReason`/`deadLetterDescription` properties, and the
trigger then completes it. Messages that keep failing for transient reasons are not parked by us: Service
Bus moves them to its own dead-letter sub-queue after `maxDeliveryCount` deliveries.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypedDict

from azure.core.credentials import TokenCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusError

from shared.config import ConfigurationError, Settings
from shared.logs import get_logger
from shared.queueing.messages import QueueMessage, QueueUnavailableError, send_traced

log = get_logger(__name__)

# The webhook answers Microsoft within its budget (R35) and Microsoft retries a 503 anyway, so the SDK may
# retry only briefly before we give up and say so.
SDK_RETRY_TOTAL = 2
SDK_RETRY_BACKOFF_FACTOR = 0.25
SDK_RETRY_BACKOFF_MAX = 1.0
# The value types an SDK message's application properties may have (its private `PrimitiveTypes`).
_Property = int | float | bytes | bool | str | uuid.UUID
SEND_TIMEOUT_SECONDS = 5.0
# The W3C trace context keys, stored as bytes: the names azure-servicebus's own tracing uses
# (b"traceparent", b"tracestate", with setdefault). AMQP application properties have string keys, and
# pyamqp encodes "traceparent" and b"traceparent" alike, so one of each would put two `traceparent` entries
# on the wire; as bytes, the SDK (when its tracing is on) keeps the app's value and adds none of its own.
_TRACE_KEYS = {"traceparent": b"traceparent", "tracestate": b"tracestate"}


class _Sender(Protocol):
    def send_messages(self, message: ServiceBusMessage | ServiceBusMessageBatch, **kwargs: Any) -> None: ...

    def create_message_batch(self) -> ServiceBusMessageBatch: ...

    def close(self) -> None: ...


class _Client(Protocol):
    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> _Sender: ...


class ServiceBusEventQueue:
    """Sends `QueueMessage`s to `queue_name`; parks poison messages on `deadletter_queue_name`."""

    def __init__(self, client: _Client, queue_name: str, deadletter_queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name
        self._deadletter_queue_name = deadletter_queue_name
        self._senders: dict[str, _Sender] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: Callable[[], TokenCredential] | None = None
    ) -> ServiceBusEventQueue:
        client = service_bus_client(settings, credential=credential)
        return cls(client, settings.servicebus_queue, settings.servicebus_deadletter_queue)

    def send(self, message: QueueMessage) -> None:
        send_traced(message, self._queue_name, self._send_to_queue)

    def send_many(self, messages: Sequence[QueueMessage]) -> None:
        """Sends in as few batches as Service Bus's size limit allows (one round trip each, not one per
        message); QueueUnavailableError when one is refused (the batches before it are sent)."""
        traced: list[QueueMessage] = []
        for message in messages:
            send_traced(message, self._queue_name, traced.append)
        sender = self._sender(self._queue_name)
        try:
            batch = sender.create_message_batch()
            for message in traced:
                sdk_message = _to_sdk_message(message, {})
                try:
                    batch.add_message(sdk_message)
                except MessageSizeExceededError:
                    if not len(batch):
                        raise  # this one message alone is over the limit
                    sender.send_messages(batch, timeout=SEND_TIMEOUT_SECONDS)
                    batch = sender.create_message_batch()
                    batch.add_message(sdk_message)
            if len(batch):
                sender.send_messages(batch, timeout=SEND_TIMEOUT_SECONDS)
        except (ServiceBusError, OSError) as exc:
            self._forget(self._queue_name, sender)
            log.warning(
                "Service Bus did not accept a batch of messages",
                extra={"queue": self._queue_name, "messages": len(traced), "error": str(exc)},
            )
            raise QueueUnavailableError(
                f"queue {self._queue_name!r} did not accept the messages: {exc}"
            ) from exc

    def _send_to_queue(self, message: QueueMessage) -> None:
        self._send_to(self._queue_name, _to_sdk_message(message, {}))

    def dead_letter(self, message: QueueMessage, reason: str, description: str) -> None:
        properties = {"deadLetterReason": reason, "deadLetterDescription": description}
        self._send_to(self._deadletter_queue_name, _to_sdk_message(message, properties))

    def close(self) -> None:
        with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            _close_quietly(sender)

    def _send_to(self, queue_name: str, sdk_message: ServiceBusMessage) -> None:
        sender = self._sender(queue_name)
        try:
            sender.send_messages(sdk_message, timeout=SEND_TIMEOUT_SECONDS)
        except (ServiceBusError, OSError) as exc:
            self._forget(queue_name, sender)
            log.warning(
                "Service Bus did not accept the message",
                extra={"queue": queue_name, "message_id": sdk_message.message_id, "error": str(exc)},
            )
            raise QueueUnavailableError(f"queue {queue_name!r} did not accept the message: {exc}") from exc

    def _sender(self, queue_name: str) -> _Sender:
        with self._lock:
            sender = self._senders.get(queue_name)
            if sender is None:
                sender = self._client.get_queue_sender(queue_name)
                self._senders[queue_name] = sender
            return sender

    def _forget(self, queue_name: str, failed: _Sender) -> None:
        # Only drop the sender that failed: another thread may already have replaced it with a fresh one.
        with self._lock:
            if self._senders.get(queue_name) is failed:
                del self._senders[queue_name]
        _close_quietly(failed)


def _to_sdk_message(message: QueueMessage, extra_properties: dict[str, str]) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.encode(),
        message_id=message.message_id,
        session_id=message.session_id,
        content_type=message.content_type,
        correlation_id=message.correlation_id or None,
        application_properties=_properties(message.application_properties, extra_properties) or None,
        # A track message polls an operation again later; Service Bus holds it until then.
        scheduled_enqueue_time_utc=message.scheduled_at,
    )


def _properties(*layers: Mapping[str, str]) -> dict[str | bytes, _Property]:
    """The layers merged, later keys winning, typed as the SDK's (invariant) dict of properties; the trace
    context under the SDK's bytes keys (`_TRACE_KEYS`)."""
    return {_TRACE_KEYS.get(key.lower(), key): value for layer in layers for key, value in layer.items()}


class _SdkRetry(TypedDict):
    retry_total: int
    retry_backoff_factor: float
    retry_backoff_max: float


def service_bus_client(
    settings: Settings, *, credential: Callable[[], TokenCredential] | None = None
) -> ServiceBusClient:
    """The client the settings name: a connection string, or a namespace with `credential()` (the app's
    managed identity, which the composition root builds only when a namespace is configured)."""
    retry: _SdkRetry = {
        "retry_total": SDK_RETRY_TOTAL,
        "retry_backoff_factor": SDK_RETRY_BACKOFF_FACTOR,
        "retry_backoff_max": SDK_RETRY_BACKOFF_MAX,
    }
    if settings.servicebus_connection_string:
        try:
            return ServiceBusClient.from_connection_string(settings.servicebus_connection_string, **retry)
        except ValueError as exc:
            raise ConfigurationError(f"ServiceBusConnection is not a valid connection string: {exc}") from exc
    if settings.servicebus_namespace:
        if credential is None:
            raise ConfigurationError("ServiceBusConnection__fullyQualifiedNamespace needs a token credential")
        return ServiceBusClient(settings.servicebus_namespace, credential(), **retry)
    raise ConfigurationError("set ServiceBusConnection or ServiceBusConnection__fullyQualifiedNamespace")


def _close_quietly(sender: _Sender) -> None:
    try:
        sender.close()
    except Exception as exc:  # closing a broken link may fail in any way; it is already gone
        log.debug("closing a Service Bus sender failed", extra={"error": str(exc)})
