"""One HTTP client for a deployed console's JSON API: the smoke check and the data
canary both talk to it, with the same rules.

- A Google ID token travels only over TLS: the URL must be ``https://``, or plain
  ``http://`` on loopback (the tests' real console processes).
- Each request carries ``Authorization: Bearer <token>`` when a token is given (Cloud Run
  refuses unauthenticated callers on every service here) and a User-Agent naming the
  caller, so the console's logs say which check sent it.
- An HTTP error status is an answer (:class:`Response`), not an exception; a transport
  failure (refused, DNS, timeout) raises ``urllib.error.URLError`` / ``OSError`` for the
  caller to word.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def error_text(self) -> str:
        """The console's ``{"error": {"code", "message"}}``, or the start of the body."""
        try:
            error = self.json()["error"]
            return f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            return self.body[:200].decode("utf-8", "replace").strip() or "(empty body)"


class ConsoleClient:
    def __init__(self, base_url: str, token: str | None, timeout: float, user_agent: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        loopback = parsed.hostname in LOOPBACK
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise ValueError(f"{base_url}: the console URL must be https:// (http:// on loopback)")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent

    def request(
        self, method: str, path: str, data: bytes | None = None, content_type: str = ""
    ) -> Response:
        request = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310 (scheme checked above)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", self.user_agent)
        if content_type:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                return Response(int(reply.status), reply.read())
        except urllib.error.HTTPError as exc:
            return Response(int(exc.code), exc.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)
