"""Worker throughput: webhook events per second against Azurite and the sandbox, and API calls per event.

Each event goes through the function `function_app.py` registers for the queue, one at a time on one
thread: GetOperation to verify it, GetSubscription for the truth, ETag-guarded write, audit and inbox rows.
The Fulfillment API is the sandbox over HTTPS on 127.0.0.1; Table Storage is Azurite.

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

from sandbox.server import RunningSandbox
from shared.queueing.messages import QueueMessage, activation_message, webhook_message
from tests.support.azurite import running_azurite
from tests.support.ports import free_port
from tests.support.sandbox import ControlClient, running_sandbox
from tests.support.stack import app_environment


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


def run(subscriptions: int, sandbox: RunningSandbox, handler: object) -> None:
    from shared.app_context import services

    control = ControlClient(sandbox.http_url)
    ids = []
    for _ in range(subscriptions):
        bought = control.buy("basic")
        ids.append(bought["subscriptionId"])
        handler(as_trigger_message(activation_message(bought["subscriptionId"], "basic", None, "bench")))  # type: ignore[operator]
    events = []
    for subscription_id in ids:
        for action in (control.suspend, control.reinstate):
            operation_id = action(subscription_id)["operationId"]
            payload = sandbox.marketplace.operation(subscription_id, operation_id)
            events.append(
                webhook_message(payload, received_at="2026-01-01T00:00:00Z", correlation_id="bench")
            )
    counter: list[int] = []
    install_counting_client(counter)
    started = time.perf_counter()
    for event in events:
        handler(as_trigger_message(event))  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    assert all(services().subscriptions.get(i).status.value == "Subscribed" for i in ids)
    count = len(events)
    print(
        f"worker: {count} webhook events in {elapsed:.2f} s on one thread = {count / elapsed:,.1f} events/s"
    )
    calls = len(counter) / count
    print(f"  {elapsed / count * 1000:.1f} ms per event; {calls:.1f} Fulfillment API calls per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(
        logging.WARNING
    )  # the sandbox's access log would drown the figures
    with (
        running_azurite() as connection_string,
        running_sandbox(webhook_url="http://127.0.0.1:9/not-listening", webhook_max_attempts=1) as sandbox,
    ):
        queue_path = Path(tempfile.mkdtemp()) / "queue.sqlite3"
        prefix = "b" + uuid.uuid4().hex[:8]
        env = app_environment(
            sandbox,
            connection_string=connection_string,
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
        run(args.subscriptions, sandbox, handler)
    print(f"reproduce: .venv/bin/python -m bench.worker_throughput --subscriptions {args.subscriptions}")


if __name__ == "__main__":
    main()
