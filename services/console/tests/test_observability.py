"""Console ↔ pipeline observability, both in this process with in-memory exporters:
one trace from the console's HTTP span through its gRPC client span to the
pipeline's server span, the request id on both sides and in every log line of
the request, per-route and per-RPC metrics, and the ID token in both headers
accepted by a pipeline that requires it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import SpanKind

from console_server.app import create_app
from console_server.grpc_client import IdTokenSource
from console_server.settings import Settings
from pipeline_server.server import RunningServer, start
from pipeline_server.settings import load_settings
from telemetry import CloudLoggingFormatter
from telemetry.testing import InMemoryTelemetry as Observed
from testkit.id_tokens import FakeIssuer
from testkit.servers import TINY_FEED
from testkit.zips import make_zip

FIXTURE_PIPELINES = Path(__file__).parents[2] / "pipeline" / "tests" / "fixtures" / "pipelines"
AUDIENCE = "https://pipeline-123456789.europe-west1.run.app"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter("test", project="test-project"))
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(saved)


def start_pipeline(tmp_path: Path, observed: Observed, **overrides: Any) -> RunningServer:
    settings = load_settings({}).model_copy(
        update={
            "port": 0,
            "pipelines_dir": FIXTURE_PIPELINES,
            "pipeline_name": "simple",
            "data_dir": tmp_path,
            **overrides,
        }
    )
    return start(settings, host="127.0.0.1", telemetry=observed.telemetry)


@pytest.fixture
def pipeline_side() -> Observed:
    return Observed("pipeline")


@pytest.fixture
def console_side() -> Observed:
    return Observed("console")


@pytest.fixture
def pipeline(tmp_path: Path, pipeline_side: Observed) -> Iterator[RunningServer]:
    running = start_pipeline(tmp_path, pipeline_side)
    yield running
    running.stop(None)


Scenario = Callable[[httpx.AsyncClient, FastAPI], Awaitable[None]]


def with_console(port: int, observed: Observed, scenario: Scenario, **settings: Any) -> None:
    """Run `scenario` against the console app in this process, lifespan included."""
    app = create_app(Settings(pipeline_addr=f"127.0.0.1:{port}", **settings), observed.telemetry)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
                await scenario(client, app)

    asyncio.run(main())


def test_one_trace_from_http_span_to_pipeline_server_span(
    pipeline: RunningServer,
    pipeline_side: Observed,
    console_side: Observed,
    json_log: io.StringIO,
) -> None:
    responses: list[httpx.Response] = []
    run_id = uuid.uuid4().hex

    async def scenario(client: httpx.AsyncClient, _app: FastAPI) -> None:
        # An unknown run: a NOT_FOUND call and a 404, so both sides write their line.
        path = f"/api/runs/{run_id}"
        responses.append(await client.get(path, headers={"x-request-id": "req-e2e-1"}))

    with_console(pipeline.port, console_side, scenario)
    (response,) = responses
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "req-e2e-1"

    console_spans = console_side.finished()
    (http,) = [s for s in console_spans if s.kind == SpanKind.SERVER]
    (grpc_client,) = [s for s in console_spans if s.kind == SpanKind.CLIENT]
    (server,) = [
        s for s in pipeline_side.finished() if s.name == "pipeline.v1.PipelineService/GetRun"
    ]
    assert http.name == "GET /api/runs/{run_id}"
    assert grpc_client.parent is not None
    assert grpc_client.parent.span_id == http.context.span_id
    assert server.parent is not None
    assert server.parent.span_id == grpc_client.context.span_id
    assert server.context.trace_id == http.context.trace_id
    assert server.attributes is not None
    assert server.attributes["request.id"] == "req-e2e-1"

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    during = [line for line in lines if line.get("request_id") == "req-e2e-1"]
    trace_field = f"projects/test-project/traces/{http.context.trace_id:032x}"
    # The pipeline's RPC line and the console's access line, at least.
    assert {line["logger"] for line in during} >= {
        "telemetry.grpc_server",
        "console_server.access",
    }
    for line in during:
        assert line["logging.googleapis.com/trace"] == trace_field
    access = next(line for line in during if line["logger"] == "console_server.access")
    assert access["httpRequest"]["requestMethod"] == "GET"
    assert access["httpRequest"]["requestUrl"] == f"/api/runs/{run_id}"
    assert access["httpRequest"]["status"] == 404
    assert access["httpRequest"]["latency"].endswith("s")


def access_lines(json_log: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "console_server.access"]


def test_a_fast_successful_request_gets_no_access_line_unless_the_threshold_is_zero(
    pipeline: RunningServer,
    console_side: Observed,
    json_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(client: httpx.AsyncClient, _app: FastAPI) -> None:
        assert (await client.get("/api/status")).status_code == 200

    with_console(pipeline.port, console_side, scenario)
    assert access_lines(json_log) == []
    # ... while its span and its duration are recorded.
    assert [s.name for s in console_side.finished() if s.kind == SpanKind.SERVER] == [
        "GET /api/status"
    ]
    assert [p.count for p in console_side.points("http.server.request.duration")] == [1]

    monkeypatch.setenv("ACCESS_LOG_SLOW_MS", "0")
    with_console(pipeline.port, console_side, scenario)
    (line,) = access_lines(json_log)
    assert line["httpRequest"]["requestUrl"] == "/api/status"
    assert line["httpRequest"]["status"] == 200


def test_console_metrics_per_route_and_rpc(pipeline: RunningServer, console_side: Observed) -> None:

    async def scenario(client: httpx.AsyncClient, _app: FastAPI) -> None:
        assert (await client.get("/api/status")).status_code == 200
        assert (await client.get(f"/api/runs/{uuid.uuid4().hex}")).status_code == 404
        assert (await client.get(f"/api/runs/{uuid.uuid4().hex}")).status_code == 404
        feed = {"feed": ("feed.zip", make_zip(TINY_FEED), "application/zip")}
        run = await client.post("/api/runs", files=feed)
        assert run.status_code == 201, run.text
        output = await client.get(f"/api/runs/{run.json()['run_id']}/output")
        assert output.status_code == 200

    with_console(pipeline.port, console_side, scenario)
    routes = {
        (p.attributes["http.route"], p.attributes["http.response.status_code"]): p.count
        for p in console_side.points("http.server.request.duration")
    }
    assert routes == {
        ("/api/status", "200"): 1,
        ("/api/runs/{run_id}", "404"): 2,
        ("/api/runs", "201"): 1,
        ("/api/runs/{run_id}/output", "200"): 1,
    }
    rpcs = {
        (p.attributes["rpc.method"], p.attributes["rpc.grpc.status_code"]): p.count
        for p in console_side.points("rpc.client.duration")
    }
    # Every call kind: unary, client stream (RunPipeline), server stream (DownloadOutput).
    assert rpcs == {
        ("GetStatus", "OK"): 1,
        ("GetRun", "NOT_FOUND"): 2,
        ("RunPipeline", "OK"): 1,
        ("DownloadOutput", "OK"): 1,
    }
    errors = {
        p.attributes["rpc.method"]: p.attributes["error.type"]
        for p in console_side.points("rpc.client.duration")
        if "error.type" in p.attributes
    }
    # From the caller's side every non-OK status failed the call.
    assert errors == {"GetRun": "NOT_FOUND"}


def test_id_token_in_both_headers_passes_a_guarded_pipeline(
    tmp_path: Path, pipeline_side: Observed, console_side: Observed, issuer: FakeIssuer
) -> None:
    guarded = start_pipeline(
        tmp_path,
        pipeline_side,
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=issuer.certs_url,
    )
    try:

        async def with_token(client: httpx.AsyncClient, app: FastAPI) -> None:
            app.state.pipeline.tokens = IdTokenSource(AUDIENCE, fetch=issuer.token)
            assert (await client.get("/api/status")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200

        async def without_token(client: httpx.AsyncClient, _app: FastAPI) -> None:
            # The pipeline refuses; the console reports its pipeline as unusable.
            assert (await client.get("/api/status")).status_code == 503

        with_console(guarded.port, console_side, with_token, pipeline_audience=AUDIENCE)
        with_console(guarded.port, console_side, without_token)
    finally:
        guarded.stop(None)


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as running:
        yield running


def test_refused_requests_are_counted_by_the_error_code(
    pipeline: RunningServer, console_side: Observed
) -> None:
    async def scenario(client: httpx.AsyncClient, _app: FastAPI) -> None:
        feed = {"feed": ("feed.zip", b"x" * 4096, "application/zip")}
        refused = await client.post("/api/runs", files=feed)
        assert refused.status_code == 413, refused.text

    with_console(pipeline.port, console_side, scenario, console_max_upload_bytes=1024)
    points = [
        (p.attributes["http.route"], p.attributes["reason"], p.value)
        for p in console_side.points("http.server.refused")
    ]
    assert points == [("/api/runs", "upload_too_large", 1)]
    # A refusal is not a server error: no error.type on its duration point.
    (duration,) = [
        p for p in console_side.points("http.server.request.duration")
        if p.attributes["http.response.status_code"] == "413"
    ]  # fmt: skip
    assert "error.type" not in duration.attributes
