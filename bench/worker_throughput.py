"""Worker throughput: webhook events per second per process, with Fulfillment calls and Table round trips.

Each event goes through the function `function_app.py` registers for the queue, in this process, the way
the Functions host runs it: `maxConcurrentSessions` sessions at once (host.json), one session per
subscription, its events in order. Microsoft (the sandbox, over HTTPS) and Table Storage (Azurite) run in
their own processes, started by `python -m devhost.stack` on free ports; the stack's dev host gets no
webhook (the sandbox's webhook URL points nowhere), so the only worker is this process's.

Two kinds, measured apart: notify events (Suspend, Reinstate: verify with GetOperation, mirror) and change
events (ChangeQuantity: verify, decide, answer with a PATCH, then audit, mirror, license index). Round trips
per event are counted on the wire in a first, one-at-a-time pass through the counting proxy
(tests/support/storage_counter.py); the timed pass then talks to Azurite directly. Targets: >= 100 notify
and >= 60 change events/s. Floor, in the same run and at the same concurrency: the bare library calls an
event makes (Table point reads and GetOperation calls, as many as the event makes), with no logic around.
The CPU milliseconds this process spends per event are printed too (the GIL caps one process at one core).

Run: .venv/bin/python -m bench.worker_throughput [--subscriptions 64 --sessions 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from azure.functions.servicebus import ServiceBusMessage

from bench.burst import LocalStack, use_app_settings
from bench.machine import machine_line
from devhost.queue_runner import max_concurrent_sessions
from shared.queueing.messages import MessageKind, QueueMessage, activation_message, webhook_message
from tests.support.sandbox import ControlClient
from tests.support.storage_counter import CountingStorageProxy

Handler = Callable[[ServiceBusMessage], None]


@dataclass(frozen=True)
class Cost:
    """What one event of a kind costs on the wire, from the counting pass."""

    table_round_trips: float
    api_calls: float


def as_trigger_message(message: QueueMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.encode(),
        message_id=message.message_id,
        session_id=message.session_id,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_count=1,
        application_properties={},
        user_properties={},
    )


def fresh_worker(connection_string: str, api_counter: list[int] | None = None) -> Handler:
    """The queue function of a freshly composed app on `connection_string`; Fulfillment calls counted into
    `api_counter` when given (through a response hook on the client's own session)."""
    import function_app
    from devhost import registered_functions
    from shared.app_context import reset_services, services

    os.environ["STORAGE_CONNECTION_STRING"] = connection_string
    reset_services()
    if api_counter is not None:
        session = services().fulfillment._session  # the client's own session: nothing else is replaced
        session.hooks["response"].append(lambda response, *args, **kwargs: api_counter.append(1))
    return next(
        f.get_user_function()
        for f in registered_functions(function_app.app)
        if f.get_function_name() == "events_worker"
    )


def webhook_event(control: ControlClient, subscription_id: str, operation_id: str) -> QueueMessage:
    return webhook_message(control.operation(operation_id), received_at="", correlation_id="bench")


def taken_in_now(message: QueueMessage) -> QueueMessage:
    """The message as the webhook would queue it this instant: a change that waited in the queue longer than
    a moment is handled behind (docs/design.md), and the bench measures the ordinary path."""
    if message.body.get("kind") != MessageKind.WEBHOOK:
        return message
    received = datetime.now(UTC).isoformat(timespec="milliseconds")
    return webhook_message(message.body["payload"], received_at=received, correlation_id="bench")


def notify_events(control: ControlClient, ids: list[str]) -> list[list[QueueMessage]]:
    """Per subscription, its Suspend and Reinstate notifications in order."""
    return [
        [
            webhook_event(control, i, action(i)["operationId"])
            for action in (control.suspend, control.reinstate)
        ]
        for i in ids
    ]


def change_events(control: ControlClient, ids: list[str], round_: int) -> list[list[QueueMessage]]:
    return [[webhook_event(control, i, control.change_quantity(i, 4 + round_)["operationId"])] for i in ids]


def run_sessions(handler: Handler, sessions: list[list[QueueMessage]], concurrency: int) -> float:
    """Seconds to work through every session, `concurrency` at a time, each session's events in order."""

    def one_session(events: list[QueueMessage]) -> None:
        for message in events:
            handler(as_trigger_message(taken_in_now(message)))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="session") as pool:
        list(pool.map(one_session, sessions))
    return time.perf_counter() - started


def count_costs(
    handler: Handler, sessions: list[list[QueueMessage]], proxy: CountingStorageProxy, counter: list[int]
) -> Cost:
    proxy.clear()
    counter.clear()
    run_sessions(handler, sessions, 1)
    events = sum(len(s) for s in sessions)
    trips = [
        path for _, path in proxy.requests() if not path.split("?", 1)[0].rstrip("/").endswith("/Tables")
    ]
    return Cost(len(trips) / events, len(counter) / events)


def floor_rate(operations: list[tuple[str, str]], cost: Cost, concurrency: int, seconds: float) -> float:
    """Events/s if each event were only its bare library calls: `cost` Table point reads and GetOperation
    calls back to back, `concurrency` at once, for about `seconds`."""
    from shared.app_context import services

    app = services()
    app.subscriptions.get(operations[0][0])  # create the table client before timing

    def one_event(index: int) -> None:
        subscription_id, operation_id = operations[index % len(operations)]
        for _ in range(round(cost.table_round_trips)):
            app.subscriptions.get(subscription_id)
        for _ in range(round(cost.api_calls)):
            app.fulfillment.get_operation(subscription_id, operation_id)

    done = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while time.perf_counter() - started < seconds:
            list(pool.map(one_event, range(done, done + concurrency * 4)))
            done += concurrency * 4
    return done / (time.perf_counter() - started)


def measure(
    kind: str,
    handler: Handler,
    sessions: list[list[QueueMessage]],
    concurrency: int,
    cost: Cost,
    floor: float,
    target: int,
) -> None:
    events = sum(len(s) for s in sessions)
    cpu_started = time.process_time()
    elapsed = run_sessions(handler, sessions, concurrency)
    cpu = time.process_time() - cpu_started
    rate = events / elapsed
    print(
        f"worker, {kind}: {events} events in {elapsed:.2f} s, {concurrency} sessions = {rate:,.1f} events/s"
    )
    print(f"  target >= {target}/s; this process: {cpu / events * 1000:.1f} ms CPU per event")
    trips, calls = cost.table_round_trips, cost.api_calls
    print(f"  per event: {trips:.1f} Table round trips, {calls:.1f} Fulfillment API calls")
    print(f"  floor (bare calls, same concurrency): {floor:,.0f} events/s -> ratio {floor / rate:.2f}")


def activate(control: ControlClient, handler: Handler, count: int, concurrency: int) -> list[str]:
    """`count` subscriptions bought and activated through the worker, `concurrency` sessions at once (which
    also opens the connection pools the measured passes then reuse, as a warm Functions instance has)."""
    bought = [control.buy("team-seats", quantity=3)["subscriptionId"] for _ in range(count)]
    sessions = [[activation_message(i, "team-seats", 3, "bench")] for i in bought]
    run_sessions(handler, sessions, concurrency)
    return bought


def operations(sessions: Iterable[list[QueueMessage]]) -> list[tuple[str, str]]:
    """(subscription id, operation id) of every event."""
    return [
        (message.session_id, str(message.body["payload"]["id"])) for events in sessions for message in events
    ]


def run(control: ControlClient, azurite: str, subscriptions: int, concurrency: int) -> None:
    counter: list[int] = []
    with CountingStorageProxy(azurite) as proxy:
        counting = fresh_worker(proxy.connection_string, counter)
        sample = activate(control, counting, 4, 1)
        notify_cost = count_costs(counting, notify_events(control, sample), proxy, counter)
        change_cost = count_costs(counting, change_events(control, sample, 0), proxy, counter)
    handler = fresh_worker(azurite)
    ids = activate(control, handler, subscriptions, concurrency)
    notify = notify_events(control, ids)
    floor = floor_rate(operations(notify), notify_cost, concurrency, 3.0)
    measure("notify (Suspend, Reinstate)", handler, notify, concurrency, notify_cost, floor, 100)
    changes = change_events(control, ids, 1)
    floor = floor_rate(operations(changes), change_cost, concurrency, 3.0)
    measure("change (ChangeQuantity)", handler, changes, concurrency, change_cost, floor, 60)
    stored = [handler_services_status(i) for i in ids]
    assert all(status == "Subscribed" for status in stored), stored


def handler_services_status(subscription_id: str) -> str:
    from shared.app_context import services

    record = services().subscriptions.get(subscription_id)
    return "" if record is None else record.status.value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=max_concurrent_sessions())
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as folder, LocalStack(Path(folder)) as stack:
        use_app_settings(stack)
        # Recheck messages stay in this process (they are not part of the event); no webhook reaches the
        # stack's dev host, so its worker stays idle.
        os.environ["QUEUE_BACKEND"] = "memory"
        control = ControlClient(f"http://127.0.0.1:{stack.ports['SANDBOX_HTTP_PORT']}", timeout=30)
        control.settings(webhookUrl="http://127.0.0.1:9/not-listening", webhookMaxAttempts=1)
        azurite = os.environ["STORAGE_CONNECTION_STRING"]
        run(control, azurite, args.subscriptions, args.sessions)
    print(machine_line())
    print(
        f"reproduce: .venv/bin/python -m bench.worker_throughput --subscriptions {args.subscriptions} "
        f"--sessions {args.sessions}"
    )


if __name__ == "__main__":
    main()
