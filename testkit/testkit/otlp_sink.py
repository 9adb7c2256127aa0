"""A stand-in OTLP/gRPC collector on 127.0.0.1: it keeps every span and metric
it is sent, so tests can look at what the services export."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from testkit.keys import private_pem, rsa_key, self_signed


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


def attribute_value(any_value: Any) -> Any:
    """An OTLP ``AnyValue`` as the Python value it holds (None when empty)."""
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` pairs (resource, span or point attributes) as a dict."""
    return {kv.key: attribute_value(kv.value) for kv in pairs}


class OtlpSink(
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
):
    def __init__(self, *, tls_dir: Path | None = None, refuse: bool = False) -> None:
        """Plaintext by default; with `tls_dir`, TLS with a certificate for
        127.0.0.1 whose PEM is written to ``tls_dir/ca.pem`` (as Google's
        endpoint speaks it). With `refuse`, every export is UNAVAILABLE."""
        self._lock = threading.Lock()
        self.spans: list[Span] = []
        # (service, metric name) → data points' attributes
        self.metrics: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # The authorization metadata of each export call ("" when none).
        self.authorizations: list[str] = []
        self.refuse = refuse
        self.exports = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._server)
        self.ca_file: Path | None = None
        if tls_dir is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            key = rsa_key()
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            cert = self_signed(key, "127.0.0.1", [(san, False)])
            self.ca_file = tls_dir / "ca.pem"
            self.ca_file.write_bytes(cert)
            credentials = grpc.ssl_server_credentials([(private_pem(key), cert)])
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)

    @property
    def endpoint(self) -> str:
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def gcp_env(self) -> dict[str, str]:
        """What a service needs to export here as it would to Google (TLS, a token)."""
        assert self.ca_file is not None, "gcp export needs the TLS sink (tls_dir=...)"
        return {
            "OTEL_TRACES_EXPORTER": "gcp",
            "OTEL_METRICS_EXPORTER": "gcp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(self.ca_file),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }

    def env(self) -> dict[str, str]:
        """What a service needs to export here, quickly."""
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }

    def __enter__(self) -> OtlpSink:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(None)

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        with self._lock:
            self.exports += 1
            self.authorizations.append(str(metadata.get("authorization", "")))
        if self.refuse:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the sink refuses (test)")
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            self._spans(request)
            return trace_service_pb2.ExportTraceServiceResponse()
        self._metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def _spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            service = str(attributes(rs.resource.attributes).get("service.name"))
            for ss in rs.scope_spans:
                for span in ss.spans:
                    found.append(
                        Span(
                            service,
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes(span.attributes),
                        )
                    )
        with self._lock:
            self.spans.extend(found)

    def _metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self._lock:
            for rm in request.resource_metrics:
                service = str(attributes(rm.resource.attributes).get("service.name"))
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        data = getattr(metric, metric.WhichOneof("data") or "")
                        points = self.metrics.setdefault((service, metric.name), [])
                        points.extend(attributes(p.attributes) for p in data.data_points)

    def wait_for[T](self, what: Callable[[OtlpSink], T | None], timeout: float = 20) -> T:
        """Poll until `what(self)` is truthy (exports are batched)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = what(self)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not exported within {timeout}s; spans: {self.spans}")
            time.sleep(0.2)
