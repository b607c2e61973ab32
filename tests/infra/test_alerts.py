"""The alerts exist, reach the action group, and match the log events the app really writes.

The two log alerts are a contract with the app (infra/README.md "Alerts", docs/observability.md "Log events
for alerts"): they match the stable `event` names of `shared.telemetry`, as `customDimensions.event` of the
app's OpenTelemetry rows and as `event=<name>` in the Functions host's copy of the line, which
`shared.logs.ContextFilter` appends to the text (with the line's `reason`, which the failed-activation alert
reads to leave RetryLaterError out). These tests drive the real worker and webhook, ship every line they
write as both sinks do (the host's handler with ContextFilter; the app's OpenTelemetry log records, and its
JsonFormatter fields, which are the same extras), and run the queries' filters on the rows: renaming an
event, or shipping a line differently, fails here instead of silencing an alert in production.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure.functions.servicebus import ServiceBusMessage

import function_app
from devhost import function_name, registered_functions
from shared.entrypoints import webhook, worker
from shared.identity.signing_keys import SigningKeysUnavailableError
from shared.identity.tokens import InvalidTokenError
from shared.logs import ContextFilter, JsonFormatter
from shared.queueing.memory import InMemoryQueue
from shared.queueing.messages import QueueMessage, QueueUnavailableError, activation_message, webhook_message
from shared.telemetry import EVENT_ACTIVATION_FAILED, EVENT_WEBHOOK_5XX
from shared.workflows.errors import PermanentFailureError, RetryLaterError
from tests.infra.bicep import ROOT, accessor, by_name, resources
from tests.support.telemetry import Recorded, recording_telemetry


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


def test_the_dead_letter_alert_explains_only_what_the_queues_can_do() -> None:
    # The parking queue has no time to live and does not dead-letter on expiry (queues.json): its dead
    # letters come from deliveries abandoned maxDeliveryCount times, never from expiry.
    queues = json.loads((ROOT / "infra" / "queues.json").read_text())
    parking = queues["parking"]["properties"]
    assert parking["deadLetteringOnMessageExpiration"] is False
    assert "defaultMessageTimeToLive" not in parking
    description = by_name("app/alerts.bicep")["resources"]["deadLettered"]["config"]["properties"][
        "description"
    ]
    after_parking = description.split("${parkingQueueName}", 1)[1]
    assert "expired" not in after_parking
    assert "maxDeliveryCount" in after_parking


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


# --- the queries, read and run -----------------------------------------------------------------------------
#
# Just enough KQL for these two queries: `T | where c | where c ...` or `union (T | where ...), (U | ...)`,
# where a condition joins, with `and` / `or` and parentheses, comparisons of a column or
# `tostring(customDimensions.<name>)` (==, !=, has, !has, endswith) and `toint(<column>)` with a number.
# Anything else in a query fails the reading, so the tests never pass on a query they did not understand.

Row = Mapping[str, Any]  # a table's row: its columns, `customDimensions` a mapping
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) | (?P<join>and|or)\b
      | tostring\(customDimensions\.(?P<dim>\w+)\)
        \s*(?P<dim_op>==|!=|!has|has|endswith)\s*"(?P<dim_value>[^"]*)"
      | toint\((?P<int_column>\w+)\)\s*(?P<int_op>>=|<=|==|!=|>|<)\s*(?P<number>-?\d+)
      | (?P<column>\w+)\s*(?P<op>==|!=|!has|has|endswith)\s*"(?P<value>[^"]*)"
    )""",
    re.VERBOSE,
)
# Kusto's terms (what `has` matches) are maximal runs of ASCII letters and digits.
_TERM_CHARACTER = "A-Za-z0-9"


def _has(text: str, phrase: str) -> bool:
    """KQL `has`: `phrase` appears in `text` on term boundaries, case-insensitively."""
    edge = f"[{_TERM_CHARACTER}]"
    assert re.fullmatch(f"{edge}.*{edge}", phrase), f"has {phrase!r}: not read here"
    return re.search(rf"(?<!{edge}){re.escape(phrase)}(?!{edge})", text, re.IGNORECASE) is not None


def _compare(op: str, value: object, expected: str) -> bool:
    text = "" if value is None else str(value)  # tostring(null) == ""
    return {
        "==": lambda: text == expected,
        "!=": lambda: text != expected,
        "has": lambda: _has(text, expected),
        "!has": lambda: not _has(text, expected),
        "endswith": lambda: text.lower().endswith(expected.lower()),
    }[op]()


def _to_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _atom(match: re.Match[str]) -> Predicate:
    if match["dim"]:
        name, op, expected = match["dim"], match["dim_op"], match["dim_value"]
        return lambda row: _compare(op, (row.get("customDimensions") or {}).get(name), expected)
    if match["int_column"]:
        column, op, number = match["int_column"], match["int_op"], int(match["number"])
        compare: dict[str, Callable[[int, int], bool]] = {
            ">=": int.__ge__,
            "<=": int.__le__,
            "==": int.__eq__,
            "!=": int.__ne__,
            ">": int.__gt__,
            "<": int.__lt__,
        }

        def test(row: Row) -> bool:
            value = _to_int(row.get(column))
            return value is not None and compare[op](value, number)

        return test
    column, op, expected = match["column"], match["op"], match["value"]
    return lambda row: _compare(op, row.get(column), expected)


def _condition(text: str) -> Predicate:
    tokens: list[re.Match[str]] = []
    at = 0
    while text[at:].strip():
        match = _TOKEN.match(text, at)
        assert match, f"cannot read {text[at:]!r} of the condition {text!r}"
        assert match.end() > at, f"cannot read {text[at:]!r} of the condition {text!r}"
        tokens.append(match)
        at = match.end()
    position = 0

    def peek() -> re.Match[str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> re.Match[str]:
        nonlocal position
        assert position < len(tokens), f"the condition {text!r} ends too soon"
        position += 1
        return tokens[position - 1]

    def either() -> Predicate:  # `or` binds looser than `and`, as in KQL
        parts = [both()]
        while (token := peek()) is not None and token["join"] == "or":
            take()
            parts.append(both())
        return lambda row: any(part(row) for part in parts)

    def both() -> Predicate:
        parts = [single()]
        while (token := peek()) is not None and token["join"] == "and":
            take()
            parts.append(single())
        return lambda row: all(part(row) for part in parts)

    def single() -> Predicate:
        token = take()
        if token["open"]:
            inner = either()
            assert take()["close"], f"unbalanced parentheses in {text!r}"
            return inner
        assert not token["close"], f"unexpected ')' in {text!r}"
        assert not token["join"], f"unexpected {token['join']!r} in {text!r}"
        return _atom(token)

    predicate = either()
    assert position == len(tokens), f"cannot read the end of {text!r}"
    return predicate


def _split(text: str, separator: str) -> list[str]:
    """`text` split on `separator` outside strings and parentheses."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, character in enumerate(text):
        if character == '"':
            quoted = not quoted
        elif not quoted and character in "()":
            depth += 1 if character == "(" else -1
        elif not quoted and depth == 0 and character == separator:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


@dataclass(frozen=True)
class Query:
    legs: tuple[tuple[str, tuple[Predicate, ...]], ...]  # (table, its where conditions)

    @classmethod
    def read(cls, text: str) -> Query:
        text = text.strip()
        if text.startswith("union"):
            legs = _split(text.removeprefix("union"), ",")
            assert all(leg.startswith("(") and leg.endswith(")") for leg in legs), text
            legs = [leg[1:-1] for leg in legs]
        else:
            legs = [text]
        read = []
        for leg in legs:
            table, *steps = _split(leg, "|")
            assert re.fullmatch(r"\w+", table), f"not a table: {table!r}"
            assert all(step.startswith("where ") for step in steps), f"only `where` is read here: {steps}"
            read.append((table, tuple(_condition(step.removeprefix("where ")) for step in steps)))
        return cls(tuple(read))

    def tables(self) -> set[str]:
        return {table for table, _ in self.legs}

    def count(self, rows: Mapping[str, list[Row]]) -> int:
        """How many rows the query returns: what the alert counts (it fires on more than 0)."""
        return sum(
            1
            for table, conditions in self.legs
            for row in rows.get(table, [])
            if all(condition(row) for condition in conditions)
        )


def failed_activation_query() -> Query:
    return Query.read(_query("failedActivationQuery"))


def webhook_failure_query() -> Query:
    return Query.read(_query("webhookFailureQuery"))


def test_the_kql_reader_reads_as_kusto_does() -> None:
    # `has` matches whole terms (runs of letters and digits), case-insensitively; `_` and `=` separate terms.
    assert _has("activation failed [message_id=m event=activation_failed]", "event=activation_failed")
    assert _has("x EVENT=Activation_Failed]", "event=activation_failed")
    assert not _has("x event=activation_failedx", "event=activation_failed")
    assert not _has("x subevent=activation_failed", "event=activation_failed")
    query = Query.read('t | where a == "1" or b == "1" and c == "1" | where toint(d) >= 500')
    assert query.count({"t": [{"a": "1", "d": "500"}]}) == 1
    assert query.count({"t": [{"b": "1", "d": "500"}]}) == 0, "`and` binds tighter than `or`"
    assert query.count({"t": [{"a": "1", "d": "499"}, {"a": "1", "d": "x"}]}) == 0
    with pytest.raises(AssertionError):
        Query.read('t | where a contains "1"')
    with pytest.raises(AssertionError):
        Query.read('t | where a == "1" | project a')


def test_the_log_alerts_name_the_apps_event_constants() -> None:
    # The events are read from shared.telemetry, never spelled here; the runs below prove they match.
    assert failed_activation_query().tables() == {"traces"}
    assert f'"{EVENT_ACTIVATION_FAILED}"' in _query("failedActivationQuery")
    assert f'"event={EVENT_ACTIVATION_FAILED}"' in _query("failedActivationQuery")
    assert webhook_failure_query().tables() == {"requests", "traces"}
    assert f'"{EVENT_WEBHOOK_5XX}"' in _query("webhookFailureQuery")
    assert f'"event={EVENT_WEBHOOK_5XX}"' in _query("webhookFailureQuery")


# --- the lines as shipped ----------------------------------------------------------------------------------


# host.json's level for the category of the app's lines ("Function.<name>.User"): the host ships only these.
HOST_LEVELS = {"Trace": 0, "Debug": 10, "Information": 20, "Warning": 30, "Error": 40, "Critical": 50}
HOST_FUNCTION_LEVEL = HOST_LEVELS[
    json.loads((ROOT / "host.json").read_text())["logging"]["logLevel"]["Function"]
]


def test_the_host_ships_only_the_app_lines_the_alerts_need() -> None:
    # Every app line reaches Application Insights once through the app's OpenTelemetry handler; the host's
    # copy is for the alerts' text branch (events at WARNING and ERROR) and for telemetry turned off.
    assert HOST_FUNCTION_LEVEL == logging.WARNING


class Sinks(logging.Handler):
    """Every record written under `shared`, shipped at emit time (the log context is read then) as:

    - `host`: the Functions host's `traces` row, for lines at or above host.json's "Function" level (the
      host drops the others). Its handler carries ContextFilter (shared.logs.configure) and ships the
      formatted text (a traceback included); no app field reaches `customDimensions`.
    - `fields`: the app's JsonFormatter line read as a row, its fields (the record's extras and context ids)
      as `customDimensions`: the same extras the OpenTelemetry log record carries as attributes.
    - the OpenTelemetry log records themselves (`otel_rows`), as the Azure Monitor exporter gets them:
      `message` the body, `customDimensions` the attributes.
    """

    def __init__(self, recorded: Recorded) -> None:
        super().__init__(logging.DEBUG)
        self.recorded = recorded
        self.host: list[Row] = []
        self.fields: list[Row] = []
        self._json = JsonFormatter()
        self._host = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        entry = json.loads(self._json.format(record))
        self.fields.append({"message": entry.pop("message"), "customDimensions": entry})
        if record.levelno < HOST_FUNCTION_LEVEL:
            return
        host_record = logging.makeLogRecord(dict(record.__dict__))
        ContextFilter().filter(host_record)
        self.host.append({"message": self._host.format(host_record), "customDimensions": {}})

    def otel_rows(self) -> list[Row]:
        return [
            {"message": str(r.body), "customDimensions": dict(r.attributes or {})}
            for r in self.recorded.log_records()
        ]

    def traces(self) -> dict[str, list[Row]]:
        """Each sink's rows on its own: an alert must fire from any one of them."""
        return {"host": self.host, "fields": self.fields, "otel": self.otel_rows()}


@pytest.fixture
def sinks(caplog: pytest.LogCaptureFixture) -> Iterator[Sinks]:
    caplog.set_level(logging.INFO, logger="shared")
    logger = logging.getLogger("shared")
    with recording_telemetry() as recorded:
        handler = Sinks(recorded)
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)


def _fires_on_each_sink(query: Query, sinks: Sinks) -> dict[str, bool]:
    return {name: query.count({"traces": rows}) > 0 for name, rows in sinks.traces().items()}


EVERY_SINK = {"host": True, "fields": True, "otel": True}
NO_SINK = {"host": False, "fields": False, "otel": False}


# --- the worker: failed activations ------------------------------------------------------------------------


def _deliver(monkeypatch: pytest.MonkeyPatch, message: QueueMessage, failure: Exception) -> None:
    """Runs the real worker on `message`, its workflow failing with `failure`; services are stand-ins."""

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(worker, "activate_purchase", fail)
    monkeypatch.setattr(worker, "handle_announced_operation", fail)
    parking = InMemoryQueue()
    app = SimpleNamespace(activation_ports=None, operation_ports=None, queue=parking)
    monkeypatch.setattr(worker, "services", lambda: app)
    delivered = ServiceBusMessage(
        body=message.encode(),
        message_id=message.message_id,
        session_id=message.session_id,
        correlation_id=message.correlation_id,
        delivery_count=2,
        application_properties={},
        user_properties={},
    )
    try:
        worker.handle_message(delivered)
    except type(failure):
        assert not parking.dead_letters, "raised: Service Bus delivers it again"
    else:
        assert parking.dead_letters, "returned: parked"


def _activation() -> QueueMessage:
    return activation_message(str(uuid.uuid4()), "basic", None, str(uuid.uuid4()))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(RuntimeError("table storage unreachable"), id="retried"),
        pytest.param(PermanentFailureError("ActivationRefused", "Microsoft refused activation"), id="parked"),
    ],
)
def test_a_failed_activation_alerts_from_every_sink(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    message = _activation()

    _deliver(monkeypatch, message, failure)

    assert _fires_on_each_sink(failed_activation_query(), sinks) == EVERY_SINK
    [line] = [row for row in sinks.host if failed_activation_query().count({"traces": [row]})]
    assert f"event={EVENT_ACTIVATION_FAILED}" in line["message"]
    assert f"message_id={message.message_id}" in line["message"], "the host's row names the activation"


def test_the_host_ships_the_event_and_reason_in_the_text_as_the_query_reads_them(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = _activation()

    _deliver(monkeypatch, message, RuntimeError("table storage unreachable"))

    [line] = [row["message"] for row in sinks.host if row["message"].startswith("activation failed")]
    assert line == (
        f"activation failed [message_id={message.message_id} subscription_id={message.session_id}"
        f" delivery_count=2 correlation_id={message.correlation_id}"
        f" event={EVENT_ACTIVATION_FAILED} reason=RuntimeError]"
    )
    [otel] = [row for row in sinks.otel_rows() if row["message"] == "activation failed"]
    assert otel["customDimensions"]["event"] == EVENT_ACTIVATION_FAILED
    assert otel["customDimensions"]["reason"] == "RuntimeError"
    [fields] = [row for row in sinks.fields if row["message"] == "activation failed"]
    assert (fields["customDimensions"]["event"], fields["customDimensions"]["reason"]) == (
        EVENT_ACTIVATION_FAILED,
        "RuntimeError",
    )


def test_a_provisioning_hook_that_is_not_done_is_no_alert_from_any_sink(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_yet = RetryLaterError("the publisher's provisioning step has not finished yet")

    _deliver(monkeypatch, _activation(), not_yet)

    lines = [row["message"] for row in sinks.host if f"event={EVENT_ACTIVATION_FAILED}" in row["message"]]
    assert len(lines) == 1, "the attempt is still logged, with its reason"
    assert "reason=RetryLaterError" in lines[0]
    assert _fires_on_each_sink(failed_activation_query(), sinks) == NO_SINK


def test_a_failing_message_of_another_kind_is_no_failed_activation(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {"id": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()), "action": "Suspend"}
    message = webhook_message(payload, received_at="2024-05-01T10:00:00.000+00:00", correlation_id="c")

    _deliver(monkeypatch, message, RuntimeError("table storage unreachable"))

    assert any("message failed; it will be delivered again" in row["message"] for row in sinks.host)
    assert _fires_on_each_sink(failed_activation_query(), sinks) == NO_SINK


# --- the webhook: 5xx -------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, failure: Exception | None) -> None:
        self.failure = failure

    def validate(self, token: str) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return {}


class _Queue:
    def __init__(self, failure: Exception | None) -> None:
        self.failure = failure

    def send(self, message: QueueMessage) -> None:
        if self.failure is not None:
            raise self.failure


def _webhook_function() -> tuple[str, str, Callable[[func.HttpRequest], func.HttpResponse]]:
    """The webhook as the Python worker indexes it: its function name (the host's `requests` row name), its
    URL path, and the function the host calls."""
    [(function, route)] = [
        (function, binding.route)
        for function in registered_functions(function_app.app)
        for binding in function.get_bindings()
        if binding.type == "httpTrigger" and binding.route == "webhook"
    ]
    prefix = json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    return function_name(function), f"/{prefix}/{route}", function.get_user_function()


def _post(
    monkeypatch: pytest.MonkeyPatch,
    sinks: Sinks,
    *,
    validator: Exception | None = None,
    queue: Exception | None = None,
) -> tuple[int, dict[str, list[Row]]]:
    """Runs the real webhook function with stand-in services: its status, and the `requests` row the host
    writes (`host`) and the one the app's server span becomes (`app`); `resultCode` is text there."""
    app = SimpleNamespace(
        settings=SimpleNamespace(webhook_max_body_bytes=65536),
        webhook_validator=_Validator(validator),
        queue=_Queue(queue),
    )
    monkeypatch.setattr(webhook, "services", lambda: app)
    payload = {"id": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()), "action": "Suspend"}
    request = func.HttpRequest(
        method="POST",
        url="https://app.example/api/webhook",
        headers={"Authorization": "Bearer x.y.z", "Content-Type": "application/json"},
        body=json.dumps(payload).encode(),
    )
    name, path, function = _webhook_function()
    try:
        status = function(request).status_code
    except Exception:
        status = 500  # the host answers an exception with 500
    [span] = sinks.recorded.spans_named(webhook.SPAN_NAME)
    assert span.attributes["http.response.status_code"] == status
    code = str(status)
    host = {"name": name, "operation_Name": name, "url": f"https://app.example{path}", "resultCode": code}
    return status, {"host": [host], "app": [{"name": span.name, "resultCode": code}]}


WEBHOOK_5XX = [
    pytest.param({"validator": SigningKeysUnavailableError("jwks unreachable")}, 503, id="keys-unavailable"),
    pytest.param({"queue": QueueUnavailableError("service bus unreachable")}, 503, id="queue-unavailable"),
    pytest.param({"validator": RuntimeError("a bug")}, 500, id="unexpected-error"),
]


@pytest.mark.parametrize(("failures", "status"), WEBHOOK_5XX)
def test_a_webhook_5xx_alerts_from_every_sink_and_from_each_request_row(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch, failures: dict[str, Exception], status: int
) -> None:
    answered, requests = _post(monkeypatch, sinks, **failures)

    query = webhook_failure_query()
    assert answered == status
    assert _fires_on_each_sink(query, sinks) == EVERY_SINK
    assert {name: query.count({"requests": rows}) > 0 for name, rows in requests.items()} == {
        "host": True,
        "app": True,
    }
    assert any(f"event={EVENT_WEBHOOK_5XX}" in row["message"] for row in sinks.host)


@pytest.mark.parametrize(
    ("failures", "status"),
    [
        pytest.param({"validator": InvalidTokenError("bad signature")}, 401, id="refused-token"),
        pytest.param({}, 200, id="accepted"),
    ],
)
def test_a_webhook_answer_below_500_is_no_alert(
    sinks: Sinks, monkeypatch: pytest.MonkeyPatch, failures: dict[str, Exception], status: int
) -> None:
    answered, requests = _post(monkeypatch, sinks, **failures)

    query = webhook_failure_query()
    assert answered == status
    assert _fires_on_each_sink(query, sinks) == NO_SINK
    assert query.count({"requests": requests["host"] + requests["app"]}) == 0


def test_another_functions_5xx_is_no_webhook_alert() -> None:
    row = {"name": "landing_page", "operation_Name": "landing_page", "url": "https://a/api/landing"}
    assert webhook_failure_query().count({"requests": [{**row, "resultCode": "500"}]}) == 0
