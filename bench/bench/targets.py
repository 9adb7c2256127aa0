"""Where the bench sends traffic, and how it authenticates there.

One notation for both the locustfile and the runner:

- a gRPC target is `host:port` (plaintext, e.g. `127.0.0.1:50051`) or a Cloud
  Run URL `https://pipeline-abc-ew.a.run.app` (TLS on port 443, and the URL is
  also the ID token's audience, which is what Cloud Run checks);
- a console target is a base URL, `http://127.0.0.1:8080` or
  `https://console-abc-ew.a.run.app`.

ID tokens come from google-auth (`id_token.fetch_id_token`: a service account
key in GOOGLE_APPLICATION_CREDENTIALS, or the metadata server on GCP). A user
account cannot mint tokens for an arbitrary audience there, so `BENCH_ID_TOKEN`
(e.g. `$(gcloud auth print-identity-token)`) is used as-is when set.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc

# Google ID tokens live one hour; refresh well before that, so a long test
# never sends an expired one.
TOKEN_REFRESH_MARGIN_S = 300.0
TOKEN_FALLBACK_LIFETIME_S = 3000.0

# Runs return a Run with findings; the pipeline caps its messages at 8 MiB.
GRPC_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
]


class TargetError(ValueError):
    """A target the bench cannot use (malformed, or remote without --allow-remote)."""


@dataclass(frozen=True)
class GrpcTarget:
    addr: str  # host:port, what grpc dials
    tls: bool
    audience: str | None  # ID token audience; None = no token

    @property
    def host(self) -> str:
        return self.addr.rsplit(":", 1)[0].strip("[]")


def parse_grpc_target(
    text: str, tls: bool | None = None, audience: str | None = None
) -> GrpcTarget:
    """`host:port` or `https://host[:port]`; explicit `tls`/`audience` override."""
    text = text.strip()
    if "://" in text:
        url = urlsplit(text)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise TargetError(f"{text!r}: expected host:port or https://host")
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        base = f"{url.scheme}://{url.netloc}"
        return GrpcTarget(
            f"{host}:{port}",
            secure if tls is None else tls,
            (audience or base) if secure else audience,
        )
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise TargetError(f"{text!r}: expected host:port or https://host")
    return GrpcTarget(text, bool(tls), audience or None)


def console_audience(url: str, audience: str | None = None) -> str | None:
    """The ID token audience for a console URL: the https origin, unless given."""
    if audience:
        return audience
    parts = urlsplit(url)
    return f"https://{parts.netloc}" if parts.scheme == "https" else None


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(what: str, host: str, allow_remote: bool) -> None:
    """Benchmarks run here talk to loopback only (ARCHITECTURE.md, network rule)."""
    if not allow_remote and not is_loopback(host):
        raise TargetError(
            f"{what} {host!r} is not loopback; pass --allow-remote to bench a deployed environment"
        )


# --- ID tokens --------------------------------------------------------------


def _jwt_expiry(token: str) -> float | None:
    """`exp` of a JWT, read without verifying it (only to know when to refresh)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, ValueError, TypeError, binascii.Error):
        return None


def _fetch_google_id_token(audience: str) -> str:
    # Imported here: only runs against Cloud Run need google-auth's transport.
    import google.auth.transport.requests
    from google.oauth2 import id_token

    # google-auth publishes no types for this function.
    fetch: Any = id_token.fetch_id_token
    return str(fetch(google.auth.transport.requests.Request(), audience))


class IdTokens:
    """A cached Google ID token for one audience, refreshed before it expires."""

    def __init__(
        self,
        audience: str,
        fetch: Callable[[str], str] = _fetch_google_id_token,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience
        self._fetch = fetch
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now >= self._expires - TOKEN_REFRESH_MARGIN_S:
            fixed = os.environ.get("BENCH_ID_TOKEN")
            self._token = fixed or self._fetch(self.audience)
            self._expires = _jwt_expiry(self._token) or now + TOKEN_FALLBACK_LIFETIME_S
        return self._token

    def header(self) -> str:
        return f"Bearer {self.token()}"


# --- gRPC channels ----------------------------------------------------------


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class AuthInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds `authorization: Bearer <ID token>` to every call.

    Metadata rather than call credentials: a metadata plugin runs on a gRPC
    thread, which under gevent would block the hub; this runs in the caller.
    """

    def __init__(self, tokens: IdTokens) -> None:
        self.tokens = tokens

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [*(details.metadata or ()), ("authorization", self.tokens.header())]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, details: Any, request_iterator: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), request_iterator)


def open_channel(target: GrpcTarget) -> grpc.Channel:
    """A plain channel to the target: TLS with the system roots, or plaintext."""
    if target.tls:
        return grpc.secure_channel(
            target.addr, grpc.ssl_channel_credentials(), options=GRPC_CHANNEL_OPTIONS
        )
    return grpc.insecure_channel(target.addr, options=GRPC_CHANNEL_OPTIONS)


def with_auth(channel: grpc.Channel, target: GrpcTarget) -> grpc.Channel:
    """`channel`, with an ID token on every call when the target has an audience."""
    if target.audience is None:
        return channel
    return grpc.intercept_channel(channel, AuthInterceptor(IdTokens(target.audience)))
