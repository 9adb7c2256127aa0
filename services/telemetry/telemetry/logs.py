"""JSON log lines on stdout in Cloud Logging's structured format.

On Cloud Run a line that is one JSON object becomes a structured entry, and these
fields are lifted into the entry itself:
``severity``, ``message``, ``time``, ``logging.googleapis.com/trace``
(``projects/PROJECT/traces/TRACE_ID``), ``logging.googleapis.com/spanId``,
``logging.googleapis.com/trace_sampled``, ``logging.googleapis.com/sourceLocation``
and ``httpRequest``. Everything else (``service``, ``logger``, ``request_id``, any
``extra=``) stays in ``jsonPayload``. A traceback goes to ``stack_trace``, where
Error Reporting looks for it.

See https://cloud.google.com/logging/docs/structured-logging.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from telemetry.context import current_request_id

TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SAMPLED_KEY = "logging.googleapis.com/trace_sampled"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"

# Attributes every LogRecord has; anything else came from extra=.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
    "taskName",
}
# Cloud Run does not set a project variable; the deploy does (modules/stack).
_PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT")


def project_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    for name in _PROJECT_VARS:
        if value := env.get(name, "").strip():
            return value
    return None


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, carrying the active trace and request id."""

    def __init__(self, service: str, project: str | None = None) -> None:
        super().__init__()
        self._service = service
        self._project = project

    def trace_field(self, trace_id: str) -> str:
        # Without a project Cloud Logging cannot link the trace; the bare id
        # still lets a reader grep one request across both services.
        if self._project:
            return f"projects/{self._project}/traces/{trace_id}"
        return trace_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
            "service": self._service,
            SOURCE_KEY: {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry[TRACE_KEY] = self.trace_field(format(span_context.trace_id, "032x"))
            entry[SPAN_KEY] = format(span_context.span_id, "016x")
            entry[SAMPLED_KEY] = span_context.trace_flags.sampled
        if (request_id := current_request_id()) is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack_trace"] = self.formatStack(record.stack_info)
        # Fields passed with `extra=` (httpRequest, rpc, ...) travel as keys.
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str)


def configure_logging(
    service: str,
    level: int = logging.INFO,
    *,
    stream: IO[str] | None = None,
    project: str | None = None,
) -> logging.Handler:
    """Send every logger (ours, uvicorn's, grpc's, OpenTelemetry's) through one
    JSON handler on stdout. Returns the handler."""
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(CloudLoggingFormatter(service, project or project_from_env()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own plain-text handlers; route them through ours.
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    return handler
