"""The OpenTelemetry side of `shared.telemetry`: imported only when telemetry is on.

`configure_azure_monitor` sets up the Azure Monitor distro (traces, metrics and logs to Application
Insights; the requests and urllib3 instrumentations, not the Azure SDK's) with this app's processors in front
of its exporters; `Telemetry` is what the cheap API in `shared.telemetry` hands every call to.
"""

from __future__ import annotations

import contextvars
import traceback
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import Token
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import logs
from shared import telemetry as api

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
_PROPAGATOR = TraceContextTextMapPropagator()
# Seconds: Microsoft's answer window is 10 s; a queue that backs up is measured in minutes.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0)
_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
# Off: the frameworks the app does not use, and the Azure SDKs' own tracing ("azure_sdk": azure-core's
# settings.tracing_implementation). Those spans carry each Table Storage request's URL, set after the span
# starts, where no processor can change it, and the app's Table keys hold buyers' addresses; with it on,
# azure-servicebus also adds its own traceparent (bytes keys) beside the app's. requests and urllib3 stay on:
# they see the SDKs' HTTP calls, URL set at the start, which StorageUrlSpanProcessor reduces.
_DISABLED_INSTRUMENTATIONS = ("azure_sdk", "django", "fastapi", "flask", "psycopg2")
# Span attributes that hold a request's URL or part of it (old and stable HTTP semantic conventions).
_URL_ATTRIBUTES = ("url.full", "http.url")
_URL_PART_ATTRIBUTES = ("url.path", "url.query", "http.target")
_LOGGER_NAME = "shared"  # the app's own lines; the Azure SDKs' reach Application Insights through the host


class ContextIdsSpanProcessor(SpanProcessor):
    """Tags every span, when it starts, with the ids of the `log_context` it starts in."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        existing = span.attributes or {}
        for key, value in logs.context_ids().items():
            name = api.FROM_LOG_CONTEXT.get(key)
            if name is not None and name not in existing:
                span.set_attribute(name, value)


def _table_address(url: str) -> str | None:
    """scheme://host/table for a Table Storage request's URL, None for any other URL.

    A Table Storage URL names rows by their keys, `seats(PartitionKey='…',RowKey='u%3Aalice%40…')`, or filters
    on them (`?$filter=PartitionKey eq 'address:…'`), and the app's keys hold buyers' addresses. Recognised by
    the host (`<account>.table.core.…`), by an entity path (`name(…)`) or by a key filter, so Azurite's
    path-style URLs (`/devstoreaccount1/seats(…)`) are reduced too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    decoded = unquote(parts.path + "?" + parts.query)
    host = parts.hostname or ""
    if ".table." not in f".{host}" and "(" not in parts.path and "PartitionKey" not in decoded:
        return None
    path = parts.path.split("(", 1)[0]
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


class StorageUrlSpanProcessor(SpanProcessor):
    """Reduces the URL of a Table Storage request to scheme://host/table when its span starts.

    The requests and urllib3 instrumentations set `http.url` / `url.full` as the span starts, so the span is
    still writable here; at `on_end` it no longer is. The app's own spans hold no storage URL and pass
    unchanged."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        attributes = span.attributes or {}
        for key in _URL_ATTRIBUTES:
            value = attributes.get(key)
            reduced = _table_address(value) if isinstance(value, str) else None
            if reduced is None:
                continue
            span.set_attribute(key, reduced)
            for part in _URL_PART_ATTRIBUTES:
                if part in attributes:
                    span.set_attribute(part, urlsplit(reduced).path if part != "url.query" else "")


class ScrubbingLogProcessor(LogRecordProcessor):
    """Before any exporter sees a log record: the redaction `shared.logs` applies to every sink (the body
    and every text attribute; keys named like secrets), and the `log_context` ids as attributes."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        if isinstance(record.body, str):
            record.body = logs.redact(record.body)
        attributes = record.attributes
        if attributes is None:
            return
        fields = logs.scrub(dict(attributes))
        for key, value in logs.context_ids().items():
            name = api.FROM_LOG_CONTEXT.get(key)
            if name is not None:
                fields.setdefault(name, value)
        for key, value in fields.items():
            attributes[key] = value  # type: ignore[index]  # the SDK makes them mutable for processors

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _carrier(parent: api.Carrier) -> dict[str, str]:
    """A carrier as text: Service Bus hands application properties back with bytes keys or values."""
    out = {}
    for key, value in parent.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if name.lower() in (api.TRACEPARENT, api.TRACESTATE):
            out[name.lower()] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return out


def _record_exception(span: trace.Span, exc: BaseException) -> None:
    """What `Span.record_exception` records (the "exception" event, which Application Insights keeps as an
    `exceptions` row), with the redaction of every other sink applied to the message and the stack trace:
    an error message can quote a URL with a purchase token or a setup code, a traceback line a bearer token.
    """
    stacktrace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__name__,
            "exception.message": logs.redact(str(exc)),
            "exception.stacktrace": logs.redact(stacktrace),
            "exception.escaped": "False",
        },
    )


class _ActiveSpan:
    """One span: started when made, current inside `with`, ended on leaving it."""

    __slots__ = ("_span", "_suppress_http", "_suppressing", "_token")

    def __init__(self, span: trace.Span, suppress_http: bool) -> None:
        self._span = span
        self._suppress_http = suppress_http
        self._token: Token[otel_context.Context] | None = None
        self._suppressing = ExitStack()

    def __enter__(self) -> _ActiveSpan:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        if self._suppress_http:
            # A client span is the HTTP call: the requests/urllib3 instrumentation must not add a second one.
            self._suppressing.enter_context(suppress_http_instrumentation())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None:
                _record_exception(self._span, exc)
                self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        finally:
            self._suppressing.close()
            if self._token is not None:
                otel_context.detach(self._token)
            self._span.end()

    def set_attributes(self, attributes: Mapping[str, str | int | float | bool]) -> None:
        self._span.set_attributes(attributes)

    def update_name(self, name: str) -> None:
        self._span.update_name(name)

    def fail(self, description: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, description))


class Telemetry:
    """Spans, trace context and the app's metrics on the given providers."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        logger_provider: LoggerProvider | None = None,
        *,
        add_processors: bool = True,
    ) -> None:
        if add_processors:
            add_span_processor = getattr(tracer_provider, "add_span_processor", None)
            if add_span_processor is not None:  # the SDK's provider; the API's no-op one has none
                add_span_processor(ContextIdsSpanProcessor())
                add_span_processor(StorageUrlSpanProcessor())
            if logger_provider is not None:
                logger_provider.add_log_record_processor(ScrubbingLogProcessor())
        self._tracer = tracer_provider.get_tracer("shared")
        meter = meter_provider.get_meter("shared")
        self._answer_latency = meter.create_histogram(
            api.ANSWER_LATENCY,
            unit="s",
            description="From the webhook's receive time to Microsoft accepting our PATCH answer",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._queue_age = meter.create_histogram(
            api.QUEUE_AGE,
            unit="s",
            description="From enqueued (or scheduled) to the worker starting the message",
            explicit_bucket_boundaries_advisory=_AGE_BUCKETS,
        )
        self._activation_failures = meter.create_counter(
            api.ACTIVATION_FAILURES, unit="{failure}", description="Activation attempts that failed"
        )
        self._dead_letters = meter.create_counter(
            api.DEAD_LETTERS, unit="{message}", description="Messages the worker parked as unprocessable"
        )
        self._event: contextvars.ContextVar[tuple[datetime, str] | None] = contextvars.ContextVar(
            "webhook_event", default=None
        )

    def span(
        self,
        name: str,
        kind: api.SpanKind,
        parent: api.Carrier | None,
        attributes: Mapping[str, str | int | float | bool] | None,
    ) -> _ActiveSpan:
        ctx = _PROPAGATOR.extract(_carrier(parent)) if parent is not None else None
        started = self._tracer.start_span(name, context=ctx, kind=_KINDS[kind], attributes=attributes)
        return _ActiveSpan(started, suppress_http=kind == "client")

    def annotate(self, attributes: Mapping[str, str | int | float | bool | None]) -> None:
        trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})

    def fail(self, description: str) -> None:
        trace.get_current_span().set_status(Status(StatusCode.ERROR, description))

    def trace_context(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier

    def queue_age(self, enqueued_at: datetime, kind: str) -> None:
        seconds = max(0.0, (datetime.now(UTC) - _aware(enqueued_at)).total_seconds())
        self._queue_age.record(seconds, {api.MESSAGE_KIND: kind})
        trace.get_current_span().set_attribute(api.QUEUE_AGE_SECONDS, round(seconds, 3))

    def webhook_event(self, received_at: datetime | None, action: object) -> AbstractContextManager[object]:
        if received_at is None or received_at.tzinfo is None:
            return api.NO_SPAN
        return self._handling(received_at, str(action or ""))

    @contextmanager
    def _handling(self, received_at: datetime, action: str) -> Iterator[object]:
        token = self._event.set((received_at, action))
        try:
            yield None
        finally:
            self._event.reset(token)

    def answered(self, success: bool) -> None:
        event = self._event.get()
        if event is None:
            return
        received_at, action = event
        seconds = max(0.0, (datetime.now(UTC) - received_at).total_seconds())
        answer = "Success" if success else "Failure"
        self._answer_latency.record(seconds, {api.ACTION: action, api.ANSWER: answer})
        trace.get_current_span().set_attributes(
            {api.ANSWER_LATENCY_SECONDS: round(seconds, 3), api.ANSWER: answer}
        )

    def activation_failed(self, outcome: str, reason: str) -> None:
        self._activation_failures.add(1, {api.OUTCOME: outcome, api.REASON: reason})

    def dead_lettered(self, reason: str, kind: str) -> None:
        self._dead_letters.add(1, {api.REASON: reason, api.MESSAGE_KIND: kind})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def configure_azure_monitor(
    connection_string: str, *, credential: TokenCredential | None, keep_every_trace: bool
) -> Telemetry:
    """The Azure Monitor distro, configured once, with this app's processors first in line.

    When something configured OpenTelemetry before us (the Functions Python worker does when told to), its
    providers are used as they are, with our processors added, rather than configured a second time."""
    from opentelemetry import _logs, metrics

    existing = trace.get_tracer_provider()
    if hasattr(existing, "add_span_processor"):
        logger_provider = _logs.get_logger_provider()
        return Telemetry(
            existing,
            metrics.get_meter_provider(),
            logger_provider if isinstance(logger_provider, LoggerProvider) else None,
        )

    from azure.monitor.opentelemetry import configure_azure_monitor as distro

    options: dict[str, Any] = {
        "connection_string": connection_string,
        "logger_name": _LOGGER_NAME,
        "span_processors": [ContextIdsSpanProcessor(), StorageUrlSpanProcessor()],
        "log_record_processors": [ScrubbingLogProcessor()],
        "instrumentation_options": {name: {"enabled": False} for name in _DISABLED_INSTRUMENTATIONS},
        # On by default in the distro: a span and a log processor on every span and line, and a thread per
        # instance that polls the live endpoint. Nothing here needs it: the host's own Live Metrics still
        # shows requests and failures, and the app's rows are queried in Logs.
        "enable_live_metrics": False,
    }
    if credential is not None:
        options["credential"] = credential
    if keep_every_trace:
        options["sampling_ratio"] = 1.0
    distro(**options)
    return Telemetry(trace.get_tracer_provider(), metrics.get_meter_provider(), add_processors=False)
