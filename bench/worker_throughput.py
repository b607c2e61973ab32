"""Worker throughput: webhook events per second per process, with Fulfillment calls and Table round trips.

Each event goes through the function `function_app.py` registers for the queue, one at a time on one
thread. Two kinds, measured apart: notify events (Suspend, Reinstate: verify with GetOperation, mirror) and
change events (ChangeQuantity: verify, decide, answer with a PATCH, then audit, mirror, license index). The
Fulfillment API is the sandbox over HTTPS on 127.0.0.1; Table Storage is Azurite behind the counting proxy
(tests/support/storage_counter.py), so round trips are counted on the wire. Targets: >= 100 notify and
>= 60 change events/s. Floor, in the same run: one bare Table point read and one bare GetOperation, times
the round trips each event makes (what the event would cost if it did nothing but wait on the wire).

Run: .venv/bin/python -m bench.worker_throughput [--subscriptions 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

import requests
from azure.functions.servicebus import ServiceBusMessage

from bench.machine import machine_line
from sandbox.server import RunningSandbox
from shared.queueing.messages import QueueMessage, activation_message, webhook_message
from tests.support.azurite import running_azurite
from tests.support.ports import free_port
from tests.support.sandbox import ControlClient, running_sandbox
from tests.support.stack import app_environment
from tests.support.storage_counter import CountingStorageProxy


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


def counting_session(counter: list[int]) -> requests.Session:
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: counter.append(1))
    return session


def install_counting_client(counter: list[int]) -> None:
    from shared.app_context import services
    from shared.fulfillment.client import FulfillmentClient
    from shared.fulfillment.credentials import build_credential

    settings = services().settings
    client = FulfillmentClient(
        settings.fulfillment_base_url, build_credential(settings), session=counting_session(counter)
    )
    services().__dict__["fulfillment"] = client  # the composition root caches adapters in its __dict__


def run(subscriptions: int, sandbox: RunningSandbox, handler: object, proxy: CountingStorageProxy) -> None:
    from shared.app_context import services

    control = ControlClient(sandbox.http_url)
    counter: list[int] = []
    install_counting_client(counter)  # before any port is built, so every workflow holds this client
    ids = []
    for _ in range(subscriptions):
        bought = control.buy("team-seats", quantity=3)
        ids.append(bought["subscriptionId"])
        handler(as_trigger_message(activation_message(bought["subscriptionId"], "team-seats", 3, "bench")))  # type: ignore[operator]
    floor_table, floor_api = wire_floor(ids[0], sandbox)

    def event(subscription_id: str, operation_id: str) -> QueueMessage:
        payload = sandbox.marketplace.operation(subscription_id, operation_id)
        return webhook_message(payload, received_at="2026-01-01T00:00:00Z", correlation_id="bench")

    notify = [
        event(i, action(i)["operationId"]) for i in ids for action in (control.suspend, control.reinstate)
    ]
    measure("notify (Suspend, Reinstate)", notify, handler, counter, proxy, floor_table, floor_api, 100)
    changes = [event(i, control.change_quantity(i, 4 + n % 3)["operationId"]) for n, i in enumerate(ids)]
    measure("change (ChangeQuantity)", changes, handler, counter, proxy, floor_table, floor_api, 60)
    assert all(services().subscriptions.get(i).status.value == "Subscribed" for i in ids)


def wire_floor(subscription_id: str, sandbox: RunningSandbox) -> tuple[float, float]:
    """Seconds of one bare Table point read and one bare GetOperation, each the best of 20."""
    from shared.app_context import services

    def best(call: object) -> float:
        times = []
        for _ in range(20):
            started = time.perf_counter()
            call()  # type: ignore[operator]
            times.append(time.perf_counter() - started)
        return min(times)

    operations = services().fulfillment.list_operations(subscription_id)
    table = best(lambda: services().subscriptions.get(subscription_id))
    if not operations:
        return table, best(lambda: services().fulfillment.get_subscription(subscription_id))
    return table, best(lambda: services().fulfillment.get_operation(subscription_id, operations[0].id))


def measure(
    kind: str,
    events: list[QueueMessage],
    handler: object,
    counter: list[int],
    proxy: CountingStorageProxy,
    floor_table: float,
    floor_api: float,
    target: int,
) -> None:
    counter.clear()
    proxy.clear()
    started = time.perf_counter()
    for message in events:
        handler(as_trigger_message(message))  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    count = len(events)
    trips = len(
        [1 for _, path in proxy.requests() if not path.split("?", 1)[0].rstrip("/").endswith("/Tables")]
    )
    # The re-check a change schedules is in the in-memory queue, not run here: it is not part of the event.
    calls, per_trip = len(counter) / count, trips / count
    floor = 1 / (per_trip * floor_table + calls * floor_api)
    print(
        f"worker, {kind}: {count} events in {elapsed:.2f} s on one thread = {count / elapsed:,.1f} events/s"
    )
    print(f"  target >= {target}/s; {elapsed / count * 1000:.1f} ms per event")
    print(f"  per event: {per_trip:.1f} Table round trips, {calls:.1f} Fulfillment API calls")
    print(
        f"  floor: {floor_table * 1000:.2f} ms per Table read, {floor_api * 1000:.2f} ms per API call"
        f" -> {floor:,.0f} events/s if an event only waited on the wire"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(
        logging.WARNING
    )  # the sandbox's access log would drown the figures
    with (
        running_azurite() as azurite,
        CountingStorageProxy(azurite) as proxy,
        running_sandbox(webhook_url="http://127.0.0.1:9/not-listening", webhook_max_attempts=1) as sandbox,
    ):
        queue_path = Path(tempfile.mkdtemp()) / "queue.sqlite3"
        prefix = "b" + uuid.uuid4().hex[:8]
        env = app_environment(
            sandbox,
            connection_string=proxy.connection_string,
            table_prefix=prefix,
            queue_path=queue_path,
            # No HTTP host runs here; the port only makes PUBLIC_BASE_URL well formed.
            app_port=free_port(),
        )
        os.environ.update({**env, "QUEUE_BACKEND": "memory", "LOG_LEVEL": "WARNING"})
        import function_app
        from devhost import registered_functions
        from shared.app_context import reset_services

        reset_services()
        handler = next(
            f.get_user_function()
            for f in registered_functions(function_app.app)
            if f.get_function_name() == "events_worker"
        )
        run(args.subscriptions, sandbox, handler, proxy)
    print(machine_line())
    print(f"reproduce: .venv/bin/python -m bench.worker_throughput --subscriptions {args.subscriptions}")


if __name__ == "__main__":
    main()
