"""A client span of the app is the HTTP call it wraps: inside it the HTTP instrumentations record nothing,
and after it they record again."""

from __future__ import annotations

from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled

from shared import telemetry
from tests.support.telemetry import recording_telemetry


def test_http_instrumentation_is_suppressed_inside_a_client_span_only() -> None:
    with recording_telemetry():
        with telemetry.span("GET /x", kind="client"):
            inside_client = is_http_instrumentation_enabled()
        with telemetry.span("worker", kind="consumer"):
            inside_consumer = is_http_instrumentation_enabled()
        after = is_http_instrumentation_enabled()

    assert inside_client is False
    assert inside_consumer is True
    assert after is True
