"""An exception recorded on a span is redacted as a log line is: its message and its stack trace can hold a
purchase token, a setup code or a bearer token (a URL in an error message, a local in a traceback line), and
Application Insights keeps span exception events as `exceptions` rows."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from shared import telemetry
from tests.support.telemetry import recording_telemetry

CANARY = "LEAKCANARY"
TOKEN = f"{CANARY}purchaseToken0123456789"
SETUP_CODE = f"{CANARY}setupCode_0123456789abcdef"
BEARER = f"eyJ{CANARY}hdr.eyJbody.sig"


def fail_with_secrets() -> None:
    raise RuntimeError(
        f"GET /api/landing?token={TOKEN} failed; the link was /api/portal/setup/{SETUP_CODE}; "
        f"Authorization: Bearer {BEARER}"
    )


def test_an_exception_on_a_span_is_exported_redacted() -> None:
    with recording_telemetry() as recorded, pytest.raises(RuntimeError), telemetry.span("probe"):
        fail_with_secrets()

    [span] = recorded.spans_named("probe")
    [event] = [event for event in span.events if event.name == "exception"]
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "RuntimeError"
    message, stacktrace = attributes["exception.message"], attributes["exception.stacktrace"]
    assert "[redacted]" in message
    assert "fail_with_secrets" in stacktrace, "the stack trace is kept, only redacted"
    assert "failed; the link was" in message, "the rest of the message is kept"
    for value in attributes.values():
        assert CANARY not in str(value)
    assert span.status.status_code is StatusCode.ERROR
    assert CANARY not in (span.status.description or "")
