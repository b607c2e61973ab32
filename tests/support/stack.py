"""The whole local stack in one test process: sandbox, Azurite, the dev host and its queue runner.

Everything talks over real sockets on 127.0.0.1, exactly as under `make dev`: the sandbox calls the dev
host's /api/webhook with signed tokens, the function app calls the sandbox's Fulfillment API over HTTPS,
and the worker runs from the local queue through the function `function_app.py` registers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.http_host import FunctionsWsgiApp, HttpHost
from devhost.local_queue import LocalQueue, register_local_queue
from devhost.queue_runner import QueueRunner, max_concurrent_sessions
from sandbox.server import RunningSandbox
from shared.app_context import Services, reset_services, services
from shared.queueing.messages import activation_message, webhook_message
from tests.support.ports import free_port
from tests.support.sandbox import ControlClient, running_sandbox, wait_until

SESSION_SECRET = "test-session-secret-that-is-long-enough-0123456789"
EXAMPLE_IDENTITIES = Path(__file__).resolve().parents[2] / "sandbox" / "identities.example.json"


@dataclass
class Stack:
    sandbox: RunningSandbox
    control: ControlClient
    app_url: str
    queue: LocalQueue

    @property
    def services(self) -> Services:
        return services()

    def stored(self, subscription_id: str) -> Any:
        return services().subscriptions.get(subscription_id)

    def microsoft(self, subscription_id: str) -> dict[str, Any]:
        return self.control.subscription(subscription_id)["subscription"]

    def buy_and_activate(self, plan_id: str, *, quantity: int | None = None, **extra: Any) -> str:
        """A purchase activated through the worker (what the landing's confirm step queues)."""
        bought = self.control.buy(plan_id, quantity=quantity, **extra)
        subscription_id = bought["subscriptionId"]
        purchase = services().fulfillment.resolve(bought["token"])
        from shared.workflows.confirmation import record_purchase

        record_purchase(purchase, "test-activation", sync=services().sync_ports)
        self.queue.send(activation_message(subscription_id, plan_id, quantity, "test-activation"))
        wait_until(lambda: self.microsoft(subscription_id)["saasSubscriptionStatus"] == "Subscribed", 15)
        wait_until(lambda: self.stored(subscription_id).status.value == "Subscribed", 15)
        # The audit entry is written just after the record: wait for it so later checks see a settled trail.
        wait_until(lambda: "Activate" in self.audit_actions(subscription_id), 15)
        return subscription_id

    def announce(
        self,
        subscription_id: str,
        operation_id: str,
        *,
        waited: timedelta = timedelta(0),
        correlation_id: str = "test-webhook",
    ) -> None:
        """Queues the webhook of a sandbox operation as the webhook function would, taken `waited` ago (the
        sandbox's own delivery is pointed elsewhere by the tests that use this)."""
        payload = self.sandbox.marketplace.operation(subscription_id, operation_id)
        received = (datetime.now(UTC) - waited).isoformat(timespec="milliseconds")
        self.queue.send(webhook_message(payload, received_at=received, correlation_id=correlation_id))

    def audit_actions(self, subscription_id: str) -> list[str]:
        return [entry.action for entry in services().audit.list(subscription_id)]

    def settled(self, timeout: float = 20.0) -> None:
        """Waits until the local queue holds nothing ready or in flight (scheduled re-checks may remain)."""
        wait_until(lambda: (lambda c: c.active == 0 and c.locked == 0)(self.queue.counts()), timeout)


def app_environment(
    sandbox: RunningSandbox,
    *,
    connection_string: str,
    table_prefix: str,
    queue_path: Path,
    app_port: int,
) -> dict[str, str]:
    tenant = sandbox.publisher.tenant_id
    sso = json.loads(EXAMPLE_IDENTITIES.read_text())["sso_apps"][0]
    return {
        "SSO_AUTHORITY": sandbox.https_url,
        "SSO_CLIENT_ID": sso["client_id"],
        "SSO_CLIENT_SECRET": sso["client_secret"],
        "GRAPH_BASE_URL": f"{sandbox.https_url}/v1.0",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "FULFILLMENT_API_BASE_URL": sandbox.fulfillment_base_url,
        "ENTRA_AUTHORITY_HOST": sandbox.https_url,
        "REQUESTS_CA_BUNDLE": str(sandbox.ca_bundle),
        "PUBLISHER_CREDENTIAL_KIND": "secret",
        "PUBLISHER_TENANT_ID": tenant,
        "PUBLISHER_CLIENT_ID": sandbox.publisher.client_id,
        "PUBLISHER_CLIENT_SECRET": sandbox.publisher.client_secret,
        "WEBHOOK_OPENID_CONFIG_URL": sandbox.entra.openid_configuration_url(tenant),
        "STORAGE_CONNECTION_STRING": connection_string,
        "TABLE_SUBSCRIPTIONS": f"{table_prefix}subs",
        "TABLE_OPERATIONS": f"{table_prefix}ops",
        "TABLE_SEATS": f"{table_prefix}seats",
        "TABLE_USERS": f"{table_prefix}users",
        "QUEUE_BACKEND": "local",
        "LOCAL_QUEUE_PATH": str(queue_path),
        "SESSION_SECRET": SESSION_SECRET,
        "FULFILLMENT_MAX_ATTEMPTS": "6",
        "FULFILLMENT_MAX_RETRY_SECONDS": "20",
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def running_stack(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    connection_string: str,
    table_prefix: str,
    env: dict[str, str] | None = None,
    max_delivery_count: int = 10,
    **sandbox_settings: Any,
) -> Iterator[Stack]:
    import function_app

    port = free_port()
    sandbox_settings.setdefault("webhook_base_delay_seconds", 0.2)
    sandbox_settings.setdefault("auto_accept_seconds", 10.0)
    with running_sandbox(
        webhook_url=f"http://127.0.0.1:{port}/api/webhook",
        # The sandbox registers the sign-in callback of the app at this landing URL: no identities to patch.
        landing_url=f"http://127.0.0.1:{port}/api/landing",
        **sandbox_settings,
    ) as sandbox:
        queue_path = tmp_path / "queue.sqlite3"
        settings = app_environment(
            sandbox,
            connection_string=connection_string,
            table_prefix=table_prefix,
            queue_path=queue_path,
            app_port=port,
        )
        for name, value in {**settings, **(env or {})}.items():
            monkeypatch.setenv(name, value)
        register_local_queue()  # the landing and webhook send to QUEUE_BACKEND=local, as under the dev host
        reset_services()
        host = HttpHost(FunctionsWsgiApp(function_app.app), port=port)
        host.start()
        # infra/queues.json's maxDeliveryCount; a test of the dead-letter sub-queue gets there sooner.
        queue = LocalQueue(queue_path, lock_seconds=30, max_delivery_count=max_delivery_count)
        # As many sessions at once as host.json allows, as under `make dev` and the Functions host.
        runner = QueueRunner.for_app(function_app.app, queue, workers=max_concurrent_sessions())
        assert runner is not None
        runner.start()
        try:
            yield Stack(
                sandbox=sandbox, control=ControlClient(sandbox.http_url), app_url=host.url, queue=queue
            )
        finally:
            runner.stop()
            host.stop()
            reset_services()
