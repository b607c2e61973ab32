"""Reconciliation repairs what webhooks missed: a change made while the webhook was unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from tests.support.sandbox import wait_until
from tests.support.stack import running_stack


def test_the_sweep_repairs_a_suspension_whose_webhook_never_arrived(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> None:
    import function_app
    from devhost import registered_functions

    with running_stack(
        monkeypatch, tmp_path, connection_string=azurite_connection_string, table_prefix=table_prefix
    ) as stack:
        subscription_id = stack.buy_and_activate("basic")
        stack.control.settings(webhookUrl="http://127.0.0.1:9/unreachable", webhookMaxAttempts=1)
        stack.control.suspend(subscription_id)
        assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Suspended"
        assert stack.stored(subscription_id).status.value == "Subscribed"  # the webhook never came

        sweep = next(
            f.get_user_function()
            for f in registered_functions(function_app.app)
            if f.get_function_name() == "reconciliation_sweep"
        )
        sweep(TimerRequest(past_due=False))

        wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 10)
        wait_until(lambda: stack.services.audit.list(subscription_id)[-1].source == "reconciliation", 10)
