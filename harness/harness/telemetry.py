"""A small OTLP receiver for the local environment: what `make up` collects telemetry with.

No OpenTelemetry Collector installs from the package registries these machines reach
(PyPI, npm, Debian), so the harness receives OTLP itself (ADR 0027): an OTLP/gRPC
server on 127.0.0.1:4317 (the port ``envctl`` renders into the local services'
``OTEL_EXPORTER_OTLP_ENDPOINT``) keeps the most recent spans and every metric's latest
points in memory, and a page on 127.0.0.1:16686 shows them, offline and without
JavaScript:

- ``/``: the most recent traces, each as its tree of spans (service, name, duration,
  status), so one request is seen across console → pipeline → run → steps;
- ``/metrics``: every histogram's count, p50, p95 and p99 per series (interpolated in
  its buckets, as PromQL's histogram_quantile does), and every counter and gauge;
- ``/api/traces`` and ``/api/metrics``: the same as JSON.

``harness-up local`` starts it when ``telemetry.export`` is ``otlp``; standalone:

    python -m harness.telemetry [--port 4317] [--ui-port 16686]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import signal
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from concurrent import futures
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from testkit.otlp_sink import attributes

OTLP_PORT = 4317
UI_PORT = 16686
MAX_SPANS = 20_000  # a morning of make up; older spans are dropped first
SHOWN_TRACES = 50
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.StatusCode


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any]

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class Series:
    """One metric's latest point for one service and attribute set."""

    service: str
    metric: str
    unit: str
    attributes: dict[str, Any]
    kind: str  # histogram | sum | gauge
    value: float = 0.0
    count: int = 0
    total: float = 0.0
    bounds: list[float] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket holding rank q·count (histogram_quantile)."""
        if self.kind != "histogram" or self.count == 0 or not self.buckets:
            return None
        rank, seen = q * self.count, 0
        for i, n in enumerate(self.buckets):
            if n and seen + n >= rank:
                lower = self.bounds[i - 1] if i > 0 else 0.0
                upper = self.bounds[i] if i < len(self.bounds) else lower
                return lower + (upper - lower) * (rank - seen) / n
            seen += n
        return self.bounds[-1] if self.bounds else None


class Store:
    """What the receiver was sent: recent spans, the latest point of each series."""

    def __init__(self, max_spans: int = MAX_SPANS) -> None:
        self._lock = threading.Lock()
        self._spans: deque[Span] = deque(maxlen=max_spans)
        self._series: OrderedDict[tuple[str, str, str], Series] = OrderedDict()

    def add_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            service = str(attributes(rs.resource.attributes).get("service.name", "?"))
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(
                        Span(
                            service,
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            s.status.code == STATUS_ERROR,
                            attributes(s.attributes),
                        )
                    )
        with self._lock:
            self._spans.extend(found)

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self._lock:
            for rm in request.resource_metrics:
                service = str(attributes(rm.resource.attributes).get("service.name", "?"))
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        for series in _series_of(service, metric):
                            labels = json.dumps(series.attributes, sort_keys=True)
                            self._series[(service, metric.name, labels)] = series

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def series(self) -> list[Series]:
        with self._lock:
            return sorted(self._series.values(), key=lambda s: (s.service, s.metric))

    def traces(self, limit: int = SHOWN_TRACES) -> list[list[Span]]:
        """The most recent traces (by their last span), each one's spans by start time."""
        by_trace: OrderedDict[str, list[Span]] = OrderedDict()
        for span in self.spans():
            by_trace.setdefault(span.trace_id, []).append(span)
            by_trace.move_to_end(span.trace_id)
        recent = list(by_trace.values())[-limit:][::-1]
        return [sorted(t, key=lambda s: s.start_ns) for t in recent]


def _series_of(service: str, metric: Any) -> Iterator[Series]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    for point in data.data_points:
        series = Series(
            service, metric.name, metric.unit, attributes(point.attributes), kind or "?"
        )
        if kind == "histogram":
            series.count, series.total = point.count, point.sum
            series.bounds, series.buckets = list(point.explicit_bounds), list(point.bucket_counts)
        else:
            series.value = point.as_double if point.HasField("as_double") else point.as_int
        yield series


def tree(trace: list[Span]) -> list[tuple[int, Span]]:
    """The spans of one trace depth-first from its roots, each with its depth."""
    ids = {s.span_id for s in trace}
    children: dict[str, list[Span]] = {}
    for span in trace:
        parent = span.parent_span_id if span.parent_span_id in ids else ""
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, Span]] = []

    def visit(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            ordered.append((depth, span))
            visit(span.span_id, depth + 1)

    visit("", 0)
    return ordered


class Receiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """The OTLP/gRPC server and the page, both on 127.0.0.1."""

    def __init__(self, port: int = OTLP_PORT, ui_port: int = UI_PORT) -> None:
        self.store = Store()
        # No SO_REUSEPORT (grpc's default): a second make up must find the port taken,
        # not silently share it and see half of each service's telemetry.
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._grpc)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._grpc)
        try:
            self.port = self._grpc.add_insecure_port(f"127.0.0.1:{port}")
        except RuntimeError as exc:  # grpc raises when it cannot bind
            raise OSError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc
        try:
            self._http = ThreadingHTTPServer(("127.0.0.1", ui_port), _handler(self.store))
        except OSError as exc:
            self._grpc.stop(None)
            raise OSError(f"cannot listen on 127.0.0.1:{ui_port}: {exc}") from exc
        self.ui_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}/"

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            self.store.add_spans(request)
            return trace_service_pb2.ExportTraceServiceResponse()
        self.store.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def __enter__(self) -> Receiver:
        self._grpc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(None)


# --- the page ------------------------------------------------------------------------

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
    ".err{color:#b00020}.num{text-align:right;white-space:nowrap;"
    "font-variant-numeric:tabular-nums}"
)


def _page(title: str, body: str) -> bytes:
    nav = '<p><a href="/">traces</a> · <a href="/metrics">metrics</a></p>'
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>{nav}{body}"
    ).encode()


def traces_page(store: Store) -> bytes:
    parts = []
    for trace in store.traces():
        rows = []
        for depth, span in tree(trace):
            css = ' class="err"' if span.error else ""
            rows.append(
                f"<tr{css}><td>{html.escape(span.service)}</td>"
                f'<td style="padding-left:{10 + 20 * depth}px">{html.escape(span.name)}</td>'
                f'<td class="num">{span.ms:.2f} ms</td></tr>'
            )
        root = tree(trace)[0][1]
        what = f"{root.service}: {root.name}, {root.ms:.2f} ms, {len(trace)} spans"
        parts.append(
            f"<h3>{html.escape(what)}</h3><p><small>trace {trace[0].trace_id}</small></p>"
            f"<table><tr><th>service</th><th>span</th><th>duration</th></tr>"
            f"{''.join(rows)}</table>"
        )
    return _page("Local traces", "".join(parts) or "<p>No spans yet: make a request.</p>")


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return ""
    if unit == "s":
        return f"{value * 1000:.3f} ms"
    return f"{value:g} {unit}"


def metrics_page(store: Store) -> bytes:
    rows = []
    for s in store.series():
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s.attributes.items()))
        if s.kind == "histogram":
            quantiles = (_fmt(s.quantile(q), s.unit) for q in (0.5, 0.95, 0.99))
            figures = f'<td class="num">{s.count}</td>' + "".join(
                f'<td class="num">{q}</td>' for q in quantiles
            )
        else:
            figures = f'<td class="num">{s.value:g}</td><td></td><td></td><td></td>'
        rows.append(
            f"<tr><td>{html.escape(s.service)}</td><td>{html.escape(s.metric)}</td>"
            f"<td>{html.escape(labels)}</td>{figures}</tr>"
        )
    table = (
        "<table><tr><th>service</th><th>metric</th><th>attributes</th><th>count / value</th>"
        f"<th>p50</th><th>p95</th><th>p99</th></tr>{''.join(rows)}</table>"
    )
    return _page("Local metrics", table if rows else "<p>No metrics yet.</p>")


def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # make up's terminal shows the services' logs, not these

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(traces_page(store), "text/html; charset=utf-8")
            elif path == "/metrics":
                self._send(metrics_page(store), "text/html; charset=utf-8")
            elif path == "/api/traces":
                body = [[asdict(s) for s in trace] for trace in store.traces()]
                self._send(json.dumps(body).encode(), "application/json")
            elif path == "/api/metrics":
                series = [
                    {**asdict(s), "p50": s.quantile(0.5), "p95": s.quantile(0.95)}
                    for s in store.series()
                ]
                self._send(json.dumps(series).encode(), "application/json")
            else:
                self.send_error(404)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.telemetry", description=__doc__)
    parser.add_argument("--port", type=int, default=OTLP_PORT, help="OTLP/gRPC (default 4317)")
    parser.add_argument("--ui-port", type=int, default=UI_PORT, help="the page (default 16686)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Receiver(args.port, args.ui_port) as receiver:
            sys.stderr.write(f"OTLP on {receiver.endpoint}; traces and metrics at {receiver.url}\n")
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except OSError as exc:
        sys.stderr.write(f"telemetry receiver: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
