"""Observability and the pipeline's own ID-token check, over the real containers
(ADR 0017, 0018).

One stack, wired the way Cloud Run wires it except for TLS between the services:
- both services export traces and metrics as the cloud environments do
  (``OTEL_*_EXPORTER=gcp``: OTLP/gRPC over TLS with the service account's access
  token, ADR 0027) to a stand-in for Google's Telemetry API on 127.0.0.1, whose
  CA certificate they find in their mounted data folder; the tokens come from
  the metadata-server stand-in;
- the pipeline requires ID tokens (PIPELINE_REQUIRE_ID_TOKEN=true) signed by a
  test issuer whose certificates a local endpoint serves;
- the console gets its tokens from a metadata-server stand-in run by the same
  test issuer, and sends them in both headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import containers, feeds, images
from harness.fixtures import track, untrack
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

# Stand-ins shared with the telemetry tests (outside the roots mypy is given).
from testkit.id_tokens import FakeIssuer
from testkit.otlp_sink import OtlpSink, Span

pytestmark = pytest.mark.docker

AUDIENCE = "https://pipeline-123456789.europe-west1.run.app"
PROJECT = "test-project"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
TIMEOUT = 60


@dataclass
class Observed:
    sink: OtlpSink
    issuer: FakeIssuer
    stack: containers.Stack


@pytest.fixture(scope="module")
def observed(
    built_images: images.Build, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    folders = {s: tmp_path_factory.mktemp(f"{s}-data") for s in ("pipeline", "console")}
    with OtlpSink(tls_dir=tmp_path_factory.mktemp("tls")) as sink, FakeIssuer() as issuer:
        assert sink.ca_file is not None
        for folder in folders.values():  # the CA, where each container sees it
            (folder / "ca.pem").write_bytes(sink.ca_file.read_bytes())
        stack = containers.new_stack_id()
        common = {
            **sink.gcp_env(),
            "OTEL_EXPORTER_OTLP_CERTIFICATE": f"{containers.CONTAINER_DATA_DIR}/ca.pem",
            **issuer.metadata_env(),
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            # Every call gets its access line (by default only failed and slow
            # ones do), so the line of a call that succeeded can be checked.
            "ACCESS_LOG_SLOW_MS": "0",
        }
        pipeline = track(
            containers.start_pipeline(
                built_images.ref("pipeline"),
                stack,
                env={
                    **common,
                    "PIPELINE_REQUIRE_ID_TOKEN": "true",
                    "PIPELINE_TOKEN_AUDIENCE": AUDIENCE,
                    "PIPELINE_ALLOWED_INVOKERS": issuer.email,
                    "PIPELINE_ID_TOKEN_CERTS_URL": issuer.certs_url,
                },
                data_dir=folders["pipeline"],
            )
        )
        try:
            console = track(
                containers.start_service(
                    "console",
                    built_images.ref("console"),
                    stack,
                    None,
                    {
                        **common,
                        "PIPELINE_TLS": "false",
                        "PIPELINE_ADDR": pipeline.addr,
                        "PIPELINE_AUDIENCE": AUDIENCE,
                    },
                    containers.HTTP_READY,
                    data_dir=folders["console"],
                )
            )
        except BaseException:
            pipeline.remove()
            untrack(pipeline)
            raise
        try:
            yield Observed(sink, issuer, containers.Stack(stack, pipeline, console))
        finally:
            for box in (console, pipeline):
                box.remove()
                untrack(box)


@pytest.fixture(scope="module")
def run(observed: Observed) -> dict[str, Any]:
    """One run through the console, with a request id of our choosing."""
    response = httpx.post(
        f"{observed.stack.console.url}/api/runs",
        files={"feed": ("feed.zip", feeds.feed(), "application/zip")},
        headers={"x-request-id": "obs-run-1"},
        timeout=TIMEOUT,
    )
    assert response.status_code in (200, 201), response.text
    assert response.headers["x-request-id"] == "obs-run-1"
    body: dict[str, Any] = response.json()
    return body


def spans_of(sink: OtlpSink, service: str, name: str) -> list[Span]:
    return [s for s in sink.spans if s.service == service and s.name == name]


def test_one_trace_spans_console_and_pipeline(observed: Observed, run: dict[str, Any]) -> None:
    sink = observed.sink
    rpc = "pipeline.v1.PipelineService/RunPipeline"
    server = sink.wait_for(lambda s: spans_of(s, "pipeline", rpc))[0]
    http = sink.wait_for(
        lambda s: [
            x
            for x in s.spans
            if x.service == "console" and x.kind == SERVER and x.trace_id == server.trace_id
        ]
    )[0]
    client = sink.wait_for(
        lambda s: [
            x
            for x in spans_of(s, "console", rpc)
            if x.kind == CLIENT and x.trace_id == server.trace_id
        ]
    )[0]
    assert http.name == "POST /api/runs"
    # console HTTP span → console gRPC client span → pipeline server span
    assert client.parent_span_id == http.span_id
    assert server.parent_span_id == client.span_id
    assert server.kind == SERVER
    assert server.attributes["request.id"] == "obs-run-1"

    # The run and each of its steps, inside the pipeline's server span.
    (run_span,) = sink.wait_for(
        lambda s: [
            x for x in s.spans if x.name.startswith("run ") and x.trace_id == server.trace_id
        ]
    )
    assert run_span.parent_span_id == server.span_id
    step_names = {f"step {r['step_name']}" for r in run["step_results"]}
    steps = sink.wait_for(
        lambda s: [x for x in s.spans if x.name in step_names and x.trace_id == server.trace_id]
    )
    assert {s.name for s in steps} == step_names
    assert all(s.parent_span_id == run_span.span_id for s in steps)


def test_metrics_per_rpc_route_and_step(observed: Observed, run: dict[str, Any]) -> None:
    sink = observed.sink

    def methods(service: str, metric: str) -> set[Any]:
        return {p.get("rpc.method") for p in sink.metrics.get((service, metric), [])}

    sink.wait_for(lambda s: "RunPipeline" in methods("pipeline", "rpc.server.duration"))
    sink.wait_for(lambda s: "RunPipeline" in methods("console", "rpc.client.duration"))
    routes = sink.wait_for(
        lambda s: (
            {
                p.get("http.route")
                for p in s.metrics.get(("console", "http.server.request.duration"), [])
            }
            >= {"/api/runs"}
        )
    )
    assert routes
    steps = sink.wait_for(
        lambda s: (
            {
                p.get("pipeline.step")
                for p in s.metrics.get(("pipeline", "pipeline.step.duration"), [])
            }
            or None
        )
    )
    assert steps >= {r["step_name"] for r in run["step_results"] if r["status"] != "skipped"}
    sink.wait_for(lambda s: s.metrics.get(("pipeline", "pipeline.upload.size")))


def test_every_export_carried_a_service_account_token(
    observed: Observed, run: dict[str, Any]
) -> None:
    sink = observed.sink
    sink.wait_for(lambda s: spans_of(s, "pipeline", "pipeline.v1.PipelineService/RunPipeline"))
    tokens = {f"Bearer {t}" for t in observed.issuer.access_tokens}
    assert sink.authorizations
    assert set(sink.authorizations) <= tokens, sink.authorizations


def test_every_log_line_is_json_and_carries_the_trace_during_a_request(
    observed: Observed, run: dict[str, Any]
) -> None:
    server = observed.sink.wait_for(
        lambda s: spans_of(s, "pipeline", "pipeline.v1.PipelineService/RunPipeline")
    )[0]
    trace_field = f"projects/{PROJECT}/traces/{server.trace_id}"
    seen = {}
    for box in (observed.stack.pipeline, observed.stack.console):
        lines = [json.loads(line) for line in box.logs().splitlines() if line.strip()]
        assert lines, f"{box.service} logged nothing"
        for line in lines:
            assert {"severity", "message", "time"} <= line.keys(), line
        during = [line for line in lines if line.get("request_id") == "obs-run-1"]
        assert during, f"{box.service}: no line carries the request id"
        for line in during:
            assert line["logging.googleapis.com/trace"] == trace_field, line
            assert len(line["logging.googleapis.com/spanId"]) == 16
            assert line["logging.googleapis.com/trace_sampled"] is True
        seen[box.service] = during
    access = [line for line in seen["console"] if "httpRequest" in line]
    assert access[0]["httpRequest"]["requestMethod"] == "POST"
    assert access[0]["httpRequest"]["requestUrl"] == "/api/runs"


def test_console_with_a_token_source_gets_through(observed: Observed) -> None:
    url = observed.stack.console.url
    assert httpx.get(f"{url}/readyz", timeout=TIMEOUT).status_code == 200
    status = httpx.get(f"{url}/api/status", timeout=TIMEOUT)
    assert status.status_code == 200, status.text


def call_status(addr: str, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    with grpc.insecure_channel(addr) as channel:
        stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
        try:
            stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("valid", grpc.StatusCode.OK),
        ("missing", grpc.StatusCode.UNAUTHENTICATED),
        ("expired", grpc.StatusCode.UNAUTHENTICATED),
        ("wrong audience", grpc.StatusCode.UNAUTHENTICATED),
        ("wrong key", grpc.StatusCode.UNAUTHENTICATED),
        ("not allowed", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_auth_table_against_the_pipeline_container(
    observed: Observed, case: str, expected: grpc.StatusCode
) -> None:
    issuer = observed.issuer
    tokens: dict[str, Callable[[], str | None]] = {
        "valid": lambda: issuer.token(AUDIENCE),
        "missing": lambda: None,
        "expired": lambda: issuer.token(AUDIENCE, issued_ago=7200, lifetime=3600),
        "wrong audience": lambda: issuer.token("https://console-1.a.run.app"),
        "wrong key": lambda: issuer.token(AUDIENCE, signer=issuer.other_signer()),
        "not allowed": lambda: issuer.token(
            AUDIENCE, email="intruder@test-project.iam.gserviceaccount.com"
        ),
    }
    token = tokens[case]()
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    assert call_status(observed.stack.pipeline.addr, metadata) == expected


def test_health_needs_no_token(observed: Observed) -> None:
    with grpc.insecure_channel(observed.stack.pipeline.addr) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="pipeline.v1.PipelineService"), timeout=TIMEOUT
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_refusals_are_logged_with_the_reason(observed: Observed) -> None:
    assert call_status(observed.stack.pipeline.addr) == grpc.StatusCode.UNAUTHENTICATED
    lines = [json.loads(line) for line in observed.stack.pipeline.logs().splitlines() if line]
    refused = [line for line in lines if line["message"].startswith("refused GetStatus")]
    assert refused
    assert refused[-1]["auth"]["code"] == "UNAUTHENTICATED"
    assert refused[-1]["severity"] == "WARNING"
