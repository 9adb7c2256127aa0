"""Bounded work per request: no caller, slow or idle or hostile, can take the
threads that health and reads need, hold a stream open for ever, or turn bad
bytes into an INTERNAL error.

grpc's sync server has one thread pool, and a client-streaming RPC holds a
thread while it waits for the client's next message. ``CallBounds`` (the
outermost interceptor) gives each long method its own pool and admits at most
that pool's size of its calls; one more is RESOURCE_EXHAUSTED at once, before
any thread waits on it. ``intercept_service`` runs on grpc's polling thread, one
call at a time, so counting there never races. The rest of the server
(health, status, reads, refusals) keeps the main pool to itself.

Every method's request deserializer is replaced by one that never fails: a
message that does not parse (garbage bytes, invalid UTF-8 in a string field)
reaches the behaviour as an ``Undecodable`` and is answered INVALID_ARGUMENT,
where grpc itself would answer INTERNAL "Exception deserializing request!".

``Receiver`` reads a client stream with a bound on the wait for each message
and on the whole stream: a reader thread (from a pool the size of the
method's admission) waits on grpc's iterator and hands messages over a
one-slot queue; the handler waits on the queue with a timeout and, when it
expires, aborts the RPC with DEADLINE_EXCEEDED. Ending the RPC wakes the
reader (grpc ends a finished call's iterator), so no thread outlives its call.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from telemetry.grpc_server import Behavior, split_method

log = logging.getLogger(__name__)

# What a message quoted in an error may show of the caller's input.
SHOWN_CHARS = 64
# grpc carries the details in a trailer; its default limit for all metadata is
# 8 KiB (soft) / 16 KiB (hard). 1,000 characters never comes near it.
MAX_DETAILS_CHARS = 1000


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """A caller's value quoted in a message: never more than ``limit`` characters of it."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def bounded(message: str, limit: int = MAX_DETAILS_CHARS) -> str:
    """A status message cut to ``limit`` characters."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


class Undecodable:
    """A request message that did not parse, in place of the message."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name, self.reason = type_name, reason

    @property
    def message(self) -> str:
        return bounded(f"the request is not a valid {self.type_name} message: {self.reason}", 300)


class BadRequestMessage(Exception):
    """A streamed request message that did not parse; CallBounds answers INVALID_ARGUMENT."""


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError) as exc:
            owner = getattr(deserializer, "__self__", None)
            name = getattr(owner, "DESCRIPTOR", None)
            type_name = getattr(name, "full_name", "request")
            reason = str(exc).rpartition(": ")[2] or type(exc).__name__
            return Undecodable(type_name, reason)

    return deserialize


def _checked_stream(messages: Iterator[Any]) -> Iterator[Any]:
    for message in messages:
        if isinstance(message, Undecodable):
            raise BadRequestMessage(message.message)
        yield message


@dataclass
class MethodLimit:
    """At most ``calls`` of one method at once, on a pool of that many threads."""

    calls: int
    why: str
    pool: futures.ThreadPoolExecutor | None = None
    active: int = 0

    def __post_init__(self) -> None:
        self.pool = futures.ThreadPoolExecutor(
            max_workers=self.calls, thread_name_prefix=f"rpc-{self.why.split()[0]}"
        )


class CallBounds(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc's stubs are partial
    def __init__(self, limits: dict[str, MethodLimit], *, receive_threads: int) -> None:
        """``limits`` by full method name, "/pipeline.v1.PipelineService/RunPipeline";
        ``receive_pool`` is for the Receivers of the streams admitted."""
        self._limits = limits
        self._lock = threading.Lock()
        # Told of each call refused here (method name): telemetry counts refusals,
        # and a refused call never reaches the interceptors inside this one.
        self.on_refused: Callable[[str], None] | None = None
        self.receive_pool = futures.ThreadPoolExecutor(
            max_workers=receive_threads, thread_name_prefix="rpc-receive"
        )

    def shutdown(self) -> None:
        self.receive_pool.shutdown(wait=False, cancel_futures=True)
        for limit in self._limits.values():
            assert limit.pool is not None
            limit.pool.shutdown(wait=False, cancel_futures=True)

    def active(self, method: str) -> int:
        return self._limits[method].active

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        full = handler_call_details.method
        limit = self._limits.get(full)
        admitted = True
        if limit is not None:
            with self._lock:
                admitted = limit.active < limit.calls
                if admitted:
                    limit.active += 1
        if not admitted:
            assert limit is not None
            _, method = split_method(full)
            log.warning("refused %s: %d already in progress", method, limit.calls)
            if self.on_refused is not None:
                self.on_refused(method)
            message = (
                f"{limit.calls} {method} calls already in progress on this instance "
                f"(limit {limit.calls}: {limit.why}); retry later"
            )

            def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

            return _rebuild(handler, refuse, None)

        def release() -> None:
            if limit is not None:
                with self._lock:
                    limit.active -= 1

        def bounded_behavior(behavior: Behavior, streaming_in: bool) -> Behavior:
            def run(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    if isinstance(request, Undecodable):
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                    if streaming_in:
                        request = _checked_stream(request)
                    return behavior(request, context)
                except BadRequestMessage as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                finally:
                    release()

            def run_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    if isinstance(request, Undecodable):
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                    if streaming_in:
                        request = _checked_stream(request)
                    yield from behavior(request, context)
                except BadRequestMessage as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                finally:
                    release()

            return run_stream if handler.response_streaming else run

        return _rebuild(
            handler,
            bounded_behavior(_behavior(handler), bool(handler.request_streaming)),
            None if limit is None else limit.pool,
        )


def _behavior(handler: grpc.RpcMethodHandler) -> Behavior:
    found: Behavior = (
        handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
    )
    return found


def _rebuild(
    handler: grpc.RpcMethodHandler,
    behavior: Behavior,
    pool: futures.ThreadPoolExecutor | None,
) -> grpc.RpcMethodHandler:
    """``handler`` with ``behavior``, a deserializer that never fails, and
    (grpc's per-behaviour hook) the pool it runs on."""
    if pool is not None:
        vars(behavior)["experimental_thread_pool"] = pool  # a plain function's attribute
    if handler.request_streaming and handler.response_streaming:
        factory = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        factory = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        factory = grpc.unary_stream_rpc_method_handler
    else:
        factory = grpc.unary_unary_rpc_method_handler
    return factory(
        behavior,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


# --- reading a client stream with time bounds -----------------------------------


class StreamTimeout(Exception):
    """The caller was idle too long, or its whole stream took too long."""


_END = object()


class Receiver[T]:
    """The messages of a client stream, each awaited at most ``idle_s`` and all
    within ``total_s`` of the first wait; see the module docstring."""

    def __init__(
        self,
        messages: Iterator[T],
        pool: futures.Executor,
        *,
        idle_s: float,
        total_s: float,
    ) -> None:
        self._messages = messages
        self._queue: queue.Queue[tuple[object, Any]] = queue.Queue(maxsize=1)
        self._closed = threading.Event()
        self._idle_s, self._total_s = idle_s, total_s
        self._deadline = time.monotonic() + total_s
        pool.submit(self._pump)

    def _pump(self) -> None:
        try:
            for message in self._messages:
                if not self._offer(message):
                    return
            self._offer(_END)
        except BaseException as exc:  # handed to the handler thread, which raises it
            self._offer(exc)

    def _offer(self, item: object) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put((item, None), timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Receiver[T]:
        return self

    def __next__(self) -> T:
        left = self._deadline - time.monotonic()
        wait = min(self._idle_s, left)
        if wait <= 0:
            raise StreamTimeout(self._total_message())
        try:
            item, _ = self._queue.get(timeout=wait)
        except queue.Empty:
            if wait < self._idle_s:
                raise StreamTimeout(self._total_message()) from None
            raise StreamTimeout(
                f"no message for {self._idle_s:g} s (PIPELINE_STREAM_IDLE_SECONDS): "
                "send the options, then the zip's chunks without pauses"
            ) from None
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def _total_message(self) -> str:
        return (
            f"the upload took longer than {self._total_s:g} s "
            "(PIPELINE_UPLOAD_SECONDS); send it faster or split the work"
        )

    def close(self) -> None:
        """Stop handing messages over; the reader ends with the call."""
        self._closed.set()
