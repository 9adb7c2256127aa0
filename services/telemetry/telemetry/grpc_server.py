"""A gRPC (sync) server interceptor: one span, request id and metrics per RPC.

The span continues the caller's trace from the W3C ``traceparent`` in the call
metadata; ``x-request-id`` (or a fresh id) is put in the log context for the
duration of the handler; the duration (``rpc.server.duration``, seconds) is recorded per service,
method and status, with ``error.type`` on server faults. Calls refused by
policy (RESOURCE_EXHAUSTED, UNAUTHENTICATED, PERMISSION_DENIED) are also
counted in ``rpc.server.refused`` by reason; the reason comes from the
service's ``refusal_reasons`` (a phrase of the status message → a short
name), else the status name. A log line is written for a call that failed or
was slow only (:mod:`telemetry.access_log`); every call keeps its span.

Everything happens inside the wrapped handler, not in ``intercept_service``:
grpc runs ``intercept_service`` on its polling thread, while the handler runs
on the worker thread whose contextvars the logs read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from contextvars import Token
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from telemetry.access_log import slow_call_seconds, worth_a_line
from telemetry.context import (
    REQUEST_ID_HEADER,
    reset_request_id,
    sanitise_request_id,
    set_request_id,
)
from telemetry.instruments import RPC_REFUSED, RPC_SERVER, RequestInstruments, refused_counter
from telemetry.setup import Telemetry

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.ServicerContext], Any]
# Services that get no span or log line: probes and tooling, called often.
QUIET_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
# Server-side span errors per the RPC semantic conventions: the caller's
# mistakes (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED ...) are not ours.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# Policy refusals: the server turned the call away before doing its work.
REFUSALS = frozenset(
    {
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


class _MetadataGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _MetadataGetter()


def metadata_dict(context: grpc.ServicerContext) -> dict[str, str]:
    """The call's text metadata (binary ``-bin`` entries left out)."""
    return {
        key.lower(): value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str)
    }


def split_method(full_method: str) -> tuple[str, str]:
    """ "/pipeline.v1.PipelineService/GetStatus" → ("pipeline.v1.PipelineService", "GetStatus")."""
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


def wrap_handler(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior, bool], Behavior]
) -> grpc.RpcMethodHandler:
    """The same handler with its behavior replaced by ``wrap(behavior, response_streaming)``."""
    if handler.request_streaming and handler.response_streaming:
        factory, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    elif handler.request_streaming:
        factory, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    elif handler.response_streaming:
        factory, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    else:
        factory, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    return factory(
        wrap(behavior, bool(handler.response_streaming)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ServerTelemetryInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        telemetry: Telemetry,
        *,
        log_calls: bool = True,
        refusal_reasons: dict[str, str] | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        """`slow_seconds`: a successful call this slow gets a log line (default:
        ``ACCESS_LOG_SLOW_MS``); a failed one always does, unless `log_calls` is off."""
        self._tracer = telemetry.tracer("telemetry.grpc_server")
        meter = telemetry.meter("telemetry.grpc_server")
        self._metrics = RequestInstruments.create(meter, RPC_SERVER, "RPCs served")
        self._refused = refused_counter(meter, RPC_REFUSED)
        self._reasons = dict(refusal_reasons or {})
        self._log_calls = log_calls
        self._slow_seconds = slow_call_seconds() if slow_seconds is None else slow_seconds

    def refused(self, method: str, code: grpc.StatusCode, reason: str) -> None:
        """Count a refusal made outside this interceptor (an outer one, e.g. call bounds)."""
        self._refused.add(
            1, {"rpc.method": method, "rpc.grpc.status_code": code.name, "reason": reason}
        )

    def reason(self, code: grpc.StatusCode, details: str | None) -> str:
        for phrase, reason in self._reasons.items():
            if details and phrase in details:
                return reason
        return str(code.name).lower()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        service, method = split_method(handler_call_details.method)
        quiet = service in QUIET_SERVICES

        def wrap(behavior: Behavior, response_streaming: bool) -> Behavior:
            if response_streaming:

                def observed_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    with ExitStack() as stack:
                        call = stack.enter_context(_Call(self, service, method, quiet, context))
                        try:
                            yield from behavior(request, context)
                        except GeneratorExit:  # the client went away mid-stream
                            call.cancelled = True
                            raise

                return observed_stream

            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                with _Call(self, service, method, quiet, context):
                    return behavior(request, context)

            return observed

        return wrap_handler(handler, wrap)


class _Call:
    """The span, request-id scope and measurement around one handler run."""

    def __init__(
        self,
        owner: ServerTelemetryInterceptor,
        service: str,
        method: str,
        quiet: bool,
        context: grpc.ServicerContext,
    ) -> None:
        self._owner = owner
        self._service = service
        self._method = method
        self._quiet = quiet
        self._context = context
        self._start = 0.0
        self._span: trace.Span = trace.INVALID_SPAN
        # Tokens rather than an ExitStack of context managers: this runs on every
        # call, and the generator-based managers cost more than the work (ADR 0026).
        self._request_token: Token[str | None] | None = None
        self._span_token: Token[otel_context.Context] | None = None
        self.cancelled = False

    def __enter__(self) -> _Call:
        self._start = time.perf_counter()
        metadata = metadata_dict(self._context)
        request_id = sanitise_request_id(metadata.get(REQUEST_ID_HEADER))
        self._request_token = set_request_id(request_id)
        if not self._quiet:
            parent = propagate.extract(metadata, getter=_GETTER)
            self._span = self._owner._tracer.start_span(
                f"{self._service}/{self._method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.service": self._service,
                    "rpc.method": self._method,
                    "request.id": request_id,
                },
                record_exception=False,
                set_status_on_exception=False,
            )
            self._span_token = otel_context.attach(trace.set_span_in_context(self._span, parent))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        try:
            code = self._code(exc)
            elapsed = time.perf_counter() - self._start
            elapsed_ms = elapsed * 1000
            attributes = {
                "rpc.system": "grpc",
                "rpc.service": self._service,
                "rpc.method": self._method,
                "rpc.grpc.status_code": code.name,
            }
            fault = code in _SERVER_FAULTS
            self._owner._metrics.record(
                elapsed, attributes, error_type=code.name if fault else None
            )
            if code in REFUSALS:
                details = _context_details(self._context)
                self._owner.refused(self._method, code, self._owner.reason(code, details))
            if self._quiet:
                return
            self._span.set_attribute("rpc.grpc.status_code", code.value[0])
            if fault:
                self._span.set_attribute("error.type", code.name)
                self._span.set_status(Status(StatusCode.ERROR, code.name))
                if exc is not None and not _is_abort(self._context):
                    self._span.record_exception(exc)
            if self._owner._log_calls and worth_a_line(
                code is not grpc.StatusCode.OK, elapsed, self._owner._slow_seconds
            ):
                log.log(
                    logging.WARNING if fault else logging.INFO,
                    "%s %s in %.1f ms",
                    self._method,
                    code.name,
                    elapsed_ms,
                    extra={"rpc": {"service": self._service, "method": self._method,
                                   "code": code.name, "duration_ms": round(elapsed_ms, 3)}},
                )  # fmt: skip
        finally:
            if self._span_token is not None:
                self._span.end()
                otel_context.detach(self._span_token)
            if self._request_token is not None:
                reset_request_id(self._request_token)

    def _code(self, exc: BaseException | None) -> grpc.StatusCode:
        if self.cancelled:
            return grpc.StatusCode.CANCELLED
        code = _context_code(self._context)
        if code is not None:
            return code
        return grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN


def _context_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    # ServicerContext.code() holds what abort() / set_code() set.
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else None


def _context_details(context: grpc.ServicerContext) -> str | None:
    details = getattr(context, "details", None)
    value = details() if callable(details) else None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _is_abort(context: grpc.ServicerContext) -> bool:
    return _context_code(context) is not None
