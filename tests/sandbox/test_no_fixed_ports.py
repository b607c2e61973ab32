"""A test's sandbox never calls a fixed port: its webhooks cannot reach another test worker's app.

`tests/sandbox/test_tokens_paging_state.py` failed whenever another worker's app listened on 7071, the
sandbox's default webhook URL: that app answered the webhooks of changes it knew nothing about (a 4xx
rejects a change). A fresh test sandbox now calls a port held for it that refuses every connection.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.support.sandbox import ControlClient, running_sandbox, wait_until


def test_a_fresh_sandbox_calls_no_fixed_port() -> None:
    with running_sandbox() as sandbox:
        url = urlsplit(sandbox.marketplace.settings.webhook_url)
        assert (url.hostname, url.port) != ("127.0.0.1", 7071)
        assert url.port is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((url.hostname, url.port), timeout=2).close()


def test_its_webhooks_reach_nobody_and_leave_changes_pending() -> None:
    with running_sandbox(auto_accept_seconds=60, webhook_max_attempts=1) as sandbox:
        control = ControlClient(sandbox.http_url)
        subscription_id = control.buy("basic")["subscriptionId"]
        sandbox.marketplace.activate(subscription_id, {"planId": "basic"})
        operation_id = control.change_plan(subscription_id, "pro")["operationId"]
        [delivery] = wait_until(lambda: control.deliveries(operation_id))
        assert (delivery["status"], delivery["error"]) == (None, "ConnectionError")
        assert control.operation(operation_id)["status"] == "InProgress"
