"""Telemetry off costs nothing: no OpenTelemetry or Azure Monitor module is even imported. On, the Azure
Monitor distro is configured lazily, with the app's processors in its pipeline.

Each check runs in a fresh interpreter, because `sys.modules` of the test process holds whatever other
tests imported. The "on" run points every endpoint at a closed port on 127.0.0.1 and turns off the
distro's statsbeat, control plane and cloud resource detectors, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY_PREFIXES = ("opentelemetry", "azure.monitor")

# The webhook (a real request, RS256 token against a local JWKS server, the in-memory queue), then the
# worker on a malformed message (parked on the in-memory dead-letter list), then every telemetry call the
# app makes: all with APPLICATIONINSIGHTS_CONNECTION_STRING unset.
OFF = """
import json, os, sys, uuid
import azure.functions as func
import function_app
from shared import telemetry
from shared.app_context import services
from tests.support.oidc_server import OidcServer
from tests.support.tokens import marketplace_claims, mint

tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
with OidcServer() as oidc:
    os.environ.update(
        QUEUE_BACKEND="memory", PUBLISHER_TENANT_ID=tenant, PUBLISHER_CLIENT_ID=client,
        WEBHOOK_OPENID_CONFIG_URL=oidc.metadata_url(tenant),
        STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true",
    )
    token = mint(marketplace_claims(tenant, client, authority=oidc.base_url), oidc.signing_key)
    body = {"id": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()), "action": "Suspend"}
    answer = function_app.webhook.handle_webhook(func.HttpRequest(
        method="POST", url="http://127.0.0.1/api/webhook", body=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "traceparent": f"00-{'a' * 32}-{'b' * 16}-01"},
    ))
from azure.functions.servicebus import ServiceBusMessage
function_app.worker.handle_message(ServiceBusMessage(
    body=b"not json", message_id="m1", session_id="s1", application_properties={}, user_properties={}
))
import shared.fulfillment.client
with telemetry.span("x", kind="client", parent={"traceparent": "x"}) as span:
    span.set_attributes({"a": 1}); span.update_name("y"); span.fail("z")
telemetry.annotate({"a": 1}); telemetry.fail("z"); telemetry.answered(True)
telemetry.queue_age(None, "webhook"); telemetry.activation_failed("retry", "x")
telemetry.dead_lettered("x", "y")
with telemetry.webhook_event(None, "ChangePlan"):
    pass
[message] = services().queue.messages
print(json.dumps({
    "status": answer.status_code,
    "properties": message.application_properties,
    "parked": len(services().queue.dead_letters),
    "trace_context": telemetry.trace_context(),
    "enabled": telemetry.enabled(),
    "loaded": sorted(m for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor"))),
}))
"""

ON = """
import json, sys
from shared import telemetry
from shared.app_context import services
from shared.logs import log_context

before = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor")))
services()
from opentelemetry import trace
from azure.core.settings import settings
with log_context(subscription_id="sub-1"), telemetry.span("probe") as span:
    attributes = dict(trace.get_current_span().attributes)
    context = telemetry.trace_context()
with trace.get_tracer("probe").start_as_current_span(
    "GET", attributes={"http.url": "https://st1.table.core.windows.net/seats(PartitionKey='a',RowKey='u%3Ab%40c.d')"}
) as storage_span:
    storage_url = storage_span.attributes["http.url"]
processors = [type(p).__name__ for p in trace.get_tracer_provider()._active_span_processor._span_processors]
print(json.dumps({
    "processors": processors,
    "azure_sdk_tracing": repr(settings.tracing_implementation()),
    "storage_url": storage_url,
    "before": before,
    "enabled": telemetry.enabled(),
    "distro": "azure.monitor.opentelemetry" in sys.modules,
    "provider": type(trace.get_tracer_provider()).__module__,
    "attributes": attributes,
    "traceparent": context.get("traceparent", ""),
}))
"""


def run(code: str, env: dict[str, str], tmp_path: Path) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APPLICATIONINSIGHTS_", "OTEL_", "PYTEST_", "FUNCTIONS_WORKER_RUNTIME"))
    }
    environment.update(env, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_with_the_setting_absent_nothing_of_opentelemetry_is_imported_on_any_path(tmp_path: Path) -> None:
    seen = run(OFF, {"LOG_LEVEL": "WARNING"}, tmp_path)

    assert seen["status"] == 200, "the webhook path ran"
    assert seen["parked"] == 1, "the worker path ran"
    assert seen["loaded"] == []
    assert seen["enabled"] is False
    assert seen["properties"] == {}, "no trace context rides on messages when telemetry is off"
    assert seen["trace_context"] == {}


def test_with_the_setting_the_distro_is_configured_lazily_with_the_apps_processors(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9/"
    seen = run(
        ON,
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={closed};"
                f"LiveEndpoint={closed}"
            ),
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
            "QUEUE_BACKEND": "memory",
            "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "LOG_LEVEL": "WARNING",
        },
        tmp_path,
    )

    assert [m for m in seen["before"] if m.startswith(TELEMETRY_PREFIXES)] == [], (
        "imported only when configured"
    )
    assert seen["enabled"] is True
    assert seen["distro"] is True
    assert seen["provider"].startswith("opentelemetry.sdk.trace")
    assert seen["attributes"]["subscriptionId"] == "sub-1", "the app's span processor is in the pipeline"
    assert seen["attributes"]["_MS.sampleRate"] == 100.0, "every trace is kept unless a sampler is named"
    assert seen["traceparent"].startswith("00-")
    # The Azure SDKs' own tracing is off: their spans carry Table Storage URLs (buyers' addresses in the keys)
    # and azure-servicebus would add a second traceparent to every message.
    assert seen["azure_sdk_tracing"] == "None"
    # Live Metrics off: no quickpulse processor on every span.
    assert not [name for name in seen["processors"] if "Quickpulse" in name], seen["processors"]
    assert seen["storage_url"] == "https://st1.table.core.windows.net/seats", (
        "the URL processor is in the pipeline"
    )
