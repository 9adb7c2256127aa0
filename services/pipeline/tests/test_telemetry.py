"""Traces, metrics and log context of the pipeline server, in process.

The server gets providers with in-memory exporters; the caller sends the
``traceparent`` and ``x-request-id`` the console would send.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import start
from pipeline_server.settings import Settings
from telemetry import CloudLoggingFormatter
from telemetry.testing import InMemoryTelemetry as Observed

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def observed() -> Iterator[Observed]:
    obs = Observed("pipeline")
    yield obs
    obs.shutdown()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Log lines formatted as they are emitted (the trace context is read then)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter("pipeline", project="test-project"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


@pytest.fixture
def stub(settings: Settings, observed: Observed) -> Iterator[pb_grpc.PipelineServiceStub]:
    running = start(settings, host="127.0.0.1", telemetry=observed.telemetry)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield pb_grpc.PipelineServiceStub(channel)
    channel.close()
    running.stop(None)


CALLER = (("traceparent", TRACEPARENT), ("x-request-id", "req-123"))


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_server_span_continues_the_callers_trace(
    stub: pb_grpc.PipelineServiceStub, observed: Observed
) -> None:
    stub.GetStatus(pb.GetStatusRequest(), metadata=CALLER, timeout=10)
    (span,) = observed.finished()
    assert span.name == "pipeline.v1.PipelineService/GetStatus"
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["rpc.method"] == "GetStatus"
    assert span.attributes["request.id"] == "req-123"
    assert span.attributes["rpc.grpc.status_code"] == 0


def test_without_traceparent_a_new_trace_starts(
    stub: pb_grpc.PipelineServiceStub, observed: Observed
) -> None:
    stub.ListSteps(pb.ListStepsRequest(), timeout=10)
    (span,) = observed.finished()
    assert span.parent is None
    assert span.context.trace_id != int(TRACE_ID, 16)


def test_run_and_step_spans_are_children_of_the_rpc(
    stub: pb_grpc.PipelineServiceStub, observed: Observed, tiny_feed: bytes
) -> None:
    def upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(declared_size=len(tiny_feed)))
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    run = stub.RunPipeline(upload(), metadata=CALLER, timeout=60)
    assert run.status == pb.RUN_STATUS_COMPLETED
    spans = by_name(observed.finished())
    rpc = spans["pipeline.v1.PipelineService/RunPipeline"]
    run_span = spans["run simple"]
    assert run_span.parent is not None
    assert run_span.parent.span_id == rpc.context.span_id
    steps = [s for s in spans.values() if s.name.startswith("step ")]
    assert {s.name for s in steps} == {f"step {r.step_name}" for r in run.step_results}
    for step in steps:
        assert step.parent is not None
        assert step.parent.span_id == run_span.context.span_id
        assert step.context.trace_id == int(TRACE_ID, 16)
    durations = observed.points("pipeline.step.duration")
    assert {p.attributes["pipeline.step"] for p in durations} == {
        r.step_name for r in run.step_results if r.status != pb.STEP_STATUS_SKIPPED
    }
    (run_duration,) = observed.points("pipeline.run.duration")
    assert run_duration.attributes["pipeline.run.status"] == "RUN_STATUS_COMPLETED"


def test_rpc_metrics_count_requests_and_errors(
    stub: pb_grpc.PipelineServiceStub, observed: Observed
) -> None:
    for _ in range(3):
        stub.GetStatus(pb.GetStatusRequest(), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.GetRun(pb.GetRunRequest(run_id="nope"), timeout=10)
    requests = {
        (p.attributes["rpc.method"], p.attributes["rpc.grpc.status_code"]): p.value
        for p in observed.points("rpc.server.requests")
    }
    assert requests == {("GetStatus", "OK"): 3, ("GetRun", "NOT_FOUND"): 1}
    errors = {p.attributes["rpc.method"]: p.value for p in observed.points("rpc.server.errors")}
    assert errors == {"GetRun": 1}
    (histogram,) = [
        p
        for p in observed.points("rpc.server.duration")
        if p.attributes["rpc.method"] == "GetStatus"
    ]
    assert histogram.count == 3


def test_log_lines_of_a_request_carry_trace_and_request_id(
    stub: pb_grpc.PipelineServiceStub, observed: Observed, json_log: io.StringIO, tiny_feed: bytes
) -> None:
    def upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(declared_size=len(tiny_feed)))
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    stub.RunPipeline(upload(), metadata=CALLER, timeout=60)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    during = [line for line in lines if line.get("request_id") == "req-123"]
    # "run ... started", step lines, "run ... COMPLETED", the RPC's own line.
    assert len(during) >= 3
    for line in during:
        assert line["logging.googleapis.com/trace"] == f"projects/test-project/traces/{TRACE_ID}"
        assert len(line["logging.googleapis.com/spanId"]) == 16
        assert line["logging.googleapis.com/trace_sampled"] is True
    rpc_line = next(line for line in during if "rpc" in line)
    assert rpc_line["rpc"]["method"] == "RunPipeline"
    assert rpc_line["rpc"]["code"] == "OK"
