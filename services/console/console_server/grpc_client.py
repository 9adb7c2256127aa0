"""The console's one channel to the pipeline, and the calls made over it.

One ``grpc.aio`` channel per process, opened by the app's lifespan and reused
by every request: a channel multiplexes calls over one HTTP/2 connection and
reconnects by itself, so per-request channels would only add handshakes (TLS
to Cloud Run costs a round trip or two per handshake).

Every call gets a deadline; UNAVAILABLE is retried by gRPC itself through the
service config (a pipeline instance starting or draining on Cloud Run answers
UNAVAILABLE for a moment). With ``PIPELINE_AUDIENCE`` set every call carries a
Google ID token for that audience, in two headers (ADR 0018):
``x-serverless-authorization``, which Cloud Run IAM checks (and strips the
signature from), and ``authorization``, which Cloud Run passes through for the
pipeline to verify itself.

Every call also carries ``traceparent`` (the console's client span, a child of
the HTTP request's span) and ``x-request-id``, added by the telemetry
interceptor on the channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from telemetry import Telemetry
from telemetry.grpc_aio_client import client_interceptors

from .errors import ConsoleError
from .settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = "pipeline.v1.PipelineService"
HEALTH_SERVICE_NAME = "grpc.health.v1.Health"

# Chunk size of uploads sent to RunPipeline: big enough that per-message
# overhead is noise, small enough that gRPC's retry buffer (256 KiB per call
# by default) still holds the options message and the first chunk.
UPLOAD_CHUNK_BYTES = 256 * 1024
# The pipeline sends 1 MiB download chunks and caps its messages at 8 MiB; a
# Run with many findings is the biggest message we receive.
MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_SEND_MESSAGE_BYTES = 4 * 1024 * 1024

# Retries for UNAVAILABLE only: the call never reached a pipeline that could
# act on it, so repeating it is safe. gRPC retries a call only until the first
# response bytes arrive, and stops replaying a client stream once its messages
# no longer fit the retry buffer, so a large upload is never half-resent.
_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_METHOD_CONFIG = [
    {
        "name": [{"service": SERVICE_NAME}, {"service": HEALTH_SERVICE_NAME}],
        "retryPolicy": _RETRY_POLICY,
    }
]
SERVICE_CONFIG = json.dumps({"methodConfig": _METHOD_CONFIG})

# Several pipeline addresses (plaintext, this machine): one channel with a
# subchannel per address and round_robin over the READY ones. A refused or
# reset connection takes its subchannel out of the rotation at once.
# healthCheckConfig turns on gRPC's client-side health checking: each
# subchannel watches its backend's grpc.health.v1 (Watch on the server's
# overall status, "", which the pipeline sets with its own service's), and
# only SERVING backends get calls. So a pipeline that says NOT_SERVING
# (draining, or its store down) gets no traffic, and a call fails UNAVAILABLE
# only when no backend is SERVING. The console's /readyz therefore means "at
# least one pipeline backend is SERVING". The Watch streams keep a call in
# flight on every backend, so keepalive also pings each of them.
BALANCED_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": _METHOD_CONFIG,
    }
)


def service_config(settings: Settings) -> str:
    """The channel's service config: round_robin when PIPELINE_ADDR lists several."""
    return BALANCED_SERVICE_CONFIG if len(settings.pipeline_addrs) > 1 else SERVICE_CONFIG


# Keepalive, chosen for Cloud Run on both ends:
# - ping every 30 s while a call is in flight, so a dead connection under a
#   long RunPipeline (the pipeline sends nothing while it computes) fails in
#   ~40 s instead of at the 10-minute deadline. 30 s is what Google's own
#   client libraries use towards Google front ends; grpc servers refuse pings
#   more often than every 5 minutes by default (GOAWAY "too_many_pings"),
#   so the pipeline server explicitly allows one every 10 s.
# - no pings on an idle channel: on Cloud Run the console's CPU is throttled
#   between requests, so idle pings would fire late and only earn strikes.
# - max_pings_without_data=0: keep pinging during a silent call (the default,
#   2, stops pinging exactly when a long run needs it).
KEEPALIVE_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


def channel_options(settings: Settings) -> list[tuple[str, Any]]:
    return [
        ("grpc.service_config", service_config(settings)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
        # Reconnect quickly after a pipeline restart (default max is 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        ("grpc.primary_user_agent", f"pipeline-console/{settings.image_commit}"),
        *KEEPALIVE_OPTIONS,
    ]


def open_channel(settings: Settings, telemetry: Telemetry | None = None) -> grpc.aio.Channel:
    """The channel to PIPELINE_ADDR: TLS with the system roots, or plaintext.

    Several addresses (plaintext only, see Settings) make one channel whose
    target lists them all (``ipv4:a:1,b:2``), balanced by round_robin.
    With TLS the target's host name is both the SNI and the name the
    certificate must match, and (with the port) the :authority; Cloud Run
    routes on it, so the address must be the service's full host name.
    """
    options = channel_options(settings)
    interceptors = client_interceptors(telemetry or Telemetry.noop())
    if settings.pipeline_tls:
        return grpc.aio.secure_channel(
            settings.pipeline_target,
            grpc.ssl_channel_credentials(),
            options=options,
            interceptors=interceptors,
        )
    return grpc.aio.insecure_channel(
        settings.pipeline_target, options=options, interceptors=interceptors
    )


# --- ID tokens --------------------------------------------------------------

# Refresh this long before the token expires (Google ID tokens live 1 h) ...
REFRESH_MARGIN_SECONDS = 300.0
# ... but never more than this fraction of the token's lifetime, so a
# short-lived token is still reused for most of its life.
REFRESH_MARGIN_FRACTION = 0.25


def _fetch_id_token(audience: str) -> str:
    # Imported here: google.auth reads GCE_METADATA_HOST/IP at import time,
    # and a console without PIPELINE_AUDIENCE never needs it.
    import google.auth.transport.requests
    import google.oauth2.id_token

    token: str = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
        google.auth.transport.requests.Request(), audience
    )
    return token


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: we only need to know when it expires
    (the pipeline's front end verifies it)."""
    import google.auth.jwt

    claims: dict[str, Any] = google.auth.jwt.decode(token, verify=False)  # type: ignore[no-untyped-call]
    return claims


@dataclass
class _CachedToken:
    value: str
    refresh_at: float  # time.time() after which a new token is fetched


class IdTokenSource:
    """Google ID tokens for one audience, cached and refreshed before expiry.

    The fetch (an HTTP call to the metadata server) runs in a thread so it
    never blocks the event loop; a lock makes concurrent requests share one
    fetch instead of stampeding the metadata server.
    """

    def __init__(self, audience: str, fetch: Callable[[str], str] = _fetch_id_token) -> None:
        self.audience = audience
        self._fetch = fetch
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _fresh(self) -> str | None:
        cached = self._cached
        if cached is not None and time.time() < cached.refresh_at:
            return cached.value
        return None

    async def token(self) -> str:
        if (value := self._fresh()) is not None:
            return value
        async with self._lock:
            if (value := self._fresh()) is not None:  # another request fetched it
                return value
            try:
                value = await asyncio.to_thread(self._fetch, self.audience)
            except Exception as exc:
                # google.auth raises DefaultCredentialsError / RefreshError /
                # TransportError; all mean "no token", which is our outage.
                log.warning("could not fetch an ID token for %s: %s", self.audience, exc)
                # The exception's text stays in the log (it can name hosts
                # and files); the client gets what to check.
                raise ConsoleError(
                    503,
                    "pipeline_credentials_unavailable",
                    f"could not obtain a Google ID token for {self.audience}; "
                    "see the console's logs",
                ) from exc
            self.fetches += 1
            self._cached = _CachedToken(value, self._refresh_at(value))
            return value

    @staticmethod
    def _refresh_at(token: str) -> float:
        now = time.time()
        try:
            claims = token_claims(token)
            exp = float(claims["exp"])
            iat = float(claims.get("iat", now))
        except (ValueError, KeyError, TypeError):
            # Not a JWT we can read: use it for this call only.
            return now
        margin = min(REFRESH_MARGIN_SECONDS, (exp - iat) * REFRESH_MARGIN_FRACTION)
        return exp - margin


# --- the client -----------------------------------------------------------------


def _lost_status(exc: grpc.aio.AioRpcError) -> bool:
    """The status grpc.aio reports in place of the server's (grpc/grpc#36066)."""
    return bool(
        exc.code() == grpc.StatusCode.INTERNAL and exc.details() == "Internal error from Core"
    )


def _enum_name(value: int) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(value)  # type: ignore[no-any-return]


class PipelineClient:
    """Typed calls to the pipeline, each with a deadline and credentials."""

    def __init__(
        self,
        settings: Settings,
        channel: grpc.aio.Channel | None = None,
        tokens: IdTokenSource | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._settings = settings
        self._channel = channel if channel is not None else open_channel(settings, telemetry)
        self._stub = pb_grpc.PipelineServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        if tokens is None and settings.pipeline_audience is not None:
            tokens = IdTokenSource(settings.pipeline_audience)
        self.tokens = tokens

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def connection_failing(self) -> bool:
        """True while the channel cannot connect (refused, unresolvable, TLS)."""
        state = self._channel.get_state(try_to_connect=False)
        return bool(state == grpc.ChannelConnectivity.TRANSIENT_FAILURE)

    async def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self.tokens is None:
            return ()
        bearer = f"Bearer {await self.tokens.token()}"
        # The same token twice: Cloud Run IAM uses (and strips) the first, the
        # pipeline verifies the second (ADR 0018).
        return (("x-serverless-authorization", bearer), ("authorization", bearer))

    @property
    def _timeout(self) -> float:
        return self._settings.console_call_timeout_seconds

    async def _unary[Req, Resp](self, method: Callable[..., Awaitable[Resp]], request: Req) -> Resp:
        return await method(request, timeout=self._timeout, metadata=await self._metadata())

    async def get_status(self) -> pb.GetStatusResponse:
        return await self._unary(self._stub.GetStatus, pb.GetStatusRequest())

    async def list_steps(self) -> pb.ListStepsResponse:
        return await self._unary(self._stub.ListSteps, pb.ListStepsRequest())

    async def get_dag(self) -> pb.GetDagResponse:
        return await self._unary(self._stub.GetDag, pb.GetDagRequest())

    async def get_run(self, run_id: str) -> pb.Run:
        return await self._unary(self._stub.GetRun, pb.GetRunRequest(run_id=run_id))

    async def list_runs(self, page_size: int, page_token: str) -> pb.ListRunsResponse:
        request = pb.ListRunsRequest(page_size=page_size, page_token=page_token)
        return await self._unary(self._stub.ListRuns, request)

    async def run_pipeline(self, options: pb.RunOptions, chunks: AsyncIterator[bytes]) -> pb.Run:
        """Stream options, then the feed chunk by chunk; returns the finished run."""

        async def requests() -> AsyncIterator[pb.RunPipelineRequest]:
            yield pb.RunPipelineRequest(options=options)
            async for chunk in chunks:
                yield pb.RunPipelineRequest(chunk=chunk)

        try:
            run: pb.Run = await self._stub.RunPipeline(
                requests(),
                timeout=self._settings.console_run_timeout_seconds,
                metadata=await self._metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            if not _lost_status(exc):
                raise
            raise await self._why_upload_ended(options) or exc from None
        return run

    async def _why_upload_ended(self, options: pb.RunOptions) -> grpc.aio.AioRpcError | None:
        """Ask again, with the options alone, why the pipeline ended an upload.

        grpc.aio loses the server's status when the server ends a client
        stream while a write is in flight (grpc/grpc#36066): the caller sees
        INTERNAL "Internal error from Core" instead of, say, "upload too
        large". The pipeline refuses on the options message alone (declared
        size over its cap, unknown steps, no free run slot), so repeating
        just that message gets the same answer without the race. Returns
        None when the options were fine (the pipeline then answers that no
        feed arrived), leaving the original error to be reported.
        """

        async def options_only() -> AsyncIterator[pb.RunPipelineRequest]:
            yield pb.RunPipelineRequest(options=options)

        try:
            await self._stub.RunPipeline(
                options_only(),
                timeout=self._settings.console_call_timeout_seconds,
                metadata=await self._metadata(),
            )
        except grpc.aio.AioRpcError as probe:
            if probe.code() == grpc.StatusCode.INVALID_ARGUMENT and "no feed" in (
                probe.details() or ""
            ):
                return None
            log.info("upload ended early by the pipeline: %s", probe.details())
            return probe
        return None

    async def download_output(self, run_id: str) -> AsyncGenerator[bytes]:
        """The chunks of a run's output zip; errors surface on the first read."""
        call = self._stub.DownloadOutput(
            pb.DownloadOutputRequest(run_id=run_id),
            timeout=self._settings.console_run_timeout_seconds,
            metadata=await self._metadata(),
        )
        try:
            async for response in call:
                yield response.chunk
        finally:
            # The HTTP client went away (or we are done): stop the server
            # from streaming into a closed call.
            call.cancel()

    async def health(self) -> str:
        """The pipeline's serving status name (``SERVING``, ``NOT_SERVING`` ...).

        Asks for the PipelineService by name, falling back to the server's
        overall status for a server that only registers "".
        """
        timeout = self._settings.console_ready_timeout_seconds
        metadata = await self._metadata()
        try:
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                timeout=timeout,
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout, metadata=metadata
            )
        return _enum_name(response.status)
