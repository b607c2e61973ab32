"""The alerts exist, reach the action group, and match log lines the app really writes.

The log alerts are a contract with the app (infra/README.md, "Alerts"): these tests read the lines out of
the app's source and run the app's own log formatting, so renaming a line fails here instead of silencing an
alert in production.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from shared.logs import ContextFilter, JsonFormatter, log_context
from tests.infra.bicep import ROOT, accessor, by_name, resources

WORKER = (ROOT / "shared" / "entrypoints" / "worker.py").read_text()
WEBHOOK = (ROOT / "shared" / "entrypoints" / "webhook.py").read_text()
MESSAGES = (ROOT / "shared" / "queueing" / "messages.py").read_text()
ERRORS = (ROOT / "shared" / "workflows" / "errors.py").read_text()
FUNCTION_APP = (ROOT / "function_app.py").read_text()


def alerts_doc() -> dict[str, Any]:
    return by_name("app/alerts.bicep")


def _metric_criteria() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for alert in resources("Microsoft.Insights/metricAlerts"):
        properties = alert.config["properties"]
        assert [accessor(scope) for scope in properties["scopes"]] == ["namespace.id"], alert.symbol
        assert [accessor(action["actionGroupId"]) for action in properties["actions"]] == ["actionGroup.id"]
        for criterion in properties["criteria"]["allOf"]:
            found[criterion["metricName"]] = criterion
    return found


def _query(variable: str) -> str:
    return str(alerts_doc()["variables"][variable]["value"])


def _log_rules() -> dict[str, dict[str, Any]]:
    rules = {}
    for rule in resources("Microsoft.Insights/scheduledQueryRules"):
        properties = rule.config["properties"]
        assert [accessor(scope) for scope in properties["scopes"]] == ["applicationInsights.id"], rule.symbol
        assert [accessor(group) for group in properties["actions"]["actionGroups"]] == ["actionGroup.id"]
        criterion = properties["criteria"]["allOf"][0]
        assert criterion["timeAggregation"] == "Count"
        assert criterion["operator"] == "GreaterThan"
        rules[rule.symbol] = criterion
    return rules


def test_alerts_mail_the_address_given_at_deployment() -> None:
    groups = resources("Microsoft.Insights/actionGroups")
    assert len(groups) == 1
    receivers = groups[0].config["properties"]["emailReceivers"]
    assert [receiver["emailAddress"] for receiver in receivers] == ["alertEmail"]
    params = by_name("resources.bicep")["modules"]["alerts"]["config"]["params"]
    assert params["alertEmail"] == "alertEmail"
    assert len(groups[0].config["properties"]["groupShortName"]) <= 12


def test_a_dead_letter_on_either_queue_alerts() -> None:
    criterion = _metric_criteria()["DeadletteredMessages"]
    assert criterion["metricNamespace"] == "Microsoft.ServiceBus/namespaces"
    assert criterion["dimensions"] == [
        {"name": "EntityName", "operator": "Include", "values": ["eventsQueueName", "parkingQueueName"]}
    ]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)


def test_a_parked_message_alerts() -> None:
    criterion = _metric_criteria()["ActiveMessages"]
    assert criterion["dimensions"] == [
        {"name": "EntityName", "operator": "Include", "values": ["parkingQueueName"]}
    ]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)


def test_alert_queue_names_are_the_ones_from_queues_json() -> None:
    params = by_name("resources.bicep")["modules"]["alerts"]["config"]["params"]
    assert accessor(params["eventsQueueName"]) == "queues.events.name"
    assert accessor(params["parkingQueueName"]) == "queues.parking.name"
    assert accessor(params["serviceBusNamespaceName"]) == "serviceBus.outputs.name"


def test_log_alerts_exist_for_failed_activations_and_webhook_5xx() -> None:
    rules = _log_rules()
    assert rules["failedActivation"]["query"] == "failedActivationQuery"
    assert rules["webhookFailures"]["query"] == "webhookFailureQuery"


FAILED_ACTIVATION_LINES = ["message failed; it will be delivered again", "message dead-lettered"]
WEBHOOK_503_LINES = ["webhook not enqueued, Microsoft will retry", "webhook signing keys unavailable"]


@pytest.mark.parametrize("line", FAILED_ACTIVATION_LINES)
def test_the_failed_activation_alert_matches_a_line_the_worker_writes(line: str) -> None:
    assert f'"{line}"' in WORKER, f"shared/entrypoints/worker.py no longer writes {line!r}"
    assert f'message has "{line}"' in _query("failedActivationQuery")


def test_the_failed_activation_alert_knows_activation_messages_by_their_id() -> None:
    assert 'message_id=f"activate-{subscription_id}"' in MESSAGES
    assert "class RetryLaterError" in ERRORS
    assert 'message !has "RetryLaterError"' in _query("failedActivationQuery")


def _id_pattern() -> re.Pattern[str]:
    """The KQL `matches regex` of the failed-activation query, as a Python pattern (same syntax here)."""
    match = re.search(r'matches regex @"([^"]+)"', _query("failedActivationQuery"))
    assert match
    return re.compile(match.group(1))


def _formatted(handler_filter: logging.Filter | None, formatter: logging.Formatter | None) -> str:
    record = logging.LogRecord("worker", logging.ERROR, __file__, 1, "message dead-lettered", None, None)
    with log_context(message_id="activate-6a3f0b58-0000-4000-8000-000000000001", subscription_id="s"):
        if handler_filter is not None:
            handler_filter.filter(record)
        return formatter.format(record) if formatter else record.getMessage()


def test_the_id_pattern_matches_the_line_as_the_functions_host_ships_it() -> None:
    # Under the Functions host the app appends its ids to the message text (shared/logs.py ContextFilter).
    line = _formatted(ContextFilter(), None)
    assert _id_pattern().search(line), line


def test_the_id_pattern_matches_the_line_as_the_app_writes_it_elsewhere() -> None:
    line = _formatted(None, JsonFormatter())
    assert _id_pattern().search(line), line


def test_the_id_pattern_leaves_other_messages_alone() -> None:
    with log_context(message_id="reconcile-6a3f0b58-activate-x"):
        record = logging.LogRecord("worker", logging.ERROR, __file__, 1, "message dead-lettered", None, None)
        ContextFilter().filter(record)
    assert not _id_pattern().search(record.getMessage())


@pytest.mark.parametrize("line", WEBHOOK_503_LINES)
def test_the_webhook_alert_matches_the_503_lines_the_webhook_writes(line: str) -> None:
    assert f'"{line}: %s"' in WEBHOOK, f"shared/entrypoints/webhook.py no longer writes {line!r}"
    assert f'message has "{line}"' in _query("webhookFailureQuery")


def test_the_webhook_alert_matches_the_webhook_functions_requests() -> None:
    assert "def marketplace_webhook(" in FUNCTION_APP
    assert '@app.route(route="webhook"' in FUNCTION_APP
    query = _query("webhookFailureQuery")
    assert 'name == "marketplace_webhook"' in query
    assert 'url endswith "/api/webhook"' in query
    assert "toint(resultCode) >= 500" in query
