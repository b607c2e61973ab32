"""W3C trace context in and out: the webhook continues Microsoft's, every queue backend carries it in the
message's application properties, OpenTelemetry log records are redacted and carry the ids, and the
stable event names alert rules match are on the lines.

Telemetry is on through `shared.telemetry.install` with the SDK's in-memory exporters.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.servicebus import ServiceBusMessage
from opentelemetry.trace import SpanKind, StatusCode

import function_app
from devhost.local_queue import LocalQueue
from devhost.queue_runner import to_service_bus_message
from shared import logs, telemetry
from shared.app_context import Services, reset_services, services
from shared.config import Settings
from shared.queueing.memory import InMemoryQueue
from shared.queueing.messages import QueueMessage, webhook_message
from shared.queueing.servicebus import ServiceBusEventQueue
from tests.support.oidc_server import OidcServer
from tests.support.ports import free_port
from tests.support.telemetry import Recorded, recording_telemetry
from tests.support.tokens import marketplace_claims, mint

TENANT = str(uuid.uuid4())
CLIENT_ID = str(uuid.uuid4())
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcServer]:
    with OidcServer() as server:
        yield server


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    with recording_telemetry() as spans:
        yield spans


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, oidc: OidcServer) -> Iterator[Services]:
    for name, value in {
        "QUEUE_BACKEND": "memory",
        "PUBLISHER_TENANT_ID": TENANT,
        "PUBLISHER_CLIENT_ID": CLIENT_ID,
        "WEBHOOK_OPENID_CONFIG_URL": oidc.metadata_url(TENANT),
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    reset_services()
    yield services()
    reset_services()


def post_webhook(oidc: OidcServer, payload: dict[str, Any], **headers: str) -> func.HttpResponse:
    token = mint(marketplace_claims(TENANT, CLIENT_ID, authority=oidc.base_url), oidc.signing_key)
    request = func.HttpRequest(
        method="POST",
        url="http://127.0.0.1:7071/api/webhook",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
        body=json.dumps(payload).encode(),
    )
    return function_app.webhook.handle_webhook(request)


def a_payload() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "activityId": str(uuid.uuid4()),
        "subscriptionId": str(uuid.uuid4()),
        "action": "ChangePlan",
        "planId": "gold",
        "status": "InProgress",
    }


def test_the_webhook_continues_microsofts_trace_and_tags_its_ids(
    recorded: Recorded, app: Services, oidc: OidcServer
) -> None:
    payload = a_payload()
    request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())

    response = post_webhook(
        oidc,
        payload,
        traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01",
        **{"x-ms-requestid": request_id, "x-ms-correlationid": correlation_id},
    )

    assert response.status_code == 200
    [webhook] = recorded.spans_named("POST /api/webhook")
    [enqueue] = recorded.spans_named("enqueue webhook")
    assert webhook.kind is SpanKind.SERVER
    assert f"{webhook.context.trace_id:032x}" == TRACE_ID
    assert webhook.parent is not None
    assert f"{webhook.parent.span_id:016x}" == PARENT_ID
    assert {
        key: webhook.attributes[key]
        for key in ("requestId", "correlationId", "subscriptionId", "operationId", "action", "activityId")
    } == {
        "requestId": request_id,
        "correlationId": correlation_id,
        "subscriptionId": payload["subscriptionId"],
        "operationId": payload["id"],
        "action": "ChangePlan",
        "activityId": payload["activityId"],
    }
    assert webhook.attributes["http.response.status_code"] == 200
    # The queued message carries the producer span's context: the worker's span will be its child.
    [message] = app.queue.messages  # type: ignore[attr-defined]
    version, trace_id, span_id, _ = message.application_properties["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", TRACE_ID, f"{enqueue.context.span_id:016x}")
    assert enqueue.parent is not None
    assert enqueue.parent.span_id == webhook.context.span_id


def test_a_header_that_is_not_a_guid_is_neither_traced_nor_logged(
    recorded: Recorded, app: Services, oidc: OidcServer
) -> None:
    response = post_webhook(oidc, a_payload(), **{"x-ms-requestid": "<script>"})

    assert response.status_code == 200
    [webhook] = recorded.spans_named("POST /api/webhook")
    assert "requestId" not in webhook.attributes


def test_a_webhook_5xx_is_a_failed_request_and_a_line_with_its_event(
    recorded: Recorded,
    app: Services,
    oidc: OidcServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(
        "WEBHOOK_OPENID_CONFIG_URL", f"http://127.0.0.1:{free_port()}/{TENANT}/v2.0/.well-known/x"
    )
    reset_services()
    caplog.set_level(logging.INFO)

    response = post_webhook(oidc, a_payload())

    assert response.status_code == 503
    [webhook] = recorded.spans_named("POST /api/webhook")
    assert webhook.attributes["http.response.status_code"] == 503
    assert webhook.status.status_code is StatusCode.ERROR
    [line] = [r for r in caplog.records if getattr(r, "event", None) == telemetry.EVENT_WEBHOOK_5XX]
    assert (line.levelname, line.status, line.error) == ("ERROR", 503, "keys_unavailable")


def test_a_webhook_4xx_is_no_alert(
    recorded: Recorded, app: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    request = func.HttpRequest(method="POST", url="http://127.0.0.1:7071/api/webhook", headers={}, body=b"{}")

    assert function_app.webhook.handle_webhook(request).status_code == 401
    [webhook] = recorded.spans_named("POST /api/webhook")
    assert webhook.status.status_code is not StatusCode.ERROR
    assert not [r for r in caplog.records if getattr(r, "event", None) == telemetry.EVENT_WEBHOOK_5XX]


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[ServiceBusMessage] = []

    def send_messages(self, message: ServiceBusMessage, **kwargs: Any) -> None:
        self.sent.append(message)

    def close(self) -> None:
        return None


class RecordingClient:
    """The Service Bus SDK's boundary: real `ServiceBusMessage`s are built and kept, nothing is sent."""

    def __init__(self) -> None:
        self.sender = RecordingSender()

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> RecordingSender:
        return self.sender


def a_message() -> QueueMessage:
    payload = {"id": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()), "action": "Suspend"}
    return webhook_message(payload, received_at="2024-05-01T10:00:00.000+00:00", correlation_id="c")


def test_service_bus_messages_carry_the_trace_context_in_their_application_properties(
    recorded: Recorded,
) -> None:
    client = RecordingClient()
    queue = ServiceBusEventQueue(client, "saas-events", "saas-events-deadletter")

    with telemetry.span("caller"):
        queue.send(a_message())
    telemetry.uninstall()
    queue.send(a_message())

    traced, untraced = client.sender.sent
    [enqueue] = recorded.spans_named("enqueue webhook")
    assert enqueue.parent is not None
    assert enqueue.kind is SpanKind.PRODUCER
    assert enqueue.attributes["messaging.destination.name"] == "saas-events"
    # Under the SDK's own bytes keys (b"traceparent"): on the wire an AMQP string key like any other.
    properties = {
        (k.decode() if isinstance(k, bytes) else k): v
        for k, v in (traced.application_properties or {}).items()
    }
    assert b"traceparent" in (traced.application_properties or {})
    _, trace_id, span_id, _ = str(properties["traceparent"]).split("-")
    assert (int(trace_id, 16), int(span_id, 16)) == (enqueue.context.trace_id, enqueue.context.span_id)
    assert not untraced.application_properties, "telemetry off: nothing is added"


def test_the_local_queue_stores_the_trace_context_and_hands_it_to_the_worker(
    recorded: Recorded, tmp_path: Path
) -> None:
    queue = LocalQueue(tmp_path / "queue.sqlite3")
    message = QueueMessage(
        message_id="m-1", session_id="s-1", body={"kind": "reconcile"}, application_properties={"own": "kept"}
    )

    with telemetry.span("caller"):
        queue.send(message)
    lease = queue.receive(timeout=1)
    assert lease is not None
    delivered = to_service_bus_message(lease)

    [enqueue] = recorded.spans_named("enqueue reconcile")
    assert delivered.application_properties["own"] == "kept"
    _, trace_id, span_id, _ = delivered.application_properties["traceparent"].split("-")
    assert (int(trace_id, 16), int(span_id, 16)) == (enqueue.context.trace_id, enqueue.context.span_id)


def test_the_in_memory_queue_carries_it_too(recorded: Recorded) -> None:
    queue = InMemoryQueue()

    queue.send(a_message())

    [sent] = queue.messages
    [enqueue] = recorded.spans_named("enqueue webhook")
    assert enqueue.parent is None, "sent outside any span: the producer span starts the trace"
    assert sent.application_properties["traceparent"].split("-")[1] == f"{enqueue.context.trace_id:032x}"


def test_log_records_for_application_insights_are_redacted_and_carry_the_ids(recorded: Recorded) -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    log = logging.getLogger("shared.test_telemetry")

    with logs.log_context(subscription_id="sub-1", correlation_id="cor-1"), telemetry.span("work"):
        log.warning(
            "landing /api/landing?token=%s", "purchase-secret", extra={"token": "t", "note": f"Bearer {jwt}"}
        )

    [record] = [r for r in recorded.log_records() if "landing" in str(r.body)]
    assert "purchase-secret" not in str(record.body)
    assert "[redacted]" in str(record.body)
    assert record.attributes["token"] == "[redacted]"
    assert jwt not in record.attributes["note"]
    assert (record.attributes["subscriptionId"], record.attributes["correlationId"]) == ("sub-1", "cor-1")
    [work] = recorded.spans_named("work")
    assert record.trace_id == work.context.trace_id


def test_the_functions_hosts_log_rows_carry_the_event_name_and_reason_in_their_text() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    log = logging.getLogger("test.telemetry.host")
    log.handlers, log.propagate = [handler], False

    with logs.log_context(subscription_id="sub-1"):
        log.error("activation failed", extra={"event": telemetry.EVENT_ACTIVATION_FAILED})
        log.error("activation failed", extra={"event": telemetry.EVENT_ACTIVATION_FAILED, "reason": "Boom"})
        log.warning("license refused", extra={"reason": "no such subscription"})  # no event: no reason

    assert stream.getvalue().splitlines() == [
        "activation failed [subscription_id=sub-1 event=activation_failed]",
        "activation failed [subscription_id=sub-1 event=activation_failed reason=Boom]",
        "license refused [subscription_id=sub-1]",
    ]


@pytest.mark.parametrize(
    ("text", "entra", "client_id"),
    [
        ("", False, ""),
        ("Authorization=AAD", True, ""),
        ("authorization=aad; ClientId=1a2b", True, "1a2b"),
        ("Authorization=ikey", False, ""),
    ],
)
def test_the_authentication_string_decides_entra_auth(text: str, entra: bool, client_id: str) -> None:
    assert telemetry.uses_entra_auth(text) is entra
    assert telemetry.entra_client_id(text) == client_id


def test_entra_auth_uses_the_apps_identity_or_the_user_assigned_one_named() -> None:
    system = Services(Settings(applicationinsights_authentication_string="Authorization=AAD"))
    user = Services(Settings(applicationinsights_authentication_string="Authorization=AAD;ClientId=abc"))

    assert system.telemetry_credential() is system.azure_credential
    assert isinstance(system.azure_credential, DefaultAzureCredential)
    assert isinstance(user.telemetry_credential(), ManagedIdentityCredential)
