"""Tracer and meter providers, with exporters chosen by the standard variables.

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma-separated list of
  ``otlp``, ``console`` or ``none``. **Default: none.** The OpenTelemetry spec's
  default is ``otlp``; we deliberately default to exporting nothing, so a
  service started with no configuration (tests, ``make up``, a laptop) never
  tries to reach a collector that is not there.
- ``otlp`` speaks OTLP over gRPC (``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``, the
  only protocol the images ship) to ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
  friends, read by the exporter itself; batching by ``OTEL_BSP_*``, the metric
  interval by ``OTEL_METRIC_EXPORT_INTERVAL``.
- ``console`` writes one JSON object per span / metrics batch to stderr (stdout
  carries the logs, one JSON line each).
- ``OTEL_SDK_DISABLED=true`` turns everything off; ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES`` describe the service; ``OTEL_TRACES_SAMPLER``
  samples (default: parent-based, always on); ``OTEL_PROPAGATORS`` picks the
  propagators (default: W3C tracecontext and baggage).

Spans are created even when nothing is exported: the trace and span ids still
reach the logs and the ``traceparent`` sent to the pipeline, so one request
can be followed by id alone.

Nothing here raises: an exporter that cannot be built is logged as a warning
and left out, and the service starts without it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

log = logging.getLogger(__name__)

SUPPORTED_PROTOCOLS = ("grpc",)
DEFAULT_SHUTDOWN_SECONDS = 3.0


@dataclass
class Telemetry:
    """The providers one service uses; pass it to whatever instruments."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    # What is exported, for the start-up log line and tests.
    trace_exporters: list[str] = field(default_factory=list)
    metric_exporters: list[str] = field(default_factory=list)

    @classmethod
    def noop(cls) -> Telemetry:
        """No spans, no metrics: for code paths started without telemetry."""
        return cls(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_SECONDS) -> None:
        """Flush and stop, giving up after `timeout` seconds.

        An OTLP exporter retries an unreachable endpoint with backoff; Cloud
        Run kills the container 10 s after SIGTERM, so the flush runs in a
        daemon thread that is abandoned when time is up.
        """

        def _stop() -> None:
            for provider in (self.tracer_provider, self.meter_provider):
                stop = getattr(provider, "shutdown", None)
                if stop is None:
                    continue
                try:
                    stop()
                except Exception as exc:  # a failing exporter must not fail shutdown
                    log.warning("telemetry shutdown: %s", exc)

        worker = threading.Thread(target=_stop, name="telemetry-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            log.warning("telemetry shutdown: gave up flushing after %.1f s", timeout)


def _names(env: Mapping[str, str], var: str) -> list[str]:
    raw = env.get(var, "").strip().lower() or "none"
    names = [n.strip() for n in raw.split(",") if n.strip()]
    return [] if "none" in names else names


def _require_supported_otlp_protocol(env: Mapping[str, str], signal: str) -> None:
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ValueError(f"OTLP protocol {protocol!r} is not supported (use grpc)")


def _span_exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "otlp":
        _require_supported_otlp_protocol(env, "TRACES")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    raise ValueError(f"unknown exporter {name!r} (use otlp, console or none)")


def _metric_exporter(name: str, env: Mapping[str, str]) -> MetricExporter:
    if name == "otlp":
        _require_supported_otlp_protocol(env, "METRICS")
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    if name == "console":
        return ConsoleMetricExporter(
            out=sys.stderr, formatter=lambda data: data.to_json(indent=None) + "\n"
        )
    raise ValueError(f"unknown exporter {name!r} (use otlp, console or none)")


def _build[T](
    kind: str, var: str, env: Mapping[str, str], make: Callable[[str], T]
) -> tuple[list[T], list[str]]:
    built: list[T] = []
    names: list[str] = []
    for name in _names(env, var):
        try:
            built.append(make(name))
        except Exception as exc:
            log.warning("%s=%s: %s exporter %r not started: %s", var, env.get(var), kind, name, exc)
        else:
            names.append(name)
    return built, names


def setup_telemetry(
    service: str,
    version: str = "unknown",
    *,
    environ: Mapping[str, str] | None = None,
    install_globals: bool = True,
    span_processors: list[SpanProcessor] | None = None,
    metric_readers: list[MetricReader] | None = None,
) -> Telemetry:
    """Providers for `service`, exporting what the ``OTEL_*`` variables ask for.

    `span_processors` / `metric_readers` add in-memory ones (tests). With
    `install_globals`, the providers also become OpenTelemetry's globals, so
    libraries that use the global API report into them.
    """
    env = os.environ if environ is None else environ
    try:
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return Telemetry.noop()
        resource = Resource.create({"service.name": service, "service.version": version})
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        span_exporters, trace_names = _build(
            "trace", "OTEL_TRACES_EXPORTER", env, lambda n: _span_exporter(n, env)
        )
        for span_exporter in span_exporters:
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        for processor in span_processors or []:
            tracer_provider.add_span_processor(processor)

        readers: list[MetricReader] = list(metric_readers or [])
        metric_exporters, metric_names = _build(
            "metric", "OTEL_METRICS_EXPORTER", env, lambda n: _metric_exporter(n, env)
        )
        for metric_exporter in metric_exporters:
            try:
                readers.append(PeriodicExportingMetricReader(metric_exporter))
            except Exception as exc:  # e.g. OTEL_METRIC_EXPORT_INTERVAL=soon
                log.warning("metric exporter not started: %s", exc)
        meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, shutdown_on_exit=False
        )
    except Exception as exc:
        log.warning("telemetry disabled, it could not be set up: %s", exc)
        return Telemetry.noop()

    telemetry = Telemetry(tracer_provider, meter_provider, trace_names, metric_names)
    if install_globals:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    log.info(
        "telemetry: traces to %s, metrics to %s",
        ", ".join(trace_names) or "nowhere",
        ", ".join(metric_names) or "nowhere",
    )
    return telemetry
