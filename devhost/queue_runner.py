"""Feeds the app's Service Bus-triggered function from the local queue, settling messages like the host does.

As many worker threads as host.json's `serviceBus.maxConcurrentSessions` (the Functions host's limit for a
sessionful trigger) each receive a message: the queue hands out only the head of a session nobody holds, so
each session's messages run in order and one at a time while different sessions (subscriptions) run in
parallel up to that limit. Each thread builds the same `azure.functions.ServiceBusMessage` the Python
worker would, and calls the registered function. Returning completes the message; raising abandons it, so
the queue redelivers it with a higher delivery count and dead-letters it after the maximum, exactly the
retry story the worker relies on in Azure. While a function runs its lock is renewed, as the Functions host
does (up to five minutes).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage

from devhost import function_name, host_json_setting, registered_functions
from devhost.http_host import call_user_function
from devhost.local_queue import LeasedMessage, LocalQueue, LockLostError
from shared.logs import get_logger, log_context

SERVICE_BUS_TRIGGERS = {"serviceBusTrigger"}
MAX_LOCK_RENEWAL_SECONDS = 300.0

_log = get_logger(__name__)


@dataclass(frozen=True)
class QueueFunction:
    """The Service Bus trigger as registered: the function and the argument it receives the message as."""

    name: str
    queue_name: str
    argument: str
    user_function: Callable[..., Any]


def _resolve(setting_reference: str) -> str:
    # `%NAME%` in a binding is an app setting reference, resolved by the host from the environment.
    return re.sub(r"%(\w+)%", lambda m: os.environ.get(m[1], m[0]), setting_reference or "")


def queue_functions(app: func.FunctionApp) -> list[QueueFunction]:
    """The Service Bus queue triggers of `app`, read from its registrations."""
    found = []
    for function in registered_functions(app):
        trigger = function.get_trigger()
        if trigger is None or trigger.type not in SERVICE_BUS_TRIGGERS:
            continue
        found.append(
            QueueFunction(
                name=function_name(function),
                queue_name=_resolve(getattr(trigger, "queue_name", "")),
                argument=trigger.name,
                user_function=function.get_user_function(),
            )
        )
    return found


def max_concurrent_sessions() -> int:
    """host.json's `extensions.serviceBus.maxConcurrentSessions`: sessions the host works on at once."""
    return int(host_json_setting("extensions", "serviceBus", "maxConcurrentSessions"))


def to_service_bus_message(lease: LeasedMessage) -> ServiceBusMessage:
    """What the Python worker hands the function: body bytes plus the broker's metadata."""
    message = lease.message
    properties = dict(message.application_properties)
    return ServiceBusMessage(
        body=message.encode(),
        message_id=message.message_id,
        session_id=message.session_id or None,
        content_type=message.content_type,
        correlation_id=message.correlation_id or None,
        delivery_count=lease.delivery_count,
        enqueued_time_utc=lease.enqueued_time,
        enqueued_sequence_number=lease.sequence_number,
        sequence_number=lease.sequence_number,
        locked_until=lease.locked_until,
        lock_token=lease.lock_token,
        application_properties=properties,
        user_properties=dict(properties),
    )


class WorkerThreads:
    """A few daemon threads running `_work` until `stop_event` is set; the runners below share this."""

    def __init__(self, name: str, workers: int, stop_event: threading.Event | None) -> None:
        self.stop_event = stop_event or threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the threads to finish their current message and waits for them."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        raise NotImplementedError


class QueueRunner(WorkerThreads):
    """Worker threads that run one queue-triggered function until `stop_event` is set.

    `workers` defaults to host.json's `maxConcurrentSessions`.
    """

    def __init__(
        self,
        function: QueueFunction,
        queue: LocalQueue,
        *,
        workers: int | None = None,
        stop_event: threading.Event | None = None,
        receive_timeout: float = 0.5,
    ) -> None:
        # One thread per session in flight, as the host runs one session per receiver.
        self.workers = workers or max_concurrent_sessions()
        super().__init__("devhost-queue", self.workers, stop_event)
        self.function = function
        self.queue = queue
        self._receive_timeout = receive_timeout

    @classmethod
    def for_app(cls, app: func.FunctionApp, queue: LocalQueue, **options: Any) -> QueueRunner | None:
        """The runner for the app's one queue trigger; None when it has none."""
        functions = queue_functions(app)
        if not functions:
            return None
        if len(functions) > 1:
            names = ", ".join(f.name for f in functions)
            raise ValueError(
                f"the dev host feeds one queue-triggered function from one local queue, got {names}"
            )
        return cls(functions[0], queue, **options)

    def _work(self) -> None:
        while not self.stop_event.is_set():
            try:
                lease = self.queue.receive(timeout=self._receive_timeout)
            except Exception:
                _log.exception("receiving from the local queue failed")
                self.stop_event.wait(1.0)
                continue
            if lease is not None:
                self.process(lease)

    def process(self, lease: LeasedMessage) -> None:
        """Runs the function on one message and settles it: complete on return, abandon on exception."""
        ids = {"message_id": lease.message_id, "subscription_id": lease.session_id}
        with log_context(function=self.function.name, correlation_id=lease.message.correlation_id, **ids):
            try:
                with self._lock_renewed(lease):
                    call_user_function(
                        self.function.user_function, **{self.function.argument: to_service_bus_message(lease)}
                    )
            except Exception as exc:
                _log.warning(
                    "function %s failed on delivery %d; abandoning",
                    self.function.name,
                    lease.delivery_count,
                    exc_info=True,
                )
                self._settle(self.queue.abandon, lease, f"{type(exc).__name__}: {exc}")
                return
            self._settle(self.queue.complete, lease)

    def _settle(self, settle: Callable[..., None], lease: LeasedMessage, *reason: str) -> None:
        try:
            settle(lease, *reason)
        except LockLostError:
            # As on Service Bus: the lock ran out, so the message will simply be delivered again.
            _log.warning("lock lost before settling; the message will be delivered again")

    @contextmanager
    def _lock_renewed(self, lease: LeasedMessage) -> Iterator[None]:
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(lease, done), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    def _renew_until(self, lease: LeasedMessage, done: threading.Event) -> None:
        interval = max(self.queue.lock_seconds / 3, 0.05)
        renewals = int(MAX_LOCK_RENEWAL_SECONDS / interval)
        for _ in range(renewals):
            if done.wait(interval):
                return
            try:
                self.queue.renew_lock(lease)
            except LockLostError:
                return
