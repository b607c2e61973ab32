"""One trace per event, from Microsoft's webhook through the local queue to the worker's PATCH, on the stack.

Telemetry is on through `shared.telemetry.install` with the SDK's in-memory exporters (`tests/support/
telemetry.py`); everything else is the local stack as `make dev` runs it: the sandbox posts the webhook to
the dev host, the webhook enqueues on the SQLite queue, the queue runner hands the message to the worker,
and the worker calls the sandbox's Fulfillment API.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from shared import telemetry
from shared.queueing.messages import activation_message
from tests.support.sandbox import wait_until
from tests.support.stack import Stack
from tests.support.telemetry import Recorded, recording_telemetry

PATCH_OPERATION = "PATCH /saas/subscriptions/{subscriptionId}/operations/{operationId}"
GET_OPERATION = "GET /saas/subscriptions/{subscriptionId}/operations/{operationId}"


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    # Requested before `stack` by every test here, so it outlives the stack's threads.
    with recording_telemetry() as spans:
        yield spans


def in_trace(recorded: Recorded, trace_id: int) -> list[ReadableSpan]:
    return [span for span in recorded.spans() if span.context.trace_id == trace_id]


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    [parent] = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None:
        span = parent_of(span, spans)
        names.append(span.name)
    return names


def test_a_customer_change_is_one_trace_from_the_webhook_to_the_patch(
    recorded: Recorded, stack: Stack
) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=3)

    operation_id = stack.control.change_quantity(subscription_id, 7)["operationId"]

    def patch_span() -> list[ReadableSpan]:
        return [
            s
            for s in recorded.spans_named(PATCH_OPERATION)
            if s.attributes.get("operationId") == operation_id
        ]

    [patch] = wait_until(patch_span, 10)
    # A span is exported when it ends: the worker's ends after the mirror that follows the PATCH.
    wait_until(
        lambda: [
            s for s in recorded.spans_named("worker webhook") if s.attributes["operationId"] == operation_id
        ],
        10,
    )
    [webhook] = [
        s
        for s in recorded.spans_named("POST /api/webhook")
        if s.attributes.get("operationId") == operation_id
        and s.attributes["http.response.status_code"] == 200
    ]
    trace = in_trace(recorded, webhook.context.trace_id)

    assert webhook.kind is SpanKind.SERVER
    assert webhook.parent is None, "the sandbox sends no traceparent: the trace starts at the webhook"
    assert webhook.attributes["subscriptionId"] == subscription_id
    assert webhook.attributes["action"] == "ChangeQuantity"
    correlation_id = webhook.attributes["correlationId"]

    # webhook -> enqueue (producer) -> worker (consumer, continued from the message's properties) -> PATCH
    assert patch.context.trace_id == webhook.context.trace_id
    assert ancestors(patch, trace) == ["worker webhook", "enqueue webhook", "POST /api/webhook"]
    worker = parent_of(patch, trace)
    enqueue = parent_of(worker, trace)
    assert (enqueue.kind, worker.kind, patch.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT)
    [get_operation] = [s for s in trace if s.name == GET_OPERATION]
    assert parent_of(get_operation, trace) is worker
    assert get_operation.end_time <= patch.start_time, "the operation is verified before it is answered"

    # The same ids on every hop: Microsoft's correlation id, the subscription and the operation.
    for span in (enqueue, worker, get_operation, patch):
        assert span.attributes["subscriptionId"] == subscription_id, span.name
    for span in (worker, get_operation, patch):
        assert span.attributes["operationId"] == operation_id, span.name
        assert span.attributes["correlationId"] == correlation_id, span.name
    assert worker.attributes["messageKind"] == "webhook"
    assert worker.attributes["action"] == "ChangeQuantity"
    assert patch.attributes["http.response.status_code"] == 200
    assert patch.attributes["fulfillmentCall"] == PATCH_OPERATION
    assert str(uuid.UUID(patch.attributes["requestId"])) == patch.attributes["requestId"]
    assert patch.attributes["requestId"] != get_operation.attributes["requestId"], "x-ms-requestid per call"

    # Nothing about this operation happened in another trace.
    elsewhere = [
        s.name
        for s in recorded.spans()
        if s.attributes.get("operationId") == operation_id and s.context.trace_id != webhook.context.trace_id
    ]
    assert elsewhere == []

    # Metrics: the webhook -> answer latency, on the worker's span too, and the queue age at dequeue.
    latency = [
        p for p in recorded.points(telemetry.ANSWER_LATENCY) if p.attributes["action"] == "ChangeQuantity"
    ]
    assert latency
    assert latency[0].count >= 1
    assert latency[0].attributes["answer"] == "Success"
    assert 0 <= worker.attributes["answerLatencySeconds"] < 10, "answered inside Microsoft's window"
    ages = {p.attributes["messageKind"]: p for p in recorded.points(telemetry.QUEUE_AGE)}
    assert ages["webhook"].count >= 1
    assert ages["activate"].count >= 1
    assert worker.attributes["queueAgeSeconds"] >= 0


def test_a_forged_webhook_continues_the_callers_trace_and_its_dead_letter_is_counted(
    recorded: Recorded, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    subscription_id = stack.buy_and_activate("basic")
    forged = {
        "id": str(uuid.uuid4()),
        "subscriptionId": subscription_id,
        "action": "Unsubscribe",
        "status": "Succeeded",
    }
    trace_id, parent_span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    headers = {
        "Authorization": f"Bearer {stack.sandbox.entra.mint_webhook_token()}",
        "traceparent": f"00-{trace_id}-{parent_span_id}-01",
        "x-ms-requestid": request_id,
        "x-ms-correlationid": correlation_id,
    }

    answer = requests.post(f"{stack.app_url}/api/webhook", json=forged, headers=headers, timeout=10)

    assert answer.status_code == 200
    [parked] = wait_until(
        lambda: [d for d in stack.queue.dead_letters() if d.message.message_id == forged["id"]]
    )
    [worker] = wait_until(
        lambda: [
            s for s in recorded.spans_named("worker webhook") if s.attributes["operationId"] == forged["id"]
        ]
    )
    [webhook] = [
        s for s in recorded.spans_named("POST /api/webhook") if s.attributes["operationId"] == forged["id"]
    ]
    assert f"{webhook.context.trace_id:032x}" == trace_id, "Microsoft's traceparent is continued"
    assert f"{webhook.parent.span_id:016x}" == parent_span_id
    assert (webhook.attributes["requestId"], webhook.attributes["correlationId"]) == (
        request_id,
        correlation_id,
    )
    assert worker.context.trace_id == webhook.context.trace_id
    assert worker.status.status_code is StatusCode.ERROR
    # The parked copy keeps the trace context, so a dead letter leads back to its trace.
    assert parked.message.application_properties["traceparent"].split("-")[1] == trace_id

    [point] = [
        p for p in recorded.points(telemetry.DEAD_LETTERS) if p.attributes["reason"] == "UnknownOperation"
    ]
    assert point.value == 1
    assert point.attributes["messageKind"] == "webhook"
    [line] = [r for r in caplog.records if getattr(r, "event", None) == telemetry.EVENT_DEAD_LETTERED]
    assert line.reason == "UnknownOperation"
    # The same line reached OpenTelemetry with the event and the ids as attributes (customDimensions).
    [exported] = [
        r
        for r in recorded.log_records()
        if (r.attributes or {}).get("event") == telemetry.EVENT_DEAD_LETTERED
    ]
    assert exported.attributes["subscriptionId"] == subscription_id
    assert exported.attributes["operationId"] == forged["id"]
    assert exported.trace_id == worker.context.trace_id


def test_a_failed_activation_is_counted_logged_and_dead_lettered(
    recorded: Recorded, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    unknown = str(uuid.uuid4())  # Microsoft answers 404: no retry can activate it

    stack.queue.send(activation_message(unknown, "basic", None, "test-activation"))

    wait_until(lambda: [d for d in stack.queue.dead_letters() if d.message.session_id == unknown], 10)
    [failure] = [p for p in recorded.points(telemetry.ACTIVATION_FAILURES)]
    assert failure.value == 1
    assert failure.attributes == {"outcome": "dead_lettered", "reason": "FulfillmentNotFoundError"}
    [line] = [r for r in caplog.records if getattr(r, "event", None) == telemetry.EVENT_ACTIVATION_FAILED]
    assert (line.levelname, line.outcome) == ("ERROR", "dead_lettered")
    [worker] = recorded.spans_named("worker activate")
    [enqueue] = recorded.spans_named("enqueue activate")
    assert worker.parent is not None
    assert worker.parent.span_id == enqueue.context.span_id
    assert worker.attributes["subscriptionId"] == unknown
    assert worker.status.status_code is StatusCode.ERROR
