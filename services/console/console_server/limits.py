"""Refuse an oversized upload while it arrives, not after it is on disk.

Starlette spools a multipart upload to a temporary file before the route
runs; without this, a 10 GB POST would fill the disk (on Cloud Run: memory)
before the route could say 413. Requests that declare a Content-Length over
the limit are refused before a byte is read; chunked ones when they cross it.
"""

from __future__ import annotations

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
