"""Telemetry on for one test, with the OpenTelemetry SDK's in-memory exporters, through `shared.telemetry`.

`recording_telemetry()` installs a tracer provider that keeps every finished span, a meter provider read on
demand and a logger provider that keeps every log record, all through `shared.telemetry.install` (so the
app's own processors are in the pipeline, as they are in front of the Azure Monitor exporters), and turns
telemetry off again afterwards. Nothing leaves the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry


@dataclass
class Recorded:
    spans_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    logs_exporter: InMemoryLogRecordExporter
    tracer_provider: TracerProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_exporter.get_finished_spans())

    def spans_named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def points(self, metric_name: str) -> list[Any]:
        """Every data point of one metric, as collected now."""
        data = self.metric_reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == metric_name:
                        found.extend(metric.data.data_points)
        return found

    def log_records(self) -> list[Any]:
        return [data.log_record for data in self.logs_exporter.get_finished_logs()]


@contextmanager
def recording_telemetry(logger_name: str = "shared") -> Iterator[Recorded]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    # install() puts the app's processors first, as configure_azure_monitor does; the exporters come after.
    telemetry.install(tracer_provider, meter_provider, logger_provider)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(logger_provider=logger_provider)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield Recorded(spans, reader, logs, tracer_provider)
    finally:
        logger.removeHandler(handler)
        telemetry.uninstall()
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()
