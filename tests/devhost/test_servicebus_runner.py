"""The dev host's Service Bus runner at the SDK boundary: what the function receives, and how it settles.

A real namespace cannot be reached from here, so the SDK's receiver is played by a recording stand-in with
the same methods (iteration, complete_message, abandon_message); the function is the app's real worker
registration shape, and the message objects carry the fields `ServiceBusReceivedMessage` has.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from devhost.queue_runner import queue_functions
from devhost.servicebus_runner import ServiceBusRunner, to_function_message


@dataclass
class Received:
    body: Any
    message_id: str
    session_id: str | None = "sub-1"
    content_type: str | None = "application/json"
    correlation_id: str | None = "corr-1"
    delivery_count: int | None = 1
    enqueued_time_utc: datetime | None = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    sequence_number: int | None = 7
    locked_until_utc: datetime | None = None
    lock_token: Any = "lock-1"
    application_properties: dict[Any, Any] | None = None


class RecordingReceiver:
    def __init__(self, messages: list[Received]) -> None:
        self.messages = messages
        self.completed: list[str] = []
        self.abandoned: list[str] = []

    def __iter__(self) -> Any:
        return iter(self.messages)

    def complete_message(self, message: Received) -> None:
        self.completed.append(message.message_id)

    def abandon_message(self, message: Received) -> None:
        self.abandoned.append(message.message_id)


def worker_app(seen: list[func.ServiceBusMessage], fail_on: set[str]) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.service_bus_queue_trigger(
        arg_name="msg", queue_name="events", connection="SB", is_sessions_enabled=True
    )
    def worker(msg: func.ServiceBusMessage) -> None:
        seen.append(msg)
        if msg.message_id in fail_on:
            raise RuntimeError("transient")

    return app


def test_a_received_message_becomes_what_the_python_worker_would_pass() -> None:
    received = Received(
        body=iter([b'{"kind":', b'"activate"}']),  # the SDK yields the body in sections
        message_id="m-1",
        application_properties={b"deadLetterReason": "x"},
    )
    message = to_function_message(received)
    assert json.loads(message.get_body()) == {"kind": "activate"}
    assert (message.message_id, message.session_id, message.correlation_id) == ("m-1", "sub-1", "corr-1")
    assert message.delivery_count == 1
    assert message.lock_token == "lock-1"
    assert message.application_properties == {"deadLetterReason": "x"}


def test_returning_completes_and_raising_abandons_in_session_order() -> None:
    seen: list[func.ServiceBusMessage] = []
    [function] = queue_functions(worker_app(seen, fail_on={"m-2"}))
    receiver = RecordingReceiver([Received(body=b"{}", message_id=f"m-{n}") for n in (1, 2, 3)])
    runner = ServiceBusRunner(function, client=None, stop_event=threading.Event())

    assert runner.drain(receiver) == 3

    assert [m.message_id for m in seen] == ["m-1", "m-2", "m-3"]
    assert receiver.completed == ["m-1", "m-3"]
    assert receiver.abandoned == ["m-2"]


def test_a_stopping_runner_leaves_the_rest_of_the_session_to_the_next_receiver() -> None:
    seen: list[func.ServiceBusMessage] = []
    [function] = queue_functions(worker_app(seen, fail_on=set()))
    stop = threading.Event()
    stop.set()
    receiver = RecordingReceiver([Received(body=b"{}", message_id=f"m-{n}") for n in (1, 2)])

    assert ServiceBusRunner(function, client=None, stop_event=stop).drain(receiver) == 1
    assert receiver.completed == ["m-1"]
