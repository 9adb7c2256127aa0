"""The channel and the calls: retries through the service config, a deadline
on every call, and ID tokens cached until shortly before they expire."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.auth import jwt

from console_server.errors import ConsoleError
from console_server.grpc_client import (
    HEALTH_SERVICE_NAME,
    SERVICE_NAME,
    IdTokenSource,
    PipelineClient,
    channel_options,
)
from console_server.settings import Settings
from pipeline.v1 import pipeline_pb2 as pb
from testkit.servers import StandIn, start_stand_in


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = start_stand_in()
    yield server
    server.stop()


def client_for(stand_in: StandIn, **settings: float) -> PipelineClient:
    """A client for the stand-in; create it inside the event loop (grpc.aio)."""
    s = Settings(pipeline_addr=f"127.0.0.1:{stand_in.port}", **settings)  # type: ignore[arg-type]
    return PipelineClient(s)


# --- channel ---------------------------------------------------------------------


def test_service_config_retries_unavailable_on_both_services() -> None:
    options = dict(channel_options(Settings(pipeline_addr="a:1")))
    assert options["grpc.enable_retries"] == 1
    config = json.loads(str(options["grpc.service_config"]))
    (method_config,) = config["methodConfig"]
    assert method_config["name"] == [{"service": SERVICE_NAME}, {"service": HEALTH_SERVICE_NAME}]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    # Cloud Run: pings only under a call, never more often than the pipeline allows.
    assert options["grpc.keepalive_time_ms"] >= 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 0


def test_unavailable_is_retried_by_grpc(stand_in: StandIn) -> None:
    stand_in.servicer.fail_status_with = [grpc.StatusCode.UNAVAILABLE] * 2

    async def call() -> pb.GetStatusResponse:
        client = client_for(stand_in)
        try:
            return await client.get_status()
        finally:
            await client.close()

    assert asyncio.run(call()).pipeline_name == "stand_in"
    assert stand_in.servicer.methods() == ["GetStatus"] * 3


def test_other_errors_are_not_retried(stand_in: StandIn) -> None:
    stand_in.servicer.fail_status_with = [grpc.StatusCode.INVALID_ARGUMENT]

    async def call() -> None:
        client = client_for(stand_in)
        try:
            await client.get_status()
        finally:
            await client.close()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        asyncio.run(call())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stand_in.servicer.methods() == ["GetStatus"]


def test_every_call_has_a_deadline(stand_in: StandIn) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"zip"

    async def every_call() -> None:
        client = client_for(
            stand_in,
            console_call_timeout_seconds=7,
            console_run_timeout_seconds=70,
            console_ready_timeout_seconds=3,
        )
        try:
            await client.get_status()
            await client.list_steps()
            await client.get_dag()
            await client.get_run("r1")
            await client.list_runs(20, "")
            await client.run_pipeline(pb.RunOptions(label="x"), chunks())
            assert [c async for c in client.download_output("r1")]
            assert await client.health() == "SERVING"
        finally:
            await client.close()

    asyncio.run(every_call())
    limits = {
        "GetStatus": 7,
        "ListSteps": 7,
        "GetDag": 7,
        "GetRun": 7,
        "ListRuns": 7,
        "RunPipeline": 70,
        "DownloadOutput": 70,
        "Health.Check": 3,
    }
    seen = set()
    for call in stand_in.servicer.calls:
        seen.add(call.method)
        assert call.time_remaining is not None, call.method
        # Clocks on both sides round a little; the bound is what matters.
        assert limits[call.method] - 2 < call.time_remaining < limits[call.method] + 0.5, call
        assert "authorization" not in call.metadata, "no audience, no token"
    assert seen == set(limits)


# --- ID tokens -----------------------------------------------------------------------


def unsigned_jwt(lifetime: float, **claims: object) -> str:
    """A structurally valid JWT; the console never verifies the signature."""
    now = time.time()
    payload = {"iat": int(now), "exp": now + lifetime, "aud": "https://p.example", **claims}

    class _NoSigner:
        key_id = None

        def sign(self, message: bytes) -> bytes:
            return b"unsigned"

    token: str = jwt.encode(_NoSigner(), payload).decode()  # type: ignore[no-untyped-call]
    return token


class FakeFetch:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.audiences: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, audience: str) -> str:
        time.sleep(0.05)  # long enough for concurrent callers to pile up
        with self._lock:
            self.audiences.append(audience)
            return unsigned_jwt(self.lifetime, n=len(self.audiences))


def test_token_is_cached_and_shared_by_concurrent_calls() -> None:
    fetch = FakeFetch(lifetime=3600)
    source = IdTokenSource("https://p.example", fetch=fetch)

    async def many() -> set[str]:
        return set(await asyncio.gather(*(source.token() for _ in range(20))))

    assert len(asyncio.run(many())) == 1
    assert fetch.audiences == ["https://p.example"]


def test_token_is_refreshed_before_it_expires() -> None:
    # Lifetime 2 s: refreshed after 1.5 s (a quarter of the lifetime early).
    fetch = FakeFetch(lifetime=2)
    source = IdTokenSource("https://p.example", fetch=fetch)

    async def scenario() -> list[str]:
        first = await source.token()
        again = await source.token()
        await asyncio.sleep(1.6)
        fresh = await source.token()
        return [first, again, fresh]

    first, again, fresh = asyncio.run(scenario())
    assert first == again
    assert fresh != first
    assert len(fetch.audiences) == 2


def test_a_token_that_is_not_a_jwt_is_used_once() -> None:
    calls: list[str] = []

    def fetch(audience: str) -> str:
        calls.append(audience)
        return "opaque"

    source = IdTokenSource("aud", fetch=fetch)

    async def twice() -> None:
        await source.token()
        await source.token()

    asyncio.run(twice())
    assert len(calls) == 2


def test_no_token_is_a_503(caplog: pytest.LogCaptureFixture) -> None:
    def fetch(audience: str) -> str:
        raise RuntimeError("Neither metadata server or valid service account credentials")

    source = IdTokenSource("aud", fetch=fetch)
    with pytest.raises(ConsoleError) as caught:
        asyncio.run(source.token())
    assert caught.value.status_code == 503
    assert caught.value.code == "pipeline_credentials_unavailable"
    assert "aud" in caught.value.message
    # google-auth's words go to the log, not to the client.
    assert "metadata server" not in caught.value.message
    assert "metadata server" in caplog.text
