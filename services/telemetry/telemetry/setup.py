"""Tracer and meter providers, with exporters chosen by the standard variables.

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma-separated list of
  ``otlp``, ``gcp``, ``console`` or ``none``. **Default: none.** The
  OpenTelemetry spec's default is ``otlp``; we deliberately default to
  exporting nothing, so a service started with no configuration (tests, a
  laptop) never tries to reach a collector that is not there.
- ``otlp`` speaks OTLP over gRPC (``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``, the
  only protocol the images ship) to ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
  friends, read by the exporter itself; batching by ``OTEL_BSP_*``, the metric
  interval by ``OTEL_METRIC_EXPORT_INTERVAL``.
- ``gcp`` is the same OTLP/gRPC exporter sent to Google's Telemetry API
  (``OTEL_EXPORTER_OTLP_ENDPOINT``, default ``https://telemetry.googleapis.com``):
  TLS plus an OAuth access token on every export, from the instance's service
  account (the metadata server; ``GOOGLE_APPLICATION_CREDENTIALS`` when set).
  Traces land in Cloud Trace and metrics in Cloud Monitoring (ADR 0027).
  The token is fetched when the first batch is sent, never at start-up.
- ``console`` writes one JSON object per span / metrics batch to stderr (stdout
  carries the logs, one JSON line each).
- ``OTEL_SDK_DISABLED=true`` turns everything off; ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES`` describe the service; ``OTEL_TRACES_SAMPLER`` /
  ``OTEL_TRACES_SAMPLER_ARG`` sample (default: parent-based, always on; the
  environment file sets a ratio per environment); ``OTEL_PROPAGATORS`` picks the
  propagators (default: W3C tracecontext and baggage).

The resource names the process the way Cloud Monitoring's ``prometheus_target``
needs it: ``service.name`` (its job), ``service.namespace`` (the environment,
from ``OTEL_RESOURCE_ATTRIBUTES``), ``cloud.region`` (its location) and a
``service.instance.id`` that starts with the Cloud Run revision (``K_REVISION``)
so a query can select one revision's series; ``gcp.project_id`` comes from
``GOOGLE_CLOUD_PROJECT``. No resource detector runs: every value is in the
environment already, so start-up makes no metadata-server call.

Spans are created even when nothing is exported or a trace is not sampled:
the trace and span ids still reach the logs and the ``traceparent`` sent to
the pipeline, so one request can be followed by id alone.

Nothing here raises: an exporter that cannot be built is logged as a warning
and left out, and the service starts without it. An exporter that fails at
run time (endpoint down, token refused) is logged once, with the exporter's
own reason, and then quietly retried batch by batch until it works again
(one line says so); requests never wait for an export.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

log = logging.getLogger(__name__)

SUPPORTED_PROTOCOLS = ("grpc",)
DEFAULT_SHUTDOWN_SECONDS = 3.0
GCP_ENDPOINT = "https://telemetry.googleapis.com"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# The loggers that report each failed batch (the OTLP exporter's retries and
# errors, the batch processor's "queue full"): quiet while an outage is known.
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk._shared_internal",
)
_SAMPLERS: dict[str, Callable[[float], sampling.Sampler]] = {
    "always_on": lambda _ratio: sampling.ALWAYS_ON,
    "always_off": lambda _ratio: sampling.ALWAYS_OFF,
    "traceidratio": sampling.TraceIdRatioBased,
    "parentbased_always_on": lambda _ratio: sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": lambda _ratio: sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": lambda ratio: sampling.ParentBased(
        sampling.TraceIdRatioBased(ratio)
    ),
}


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


class _ServiceAccountToken:
    """gRPC call credentials: the service account's OAuth token on every export.

    Everything google-auth needs (its metadata-server client imports requests, about
    half a second of imports on Cloud Run's CPU) is loaded at the first export, on
    grpc's credentials thread, never on the start-up path. compute_engine.Credentials
    asks the metadata server for a token then, and again before it expires.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._use_key_file = bool(env.get("GOOGLE_APPLICATION_CREDENTIALS"))
        self._plugin: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._plugin is None:
                import google.auth
                import google.auth.compute_engine
                import google.auth.transport.grpc
                import google.auth.transport.requests

                if self._use_key_file:
                    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
                else:
                    credentials = google.auth.compute_engine.Credentials(  # type: ignore[no-untyped-call]
                        scopes=[CLOUD_PLATFORM_SCOPE]
                    )
                self._plugin = google.auth.transport.grpc.AuthMetadataPlugin(  # type: ignore[no-untyped-call]
                    credentials, google.auth.transport.requests.Request()
                )
            return self._plugin

    def __call__(self, context: Any, callback: Any) -> None:
        try:
            plugin = self._load()
        except Exception as exc:  # the export fails (and is reported once); start-up is done
            callback((), exc)
            return
        plugin(context, callback)


def _google_channel_credentials(env: Mapping[str, str]) -> Any:
    """TLS plus the service account's access token on every call."""
    import grpc

    roots = None
    if ca_file := env.get("OTEL_EXPORTER_OTLP_CERTIFICATE"):
        with open(ca_file, "rb") as ca:  # a test's own CA; the public roots otherwise
            roots = ca.read()
    return grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=roots),
        grpc.metadata_call_credentials(_ServiceAccountToken(env), name="google"),
    )


def _gcp_endpoint(env: Mapping[str, str]) -> str:
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or GCP_ENDPOINT
    if not endpoint.startswith("https://"):
        raise ValueError(f"gcp export needs an https:// endpoint, not {endpoint!r}")
    return endpoint


def _span_exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name in ("otlp", "gcp"):
        _require_supported_otlp_protocol(env, "TRACES")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if name == "gcp":
            return OTLPSpanExporter(
                endpoint=_gcp_endpoint(env), credentials=_google_channel_credentials(env)
            )
        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    raise ValueError(f"unknown exporter {name!r} (use otlp, gcp, console or none)")


def _metric_exporter(name: str, env: Mapping[str, str]) -> MetricExporter:
    if name in ("otlp", "gcp"):
        _require_supported_otlp_protocol(env, "METRICS")
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        if name == "gcp":
            return OTLPMetricExporter(
                endpoint=_gcp_endpoint(env), credentials=_google_channel_credentials(env)
            )
        return OTLPMetricExporter()
    if name == "console":
        return ConsoleMetricExporter(
            out=sys.stderr, formatter=lambda data: data.to_json(indent=None) + "\n"
        )
    raise ValueError(f"unknown exporter {name!r} (use otlp, gcp, console or none)")


class _OutageFilter(logging.Filter):
    """Lets the first export-failure line through, then drops them until a batch
    succeeds again: an endpoint that is down must not write a line per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if self.quiet:
            return False
        self.quiet = True
        return True


class _ExportHealth:
    """What one exporter's outcomes say: warn once per outage, note the recovery."""

    def __init__(self, signal: str, name: str, outage: _OutageFilter) -> None:
        self.signal, self.name, self._outage = signal, name, outage
        self.failing = False
        self._lock = threading.Lock()

    def outcome(self, ok: bool) -> None:
        with self._lock:
            if ok and self.failing:
                self.failing = False
                self._outage.quiet = False
                log.info("telemetry: %s export to %s works again", self.signal, self.name)
            elif not ok and not self.failing:
                self.failing = True
                self._outage.quiet = True
                log.warning(
                    "telemetry: %s export to %s failed; the service goes on, and further "
                    "failures are not logged until an export succeeds",
                    self.signal,
                    self.name,
                )


class _WatchedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, health: _ExportHealth) -> None:
        self._inner, self.health = inner, health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:  # an exporter bug must not kill the batch thread
            result = SpanExportResult.FAILURE
        self.health.outcome(result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _WatchedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, health: _ExportHealth) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner, self.health = inner, health

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            result = MetricExportResult.FAILURE
        self.health.outcome(result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


_OUTAGE = _OutageFilter()
for _name in EXPORT_LOGGERS:
    logging.getLogger(_name).addFilter(_OUTAGE)


def sampler_from(env: Mapping[str, str]) -> sampling.Sampler:
    """``OTEL_TRACES_SAMPLER`` / ``_ARG``; a bad value warns and keeps the default."""
    default = sampling.ParentBased(sampling.ALWAYS_ON)
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    make = _SAMPLERS.get(name)
    if make is None:
        log.warning(
            "OTEL_TRACES_SAMPLER=%s is not one of %s: sampling every trace",
            name,
            ", ".join(sorted(_SAMPLERS)),
        )
        return default
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw) if raw else 1.0
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        log.warning(
            "OTEL_TRACES_SAMPLER_ARG=%s is not a ratio between 0 and 1: sampling every trace",
            raw,
        )
        return default
    return make(ratio)


def resource_attributes(service: str, version: str, env: Mapping[str, str]) -> dict[str, str]:
    """What names this process, beside ``OTEL_RESOURCE_ATTRIBUTES`` (see the module doc)."""
    revision = env.get("K_REVISION", "").strip()
    attributes = {
        "service.name": service,
        "service.version": version,
        # Unique per process (Cloud Monitoring rejects points without one), and
        # prefixed by the revision so one revision's series can be selected.
        "service.instance.id": f"{revision or 'local'}-{uuid.uuid4().hex[:12]}",
    }
    if project := env.get("GOOGLE_CLOUD_PROJECT", "").strip():
        attributes["gcp.project_id"] = project
        attributes["cloud.provider"] = "gcp"
    if revision:
        attributes["cloud.platform"] = "gcp_cloud_run"
        attributes["faas.name"] = env.get("K_SERVICE", service)
        attributes["faas.version"] = revision
    return attributes


def _build[T](
    kind: str, var: str, env: Mapping[str, str], make: Callable[[str], T]
) -> tuple[list[tuple[str, T]], list[str]]:
    built: list[tuple[str, T]] = []
    names: list[str] = []
    for name in _names(env, var):
        try:
            built.append((name, make(name)))
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
        resource = Resource.create(resource_attributes(service, version, env))
        tracer_provider = TracerProvider(
            resource=resource, sampler=sampler_from(env), shutdown_on_exit=False
        )
        span_exporters, trace_names = _build(
            "trace", "OTEL_TRACES_EXPORTER", env, lambda n: _span_exporter(n, env)
        )
        for name, span_exporter in span_exporters:
            health = _ExportHealth("trace", name, _OUTAGE)
            tracer_provider.add_span_processor(
                BatchSpanProcessor(_WatchedSpanExporter(span_exporter, health))
            )
        for processor in span_processors or []:
            tracer_provider.add_span_processor(processor)

        readers: list[MetricReader] = list(metric_readers or [])
        metric_exporters, metric_names = _build(
            "metric", "OTEL_METRICS_EXPORTER", env, lambda n: _metric_exporter(n, env)
        )
        for name, metric_exporter in metric_exporters:
            watched = _WatchedMetricExporter(
                metric_exporter, _ExportHealth("metric", name, _OUTAGE)
            )
            try:
                readers.append(PeriodicExportingMetricReader(watched))
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
