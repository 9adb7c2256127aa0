"""grpc.aio client interceptors: one CLIENT span, metrics, ``traceparent`` and
``x-request-id`` per call.

The span is a child of whatever span is current where the call is made (the
console's HTTP server span), and its context is what the pipeline receives in
``traceparent``: console HTTP span → console client span → pipeline server span.

The call object the caller gets is grpc's own (not a wrapper), so ``cancel()``,
streaming and error semantics are unchanged; the span ends from the call's
done-callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc.aio import ClientCallDetails, Metadata
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Setter
from opentelemetry.trace import SpanKind, Status, StatusCode

from telemetry.context import REQUEST_ID_HEADER, current_request_id
from telemetry.grpc_server import split_method
from telemetry.instruments import RPC_CLIENT, RequestInstruments
from telemetry.setup import Telemetry

log = logging.getLogger(__name__)

# From the caller's side, these mean the call did not do its job.
_CLIENT_FAULTS = frozenset(set(grpc.StatusCode) - {grpc.StatusCode.OK})


class _MetadataSetter(Setter[list[tuple[str, str]]]):
    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key.lower(), value))


_SETTER = _MetadataSetter()


def client_interceptors(telemetry: Telemetry) -> list[Any]:
    """The interceptors to pass to ``grpc.aio.*_channel(interceptors=...)``.

    One object per call kind: grpc.aio files each interceptor under the first
    of the four interfaces it implements only, so one object implementing all
    four would see unary-unary calls alone.
    """
    shared = _ClientTelemetry(telemetry)
    return [kind(shared) for kind in _KINDS]


class _ClientTelemetry:
    def __init__(self, telemetry: Telemetry) -> None:
        self._tracer = telemetry.tracer("telemetry.grpc_aio_client")
        self._metrics = RequestInstruments.create(
            telemetry.meter("telemetry.grpc_aio_client"), RPC_CLIENT, "RPCs made (client side)"
        )
        # Done-callback tasks, referenced until they finish (asyncio keeps
        # only weak references to tasks).
        self._pending: set[asyncio.Task[None]] = set()

    def _details(self, details: ClientCallDetails, span: trace.Span) -> ClientCallDetails:
        extra: list[tuple[str, str]] = []
        propagate.inject(extra, context=trace.set_span_in_context(span), setter=_SETTER)
        if (request_id := current_request_id()) is not None:
            extra.append((REQUEST_ID_HEADER, request_id))
        existing: Sequence[tuple[str, str | bytes]] = tuple(details.metadata or ())
        return ClientCallDetails(
            details.method,
            details.timeout,
            Metadata(*existing, *extra),
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept(
        self, continuation: Callable[..., Any], details: ClientCallDetails, request: Any
    ) -> Any:
        # grpc passes the method as bytes (grpc/grpc#31092).
        raw = details.method
        service, method = split_method(raw.decode() if isinstance(raw, bytes) else raw)
        span = self._tracer.start_span(
            f"{service}/{method}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        )
        start = time.perf_counter()
        try:
            call = await continuation(self._details(details, span), request)
        except BaseException as exc:
            self._finish(span, service, method, start, grpc.StatusCode.UNKNOWN, str(exc))
            raise

        def done(finished: Any) -> None:
            task = asyncio.get_running_loop().create_task(
                self._finish_call(finished, span, service, method, start)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        try:
            call.add_done_callback(done)
        except NotImplementedError:
            # Another interceptor's wrapper: wait for the outcome here instead.
            await self._finish_call(call, span, service, method, start)
        return call

    async def _finish_call(
        self, call: Any, span: trace.Span, service: str, method: str, start: float
    ) -> None:
        try:
            code = await call.code()
            details = await call.details()
        except Exception as exc:  # a call torn down with its channel
            code, details = grpc.StatusCode.UNKNOWN, str(exc)
        self._finish(span, service, method, start, code, details)

    def _finish(
        self,
        span: trace.Span,
        service: str,
        method: str,
        start: float,
        code: grpc.StatusCode,
        details: str | None,
    ) -> None:
        failed = code in _CLIENT_FAULTS
        self._metrics.record(
            time.perf_counter() - start,
            {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": method,
                "rpc.grpc.status_code": code.name,
            },
            error_type=code.name if failed else None,
        )
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if failed:
            span.set_attribute("error.type", code.name)
            span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}"))
        span.end()


class _Interceptor:
    """The one client interceptor; :data:`_KINDS` makes a class of it per call kind.

    Each class adds one grpc.aio interface as a base and binds that interface's
    method (``intercept_unary_unary``, ...) to :meth:`_intercept`. grpc calls it
    positionally with the request, or the request iterator for client streams.
    """

    def __init__(self, shared: _ClientTelemetry) -> None:
        self._shared = shared

    async def _intercept(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await self._shared.intercept(continuation, client_call_details, request)


def _for_kind(interface: type, method: str) -> type[_Interceptor]:
    name = "_" + interface.__name__.removesuffix("ClientInterceptor")  # _UnaryUnary, ...
    # type(), not a class statement: grpc publishes no types, so a class
    # statement would subclass Any to mypy.
    namespace = {method: _Interceptor._intercept, "__module__": __name__, "__qualname__": name}
    return type(name, (_Interceptor, interface), namespace)


# In the order client_interceptors() returns them.
_KINDS: tuple[type[_Interceptor], ...] = (
    _for_kind(grpc.aio.UnaryUnaryClientInterceptor, "intercept_unary_unary"),
    _for_kind(grpc.aio.UnaryStreamClientInterceptor, "intercept_unary_stream"),
    _for_kind(grpc.aio.StreamUnaryClientInterceptor, "intercept_stream_unary"),
    _for_kind(grpc.aio.StreamStreamClientInterceptor, "intercept_stream_stream"),
)
