"""A test kit: telemetry that keeps spans and metric points in memory.

Both services' tests use it to assert on what they would export, without an
exporter or globals (each instance has its own providers)::

    observed = InMemoryTelemetry("pipeline")
    start(settings, telemetry=observed.telemetry)
    ...
    assert observed.finished()[0].name == "pipeline.v1.PipelineService/GetDag"
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .setup import Telemetry, setup_telemetry


class InMemoryTelemetry:
    def __init__(self, service: str, version: str = "test") -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.telemetry: Telemetry = setup_telemetry(
            service,
            version,
            environ={},
            install_globals=False,
            span_processors=[SimpleSpanProcessor(self.spans)],
            metric_readers=[self.metrics],
        )

    def finished(self) -> list[ReadableSpan]:
        """Spans ended so far, in the order they ended."""
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """Every data point of the metric called `name`, across scopes."""
        data = self.metrics.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def shutdown(self) -> None:
        self.telemetry.shutdown()
