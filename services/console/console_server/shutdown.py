"""Shutting down with an answer for every request in flight.

On SIGTERM uvicorn stops accepting, lets in-flight requests run for its
graceful-shutdown timeout, then cancels them; a request cancelled there gets
uvicorn's own ``500 text/plain "Internal Server Error"``. So the drain starts
a little earlier: each request still running then has its task cancelled
(which cancels the gRPC call it awaits, so the pipeline learns its caller is
gone) and, unless its answer has started, gets the console's JSON 503
``shutting_down`` with ``Connection: close``. A request whose answer has
started (a download streaming) is left to finish within the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

log = logging.getLogger(__name__)

SHUTTING_DOWN_MESSAGE = "the console is shutting down; retry the request"


class Drain:
    """Set once in-flight requests must give up."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def start(self) -> None:
        if not self._event.is_set():
            log.info("draining: requests still in flight are answered 503 shutting_down")
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


async def shutting_down(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(503, "shutting_down", SHUTTING_DOWN_MESSAGE)
    response.headers["connection"] = "close"
    response.headers["retry-after"] = "1"
    await response(scope, receive, send)


class DrainMiddleware:
    def __init__(self, app: ASGIApp, *, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.is_set():
            await shutting_down(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # The request runs in its own task (a copy of this context: request
        # id, trace), so the drain can cancel it and still answer.
        request = asyncio.ensure_future(self.app(scope, receive, tracked_send))
        drained = asyncio.ensure_future(self.drain.wait())
        try:
            await asyncio.wait({request, drained}, return_when=asyncio.FIRST_COMPLETED)
            if not request.done() and not started:
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
                if not started:  # still: the route may have answered as it ended
                    await shutting_down(scope, receive, send)
                return
            await request
        finally:
            drained.cancel()
            if not request.done():  # we were cancelled (uvicorn's own deadline)
                request.cancel()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, starting ``drain`` ``drain_after`` seconds into its
    graceful shutdown (keep it under ``timeout_graceful_shutdown``)."""

    def __init__(self, config: uvicorn.Config, *, drain: Drain, drain_after: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_after = drain_after

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        timer = asyncio.get_running_loop().call_later(self.drain_after, self.drain.start)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()
