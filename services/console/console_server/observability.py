"""Per-request telemetry of the console: request id, an access log line with
Cloud Logging's ``httpRequest`` for a request that failed (status 400 or more) or
was slow (``ACCESS_LOG_SLOW_MS``, :mod:`telemetry.access_log`; Cloud Run logs
every request itself), ``http.server.request.duration`` per route
(seconds; ``error.type`` on 5xx, per the semantic conventions) and
``http.server.refused`` for requests turned away (413, 429) by the error code
the console answered with.

A pure ASGI middleware (not ``BaseHTTPMiddleware``): the request id set here
is a contextvar, and it must stay visible to the route and to the gRPC client
interceptor that copies it into the pipeline call's metadata. It runs inside
the OpenTelemetry FastAPI middleware, so its log line carries the request's
trace and span.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import REQUEST_ID_HEADER, Telemetry, request_id_scope, sanitise_request_id
from telemetry.access_log import slow_call_seconds, worth_a_line
from telemetry.instruments import HTTP_REFUSED, HTTP_SERVER, RequestInstruments, refused_counter

log = logging.getLogger("console_server.access")

# Probes: logged at DEBUG and left out of traces (Cloud Run calls them often).
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# Bounded cardinality for paths that matched no route (scanners, typos).
UNMATCHED_ROUTE = "(unmatched)"
# Answers that refuse a request before its work (too large, busy): counted by reason.
REFUSED_STATUSES = frozenset({413, 429})
# The error body's code is read from at most this many bytes (errors are small).
_ERROR_BODY_BYTES = 4096


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/runs/{run_id}``), not the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestTelemetryMiddleware:
    def __init__(
        self, app: ASGIApp, *, telemetry: Telemetry, slow_seconds: float | None = None
    ) -> None:
        self.app = app
        # A successful request this slow gets a line; default ACCESS_LOG_SLOW_MS.
        self.slow_seconds = slow_call_seconds() if slow_seconds is None else slow_seconds
        meter = telemetry.meter("console_server")
        self.metrics = RequestInstruments.create(meter, HTTP_SERVER, "HTTP requests per route")
        self.refused = refused_counter(meter, HTTP_REFUSED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = sanitise_request_id(headers.get(REQUEST_ID_HEADER))
        start = time.perf_counter()
        status = 500  # what the client gets if the app dies before answering
        size = 0
        error_body = b""

        async def observed_send(message: Message) -> None:
            nonlocal status, size, error_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (REQUEST_ID_HEADER.encode(), request_id.encode()),
                    ],
                }
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                size += len(body)
                if status in REFUSED_STATUSES and len(error_body) < _ERROR_BODY_BYTES:
                    error_body += body[:_ERROR_BODY_BYTES]
            await send(message)

        with request_id_scope(request_id):
            try:
                await self.app(scope, receive, observed_send)
            finally:
                self._record(scope, headers, status, size, time.perf_counter() - start)
                if status in REFUSED_STATUSES:
                    self.refused.add(
                        1,
                        {
                            "http.route": route_template(scope),
                            "http.response.status_code": str(status),
                            "reason": refusal_reason(error_body, status),
                        },
                    )

    def _record(
        self, scope: Scope, headers: dict[str, str], status: int, size: int, seconds: float
    ) -> None:
        route = route_template(scope)
        self.metrics.record(
            seconds,
            {
                "http.request.method": scope["method"],
                "http.route": route,
                "http.response.status_code": str(status),
            },
            error_type=str(status) if status >= 500 else None,
        )
        if not worth_a_line(status >= 400, seconds, self.slow_seconds):
            return
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        http_request: dict[str, Any] = {
            "requestMethod": scope["method"],
            "requestUrl": scope["path"] + (f"?{query}" if query else ""),
            "status": status,
            "responseSize": str(size),
            "userAgent": headers.get("user-agent", ""),
            "remoteIp": client[0] if client else "",
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            # Cloud Logging's Duration format.
            "latency": f"{seconds:.6f}s",
        }
        if "content-length" in headers:
            http_request["requestSize"] = headers["content-length"]
        level = logging.DEBUG if scope["path"] in PROBE_PATHS else logging.INFO
        if status >= 500:
            level = logging.WARNING
        log.log(
            level,
            "%s %s %d",
            scope["method"],
            http_request["requestUrl"],
            status,
            extra={"httpRequest": http_request, "route": route},
        )


def refusal_reason(body: bytes, status: int) -> str:
    """The error code of our JSON error body (``{"error": {"code": ...}}``), else the status."""
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return str(status)
    return str(code)[:64] if isinstance(code, str | int) else str(status)


def instrument(app: FastAPI, telemetry: Telemetry, slow_seconds: float | None = None) -> None:
    """Server spans from OpenTelemetry's FastAPI instrumentation (continuing an
    incoming ``traceparent``, e.g. Cloud Run's), and our per-route middleware
    inside them. The instrumentation's own HTTP metrics are off: the middleware
    records requests, errors and duration per route itself."""
    app.add_middleware(RequestTelemetryMiddleware, telemetry=telemetry, slow_seconds=slow_seconds)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=metrics.NoOpMeterProvider(),
        excluded_urls=",".join(f"^{p}$" for p in sorted(PROBE_PATHS)) + ",^/static/",
        # One span per request, not one per ASGI message.
        exclude_spans=["receive", "send"],
    )
