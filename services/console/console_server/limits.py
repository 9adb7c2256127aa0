"""Refuse an oversized upload while it arrives, not after it is on disk, and
a body that takes too long to arrive.

Starlette spools a multipart upload to a temporary file before the route
runs; without this, a 10 GB POST would fill the disk (on Cloud Run: memory)
before the route could say 413. Requests that declare a Content-Length over
the limit are refused before a byte is read; chunked ones when they cross it.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

# Room for the multipart boundaries, part headers and small form fields
# around the file itself, whose exact size the route checks.
MULTIPART_SLACK_BYTES = 64 * 1024


class UploadLimitMiddleware:
    def __init__(self, app: ASGIApp, *, path: str, max_upload_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + MULTIPART_SLACK_BYTES

    def _message(self) -> str:
        return f"upload is larger than the limit of {self.max_upload_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                response = error_response(413, "upload_too_large", self._message())
                await response(scope, receive, send)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the form parser; FastAPI re-raises
                    # HTTPExceptions from body parsing, and the app's handler
                    # turns it into the JSON error.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)


# --- request-body time -----------------------------------------------------------

# uvicorn bounds the time between requests (timeout_keep_alive), not the time
# a request's body takes: a client that sends headers declaring a body and
# then nothing held a request open for as long as it liked.


class RequestBodyTimeout(HTTPException):
    """The body stopped arriving, or did not all arrive in time: 408, and the
    connection is closed (what is left of the body would be read as the next
    request otherwise)."""

    def __init__(self, message: str) -> None:
        super().__init__(408, message, headers={"Connection": "close"})


class BodyTimeoutMiddleware:
    """Bound every ``receive()`` of a request body by ``idle_seconds`` and the
    whole body by ``total_seconds`` from the request's start.

    Once the body is complete, ``receive()`` passes through unbounded: what
    is left is waiting for the client to disconnect (a streamed download does
    that for as long as it streams)."""

    def __init__(self, app: ASGIApp, *, idle_seconds: float, total_seconds: float) -> None:
        self.app = app
        self.idle_seconds = idle_seconds
        self.total_seconds = total_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_seconds
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            left = deadline - loop.time()
            idle = self.idle_seconds < left
            try:
                async with asyncio.timeout(max(0.0, min(self.idle_seconds, left))):
                    message = await receive()
            except TimeoutError:
                raise RequestBodyTimeout(
                    f"no request body bytes for {self.idle_seconds:g} s"
                    if idle
                    else f"the request body did not arrive within {self.total_seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except RequestBodyTimeout as exc:
            # Raised where no exception handler turned it into the answer
            # (the app's handler does, inside FastAPI's body parsing).
            if started:
                raise
            response = error_response(408, "request_body_timeout", str(exc.detail))
            response.headers["connection"] = "close"
            await response(scope, receive, send)
