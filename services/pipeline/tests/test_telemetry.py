"""Traces, metrics and log context of the pipeline server, in process.

The server gets providers with in-memory exporters; the caller sends the
``traceparent`` and ``x-request-id`` the console would send.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer, start
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
    points = {
        (p.attributes["rpc.method"], p.attributes["rpc.grpc.status_code"]): p
        for p in observed.points("rpc.server.duration")
    }
    assert {key: p.count for key, p in points.items()} == {
        ("GetStatus", "OK"): 3,
        ("GetRun", "NOT_FOUND"): 1,
    }
    # NOT_FOUND is the caller's mistake, not a server error: no error.type.
    assert all("error.type" not in p.attributes for p in points.values())
    # Seconds, with edges fine enough for a loopback call (under a millisecond).
    status = points[("GetStatus", "OK")]
    assert status.explicit_bounds[0] == 0.0001
    assert status.max < 1.0


def test_log_lines_of_a_request_carry_trace_and_request_id(
    stub: pb_grpc.PipelineServiceStub, observed: Observed, json_log: io.StringIO, tiny_feed: bytes
) -> None:
    def upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(declared_size=len(tiny_feed)))
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    stub.RunPipeline(upload(), metadata=CALLER, timeout=60)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    during = [line for line in lines if line.get("request_id") == "req-123"]
    # "run ... started", step lines, "run ... COMPLETED" (and the RPC's own line if slow).
    assert len(during) >= 3
    for line in during:
        assert line["logging.googleapis.com/trace"] == f"projects/test-project/traces/{TRACE_ID}"
        assert len(line["logging.googleapis.com/spanId"]) == 16
        assert line["logging.googleapis.com/trace_sampled"] is True


def rpc_lines(json_log: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, json_log.getvalue().splitlines()) if "rpc" in line]


def test_a_failed_call_gets_a_line_a_fast_successful_one_only_its_span(
    stub: pb_grpc.PipelineServiceStub, observed: Observed, json_log: io.StringIO
) -> None:
    stub.GetStatus(pb.GetStatusRequest(), metadata=CALLER, timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.GetRun(pb.GetRunRequest(run_id="nope"), metadata=CALLER, timeout=10)
    (line,) = rpc_lines(json_log)
    assert line["rpc"]["method"] == "GetRun"
    assert line["rpc"]["code"] == "NOT_FOUND"
    assert line["severity"] == "INFO"  # the caller's mistake, not a server fault
    assert line["request_id"] == "req-123"
    assert line["logging.googleapis.com/trace"] == f"projects/test-project/traces/{TRACE_ID}"
    # Both calls keep their span.
    assert {"pipeline.v1.PipelineService/GetStatus", "pipeline.v1.PipelineService/GetRun"} <= set(
        by_name(observed.finished())
    )


def test_with_a_zero_threshold_every_call_gets_a_line(
    settings: Settings,
    observed: Observed,
    json_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCESS_LOG_SLOW_MS", "0")
    running = start(settings, host="127.0.0.1", telemetry=observed.telemetry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            pb_grpc.PipelineServiceStub(channel).GetStatus(pb.GetStatusRequest(), timeout=10)
    finally:
        running.stop(None)
    (line,) = rpc_lines(json_log)
    assert line["rpc"]["method"] == "GetStatus"
    assert line["rpc"]["code"] == "OK"
    assert line["rpc"]["duration_ms"] >= 0


def test_a_run_records_its_upload_size_and_active_runs(
    stub: pb_grpc.PipelineServiceStub, observed: Observed, tiny_feed: bytes
) -> None:
    def upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(declared_size=len(tiny_feed)))
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    run = stub.RunPipeline(upload(), timeout=60)
    assert run.status == pb.RUN_STATUS_COMPLETED
    (size,) = observed.points("pipeline.upload.size")
    assert (size.count, size.sum) == (1, len(tiny_feed))
    (active,) = observed.points("pipeline.run.active")
    assert active.value == 0  # one run started and ended
    (run_duration,) = observed.points("pipeline.run.duration")
    assert 0 < run_duration.sum < 60  # seconds, not milliseconds


def refused(observed: Observed) -> dict[tuple[str, str], int]:
    return {
        (p.attributes["rpc.method"], p.attributes["reason"]): p.value
        for p in observed.points("rpc.server.refused")
    }


def test_refusals_are_counted_by_reason(settings: Settings, observed: Observed) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 1024})
    running = start(small, host="127.0.0.1", telemetry=observed.telemetry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.PipelineServiceStub(channel)
            big = pb.RunPipelineRequest(options=pb.RunOptions(declared_size=10_000))
            with pytest.raises(grpc.RpcError) as raised:
                stub.RunPipeline(iter([big]), timeout=10)
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop(None)
    assert refused(observed) == {("RunPipeline", "upload_too_large"): 1}
    # A refusal is the caller's to fix, not a server error.
    (point,) = observed.points("rpc.server.duration")
    assert "error.type" not in point.attributes


def test_calls_over_the_streams_limit_are_counted_as_refused(
    settings: Settings, observed: Observed
) -> None:
    # One run slot: three upload streams at once (slots + 2); a fourth is refused
    # by the call bounds, outside the telemetry interceptor.
    one = settings.model_copy(update={"max_concurrent_runs": 1})
    running = start(one, host="127.0.0.1", telemetry=observed.telemetry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.PipelineServiceStub(channel)
            held = [stub.RunPipeline.future(_silent(), timeout=10) for _ in range(3)]
            _wait_until_held(running, 3)
            with pytest.raises(grpc.RpcError) as raised:
                stub.RunPipeline(_silent(stop_after=0), timeout=10)
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for call in held:
                call.cancel()
    finally:
        running.stop(None)
    assert refused(observed).get(("RunPipeline", "calls_in_progress")) == 1


def _silent(stop_after: float = 5.0) -> Iterator[pb.RunPipelineRequest]:
    """An upload stream that sends nothing for a while (it holds its slot)."""
    import time

    time.sleep(stop_after)
    yield from ()


def _wait_until_held(running: RunningServer, count: int) -> None:
    import time

    bounds = running.bounds
    deadline = time.monotonic() + 5
    while bounds.active("/pipeline.v1.PipelineService/RunPipeline") < count:
        assert time.monotonic() < deadline, "the streams were not admitted"
        time.sleep(0.05)
