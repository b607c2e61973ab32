"""`python -m ops` end to end on the local stack: Azurite, the sandbox, the dev host's worker and local queue.

The CLI runs as a subprocess with the stack's settings in its environment (as an operator's shell would
have them), so its own environment handling, argument parsing and output are under test too; a few checks
call `ops.cli.main` in the test process where the output is easier to read there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack

ROOT = Path(__file__).resolve().parents[2]
# Each failed delivery is quick (no retry inside the client) and three of them reach the sub-queue.
FAST_FAILURE = {"FULFILLMENT_MAX_ATTEMPTS": "1"}


def ops(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    done = subprocess.run(
        [sys.executable, "-m", "ops", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def ops_json(*args: str, expect: int = 0) -> Any:
    return json.loads(ops(*args, "--json", expect=expect).stdout)


def forge_webhook(stack: Stack, subscription_id: str) -> str:
    """An operation Microsoft never started, with a valid token: the worker parks it as UnknownOperation."""
    operation_id = str(uuid.uuid4())
    forged = {
        "id": operation_id,
        "subscriptionId": subscription_id,
        "action": "Unsubscribe",
        "status": "Succeeded",
    }
    token = stack.sandbox.entra.mint_webhook_token()
    answer = requests.post(
        f"{stack.app_url}/api/webhook", json=forged, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200
    return operation_id


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Stack:
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        env=FAST_FAILURE,
        max_delivery_count=3,
    ) as running:
        yield running


def test_dead_letters_are_listed_replayed_after_the_fix_and_discarded_with_a_reason(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("basic")
    forged_id = forge_webhook(stack, subscription_id)
    wait_until(lambda: len(stack.queue.dead_letters()) == 1, 15)
    # GetOperation fails on every call: the suspend's webhook fails every delivery and the queue moves it.
    stack.control.add_fault(operation="SubscriptionOperations_GetOperationStatus", kind="500", share=1.0)
    suspend_id = stack.control.suspend(subscription_id)["operationId"]
    wait_until(lambda: len(stack.queue.dead_letters()) == 2, 30)

    listed = {entry["reason"]: entry for entry in ops_json("deadletters", "list")}
    parked, exhausted = listed["UnknownOperation"], listed["MaxDeliveryCountExceeded"]
    assert (parked["source"], parked["messageId"], parked["subscriptionId"]) == (
        "parking",
        forged_id,
        subscription_id,
    )
    assert parked["deliveryCount"] == 1
    assert parked["firstEnqueuedAt"]
    assert parked["body"]["payload"]["id"] == forged_id
    assert (exhausted["source"], exhausted["operationId"], exhausted["deliveryCount"]) == (
        "deadletter",
        suspend_id,
        3,
    )
    assert "FulfillmentServerError" in exhausted["description"]
    table = ops("deadletters", "list").stdout
    assert "parking:" in table
    assert "deadletter:" in table
    assert "UnknownOperation" in table

    stack.control.clear_faults()
    [replayed] = ops_json("deadletters", "replay", "--reason", "MaxDeliveryCountExceeded", "--as", "alice")
    assert replayed["outcome"] == "replayed"
    assert replayed["replayMessageId"] != suspend_id
    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 20)
    wait_until(lambda: stack.services.operations.get(subscription_id, suspend_id).state == "done", 10)

    # Discarding needs a reason (argparse refuses with status 2) and records it with who gave it.
    ops("deadletters", "discard", forged_id, expect=2)
    [discarded] = ops_json(
        "deadletters", "discard", forged_id, "--reason", "forged, checked with Microsoft", "--as", "bob"
    )
    assert discarded["outcome"] == "discarded"
    assert ops_json("deadletters", "list") == []
    ops("deadletters", "replay", forged_id, expect=1)  # nothing by that name any more

    audit = ops_json("subscriptions", "show", subscription_id)["audit"]
    by_action = {entry["action"]: entry for entry in audit}
    assert by_action["DeadLetterReplayed"]["actor"] == "alice"
    assert by_action["DeadLetterReplayed"]["operation_id"] == suspend_id
    assert by_action["DeadLetterDiscarded"]["actor"] == "bob"
    assert by_action["DeadLetterDiscarded"]["source"] == "operator"
    assert by_action["DeadLetterDiscarded"]["changes"]["discard_reason"] == [
        None,
        "forged, checked with Microsoft",
    ]
    assert forged_id not in {
        op["operation_id"] for op in ops_json("subscriptions", "show", subscription_id)["operations"]
    }


def test_subscriptions_reconcile_and_activation_retry(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops.cli import main

    subscription_id = stack.buy_and_activate("basic")
    other = stack.buy_and_activate("pro")

    found = ops_json("subscriptions", "list", "--plan", "pro")
    assert [sub["id"] for sub in found] == [other]
    assert [s["id"] for s in ops_json("subscriptions", "list", "--search", subscription_id[:8])] == [
        subscription_id
    ]
    assert len(ops_json("subscriptions", "list", "--limit", "1")) == 1
    ops("subscriptions", "list", "--status", "Subscribd", expect=1)
    ops("subscriptions", "show", str(uuid.uuid4()), expect=1)

    queued = ops_json("reconcile", "--subscription", subscription_id, "--as", "carol")
    assert queued["queued"] == 1
    wait_until(lambda: "ReconcileRequested" in stack.audit_actions(subscription_id), 10)
    ops("reconcile", "--subscription", str(uuid.uuid4()), expect=1)
    # The sweep: both listed, both in step with Microsoft, so nothing to queue.
    swept = ops_json("reconcile")
    assert (swept["listed"], swept["queued"], swept["in_step"], swept["malformed"]) == (2, 0, 2, 0)
    stack.settled()

    refused = ops("activation", "retry", subscription_id, expect=1)
    assert "Subscribed" in refused.stderr

    # In process: the human table of `subscriptions show` (wide enough that no cell is folded).
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["subscriptions", "show", subscription_id]) == 0
    shown = capsys.readouterr().out
    assert "ReconcileRequested" in shown
    assert "carol" in shown
    assert "Activate" in shown
