"""A message sent to Service Bus carries one `traceparent`, the app's, whether or not the Azure SDK's own
tracing is on.

AMQP application properties are a map with string keys: pyamqp encodes a str key and a bytes key alike, so
{"traceparent": …, b"traceparent": …} goes on the wire as two `traceparent` entries. azure-servicebus, when
azure-core's `settings.tracing_implementation` is set (the distro's `azure_sdk` instrumentation, which the
app turns off, or a Functions worker that turns it on), `setdefault`s bytes keys b"traceparent",
b"Diagnostic-Id" and b"tracestate". The app stores its trace keys as bytes too, so the SDK's setdefault keeps
the app's values and the map holds each key once.

The message goes through `shared/queueing/servicebus.py`'s conversion and then the SDK's own outbound steps
(`transform_outbound_messages`, `trace_message`), as `ServiceBusSender.send_messages` runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from azure.core.settings import settings
from azure.servicebus import ServiceBusMessage
from azure.servicebus._common.tracing import trace_message
from azure.servicebus._common.utils import transform_outbound_messages
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport

from shared.queueing.messages import activation_message
from shared.queueing.servicebus import _to_sdk_message

OURS = f"00-{'a' * 32}-{'b' * 16}-01"
SDKS = f"00-{'c' * 32}-{'d' * 16}-01"


class _SdkTracingSpan:
    """Stands in for azure-core's OpenTelemetrySpan with a valid span: its headers are the SDK's context."""

    def __init__(self, name: str = "", kind: Any = None, links: Any = None, **kwargs: Any) -> None:
        self.attributes: dict[str, Any] = {}

    def __enter__(self) -> _SdkTracingSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def to_header(self) -> dict[str, str]:
        return {"traceparent": SDKS, "tracestate": "sdk=1"}

    def add_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


@pytest.fixture(params=[None, _SdkTracingSpan], ids=["sdk-tracing-off", "sdk-tracing-on"])
def sdk_tracing(request: pytest.FixtureRequest) -> Iterator[Any]:
    before = settings.tracing_implementation()
    settings.tracing_implementation = request.param
    try:
        yield request.param
    finally:
        settings.tracing_implementation = before


def on_the_wire(properties: dict[str, str]) -> list[tuple[str, str]]:
    message = replace(
        activation_message("sub-1", "plan-1", 1, "corr-1"),
        application_properties={**properties},
    )
    sdk_message = _to_sdk_message(message, {})
    outgoing = transform_outbound_messages(
        sdk_message, ServiceBusMessage, PyamqpTransport.to_outgoing_amqp_message
    )
    amqp = trace_message(outgoing._message, amqp_transport=PyamqpTransport, additional_attributes={})
    return [
        (
            key.decode() if isinstance(key, bytes) else key,
            value.decode() if isinstance(value, bytes) else value,
        )
        for key, value in (amqp.application_properties or {}).items()
    ]


def test_one_traceparent_and_it_is_the_apps(sdk_tracing: Any) -> None:
    entries = on_the_wire({"traceparent": OURS, "tracestate": "app=1", "origin": "landing"})

    keys = [key for key, _ in entries]
    assert keys.count("traceparent") == 1, entries
    assert keys.count("tracestate") == 1, entries
    assert dict(entries)["traceparent"] == OURS
    assert dict(entries)["tracestate"] == "app=1"
    assert dict(entries)["origin"] == "landing"
    if sdk_tracing is None:
        assert "Diagnostic-Id" not in keys, "the SDK adds nothing while its tracing is off"


def test_without_the_apps_context_the_sdks_is_the_only_one(sdk_tracing: Any) -> None:
    keys = [key for key, _ in on_the_wire({"origin": "landing"})]
    assert keys.count("traceparent") == (0 if sdk_tracing is None else 1)
