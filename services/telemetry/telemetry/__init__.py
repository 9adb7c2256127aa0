"""Telemetry shared by both services: structured logs, traces, metrics (OpenTelemetry).

- :mod:`telemetry.logs`: one JSON object per line in Cloud Logging's structured
  format, with the active trace, span and request id on every line.
- :mod:`telemetry.setup`: tracer and meter providers whose exporters the standard
  ``OTEL_*`` variables choose (default: export nothing); never fails start-up.
- :mod:`telemetry.grpc_server` / :mod:`telemetry.grpc_aio_client`: spans, metrics,
  ``traceparent`` and ``x-request-id`` on both ends of a gRPC call.
- :mod:`telemetry.access_log`: which calls get an access log line (failed or slower
  than ``ACCESS_LOG_SLOW_MS``).
"""

from telemetry.context import (
    REQUEST_ID_HEADER,
    current_request_id,
    new_request_id,
    request_id_scope,
    sanitise_request_id,
)
from telemetry.logs import CloudLoggingFormatter, configure_logging
from telemetry.setup import Telemetry, setup_telemetry

__all__ = [
    "REQUEST_ID_HEADER",
    "CloudLoggingFormatter",
    "Telemetry",
    "configure_logging",
    "current_request_id",
    "new_request_id",
    "request_id_scope",
    "sanitise_request_id",
    "setup_telemetry",
]
