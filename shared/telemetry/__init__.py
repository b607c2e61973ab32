"""Traces and metrics for Application Insights through OpenTelemetry when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set; otherwise nothing at all.

The rest of the app calls only this small API, which is a utility (like `shared.logs`), so adapters,
workflows and entry points may all use it:

- `span(name, kind=..., parent=..., attributes=...)`: a context manager around one unit of work. `parent`
  is a carrier of W3C trace context (HTTP headers, a queue message's application properties) to continue;
  without it the span is a child of the current one.
- `trace_context()`: the current span's W3C trace context (`traceparent`, `tracestate`) to put into an
  outgoing message or request; `annotate(...)` and `fail(...)` tag the current span.
- `queue_age`, `webhook_event` + `answered`, `activation_failed`, `dead_lettered`: the metrics.

Off (the setting absent, the default and the local stack): nothing from `opentelemetry` or `azure.monitor`
is imported (`tests/telemetry/test_telemetry_off.py` checks `sys.modules` in a fresh interpreter), and
every call is one test of a module global, then a return of a shared do-nothing object. On: the composition
root calls `configure` once per process, which imports `shared.telemetry._otel` (and through it the
Azure Monitor distro) and configures it; tests call `install` with the SDK's in-memory exporters instead.

Every span gets the ids of `shared.logs.log_context` (subscription, operation, correlation, request,
message) as attributes, so an Application Insights row carries them in `customDimensions` under the names
below whichever code started the span (ours, the requests instrumentation, the Azure SDKs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.config import Settings
from shared.logs import get_logger

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.trace import TracerProvider

    from shared.telemetry._otel import Telemetry

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
# Carriers arrive as HTTP headers (str values) or Service Bus application properties (str or bytes values).
Carrier = Mapping[str, Any] | Mapping[Any, Any]

# Span attribute names: the `customDimensions` keys in Application Insights (docs/observability.md).
SUBSCRIPTION_ID = "subscriptionId"
OPERATION_ID = "operationId"
CORRELATION_ID = "correlationId"  # x-ms-correlationid
REQUEST_ID = "requestId"  # x-ms-requestid
ACTION = "action"
ACTIVITY_ID = "activityId"
MESSAGE_ID = "messageId"
MESSAGE_KIND = "messageKind"
DELIVERY_COUNT = "deliveryCount"
QUEUE_AGE_SECONDS = "queueAgeSeconds"
ANSWER_LATENCY_SECONDS = "answerLatencySeconds"
ANSWER = "answer"
OUTCOME = "outcome"
REASON = "reason"
FULFILLMENT_CALL = "fulfillmentCall"  # "PATCH /saas/subscriptions/{subscriptionId}/operations/{operationId}"

# The ids `shared.logs.log_context` holds, and the attribute each becomes on every span and OTel log record.
FROM_LOG_CONTEXT = {
    "subscription_id": SUBSCRIPTION_ID,
    "operation_id": OPERATION_ID,
    "correlation_id": CORRELATION_ID,
    "request_id": REQUEST_ID,
    "message_id": MESSAGE_ID,
    "delivery_count": DELIVERY_COUNT,
}

# Metric names: `customMetrics.name` in Application Insights.
ANSWER_LATENCY = "saas.webhook.answer_latency"  # histogram, s: webhook received -> PATCH answered
QUEUE_AGE = "saas.queue.age"  # histogram, s: enqueued -> the worker starts the message
ACTIVATION_FAILURES = "saas.activation.failures"  # counter: an activation attempt that did not end well
DEAD_LETTERS = "saas.dead_letters"  # counter: a message the worker parked on the dead-letter queue

# Stable `event` values of the log lines alert rules match (infra/app/alerts.bicep): `customDimensions.event`
# (and `.reason`) of the app's rows; in the Functions host's copy, `event=<name>` (and `reason=<reason>`) in
# the message text, appended by shared.logs.ContextFilter. tests/infra/test_alerts.py holds them together.
EVENT_ACTIVATION_FAILED = "activation_failed"
EVENT_WEBHOOK_5XX = "webhook_5xx"
EVENT_DEAD_LETTERED = "message_dead_lettered"
EVENT_TELEMETRY_FAILED = "telemetry_not_configured"

# W3C Trace Context names, used as HTTP headers and as application property names on queue messages (the
# names the Service Bus SDK and the Functions host read too).
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# The distro samples 5 traces per second unless told otherwise; marketplace events are few, and a trace
# sampled out is a subscription's history missing, so every trace is kept unless this names a sampler.
SAMPLER_SETTING = "OTEL_TRACES_SAMPLER"

log = get_logger(__name__)


class Span(Protocol):
    """What callers may do with the span `span(...)` yields (a real one, or the do-nothing one)."""

    def set_attributes(self, attributes: Mapping[str, str | int | float | bool]) -> None: ...

    def update_name(self, name: str) -> None: ...

    def fail(self, description: str) -> None: ...


class _NoSpan:
    """The span of telemetry off: its own context manager, one shared instance, every method a no-op."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, str | int | float | bool]) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None

    def fail(self, description: str) -> None:
        return None


NO_SPAN = _NoSpan()

_state: Telemetry | None = None
_configure_lock = threading.Lock()
_configured_by_settings = False


# --- the API the app calls ------------------------------------------------------------------------------


def enabled() -> bool:
    return _state is not None


def span(
    name: str,
    *,
    kind: SpanKind = "internal",
    parent: Carrier | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> AbstractContextManager[Span]:
    """A context manager yielding a `Span`. With `parent`, continues the trace context it carries (a new
    trace when it carries none); without, a child of the current span. An exception leaving the block marks
    the span failed. A client span keeps the HTTP instrumentations from recording the same call again."""
    state = _state
    if state is None:
        return NO_SPAN
    return state.span(name, kind, parent, attributes)


def annotate(attributes: Mapping[str, str | int | float | bool | None]) -> None:
    """Adds attributes (None values left out) to the current span."""
    state = _state
    if state is not None:
        state.annotate(attributes)


def fail(description: str) -> None:
    """Marks the current span failed (a request row with success = false) without an exception."""
    state = _state
    if state is not None:
        state.fail(description)


def trace_context() -> dict[str, str]:
    """The current span's W3C trace context for an outgoing carrier; empty when off or outside a span."""
    state = _state
    if state is None:
        return {}
    return state.trace_context()


def queue_age(enqueued_at: datetime | None, kind: str) -> None:
    """Records how long a message waited in the queue before the worker started it."""
    state = _state
    if state is not None and enqueued_at is not None:
        state.queue_age(enqueued_at, kind)


def webhook_event(received_at: datetime | None, action: object) -> AbstractContextManager[object]:
    """A context manager inside which `answered` measures from `received_at` (the webhook's receive time,
    as `shared.queueing.messages.received_at` reads it from the message body) to the answer; nothing is
    measured when it is None or has no offset."""
    state = _state
    if state is None:
        return NO_SPAN
    return state.webhook_event(received_at, action)


def answered(success: bool) -> None:
    """Microsoft accepted our answer (PATCH) to an operation: records the webhook -> answer latency when a
    webhook event is being handled (`webhook_event`)."""
    state = _state
    if state is not None:
        state.answered(success)


def activation_failed(outcome: str, reason: str) -> None:
    state = _state
    if state is not None:
        state.activation_failed(outcome, reason)


def dead_lettered(reason: str, kind: str) -> None:
    state = _state
    if state is not None:
        state.dead_lettered(reason, kind)


# --- turning it on --------------------------------------------------------------------------------------


def uses_entra_auth(authentication_string: str) -> bool:
    """Whether `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` asks for Entra ID (`Authorization=AAD`)."""
    return _authentication_fields(authentication_string).get("authorization", "").upper() == "AAD"


def entra_client_id(authentication_string: str) -> str:
    """The user-assigned managed identity's client id (`ClientId=...`) of that string; empty for the
    system-assigned identity."""
    return _authentication_fields(authentication_string).get("clientid", "")


def _authentication_fields(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            fields[name.strip().lower()] = value.strip()
    return fields


def configure(settings: Settings, *, credential: Callable[[], TokenCredential]) -> bool:
    """Turns telemetry on, once per process, when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set; the
    composition root calls it when it is built. `credential()` (the app's managed identity) is asked for only
    when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` says `Authorization=AAD`.

    Telemetry never stops the app: a failure is logged (`event=telemetry_not_configured`) and the app runs
    without it. Returns whether telemetry is on."""
    global _state, _configured_by_settings  # one telemetry pipeline per process
    connection_string = settings.applicationinsights_connection_string.strip()
    if not connection_string:
        return _state is not None
    with _configure_lock:
        if _configured_by_settings:
            return _state is not None
        _configured_by_settings = True
        try:
            from shared.telemetry import _otel

            token_credential = (
                credential() if uses_entra_auth(settings.applicationinsights_authentication_string) else None
            )
            _state = _otel.configure_azure_monitor(
                connection_string,
                credential=token_credential,
                keep_every_trace=not os.environ.get(SAMPLER_SETTING, "").strip(),
            )
        except Exception as exc:  # telemetry is never a reason not to answer Microsoft
            log.error(
                "telemetry not configured; running without it",
                extra={"event": EVENT_TELEMETRY_FAILED, "error": f"{type(exc).__name__}: {exc}"},
            )
            return False
    log.info("telemetry configured", extra={"entra_auth": token_credential is not None})
    return True


def install(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    logger_provider: LoggerProvider | None = None,
) -> None:
    """Turns telemetry on with providers of the caller's choosing (tests: the SDK's in-memory exporters).
    The app's own processors (context ids on spans and log records, redaction) are added to them first."""
    global _state  # one telemetry pipeline per process
    from shared.telemetry import _otel

    _state = _otel.Telemetry(tracer_provider, meter_provider, logger_provider)


def uninstall() -> None:
    """Turns telemetry off again (tests); the providers are left to their owner."""
    global _state, _configured_by_settings  # one telemetry pipeline per process
    _state = None
    _configured_by_settings = False
