"""pipeline.v1 against the running pipeline container: every RPC, health,
reflection, and the status code for each kind of bad input."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from harness import feeds, images
from harness.grpc_client import download, run_requests, sha256
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

pytestmark = pytest.mark.docker

Stub = pipeline_pb2_grpc.PipelineServiceStub
TIMEOUT = 60


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code `call` fails with (server streams: consume them inside `call`)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()
    return code


def _run(stub: Stub, feed: bytes, **kwargs: object) -> pb.Run:
    run: pb.Run = stub.RunPipeline(run_requests(feed, **kwargs), timeout=TIMEOUT)  # type: ignore[arg-type]
    return run


# --- reads ---------------------------------------------------------------------


def test_status_reports_the_loaded_pipeline_and_the_commit(
    pipeline_stub: Stub, built_images: images.Build
) -> None:
    status = pipeline_stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    assert status.healthy
    assert status.pipeline_name == "metro_schedule"
    assert status.step_count == len(steps) > 0
    assert status.version == built_images.commit
    assert status.framework_version
    assert status.active_runs >= 0


def test_steps_are_in_execution_order_and_typed(pipeline_stub: Stub) -> None:
    steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    assert [s.index for s in steps] == list(range(len(steps)))
    assert len({s.name for s in steps}) == len(steps)
    for step in steps:
        assert step.type in (pb.STEP_TYPE_BUILTIN, pb.STEP_TYPE_CUSTOM)
        assert bool(step.builtin_class) == (step.type == pb.STEP_TYPE_BUILTIN)


def test_dag_is_reactflow_json_over_the_steps(pipeline_stub: Stub) -> None:
    dag = pipeline_stub.GetDag(pb.GetDagRequest(), timeout=TIMEOUT)
    graph = json.loads(dag.reactflow_json)
    nodes, edges = graph["nodes"], graph["edges"]
    assert dag.node_count == len(nodes)
    assert dag.edge_count == len(edges)
    ids = {n["id"] for n in nodes}
    steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    assert {s.name for s in steps} <= ids
    assert all(n["type"] in ("builtin", "custom") for n in nodes)
    pairs = [(e["source"], e["target"]) for e in edges]
    assert len(pairs) == len(set(pairs)), "duplicate edges"
    assert all(s in ids and t in ids for s, t in pairs)


# --- runs ----------------------------------------------------------------------


def test_a_run_completes_and_its_output_matches_its_digest(
    pipeline_stub: Stub, built_images: images.Build
) -> None:
    feed = feeds.feed()
    run = _run(pipeline_stub, feed, label="ok.zip")
    steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    assert run.status == pb.RUN_STATUS_COMPLETED, run.error
    assert run.label == "ok.zip"
    assert run.input_size == len(feed)
    assert run.input_sha256 == sha256(feed)
    assert [r.step_name for r in run.step_results] == [s.name for s in steps]
    assert all(r.status == pb.STEP_STATUS_SUCCESS for r in run.step_results)
    assert run.version == built_images.commit
    assert run.output_available
    output = download(pipeline_stub, run.run_id)
    assert len(output) == run.output_size
    assert sha256(output) == run.output_sha256
    assert "stops.txt" in zipfile.ZipFile(io.BytesIO(output)).namelist()
    assert pipeline_stub.GetRun(pb.GetRunRequest(run_id=run.run_id), timeout=TIMEOUT) == run


def test_a_disabled_step_is_skipped(pipeline_stub: Stub) -> None:
    steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    skipped = steps[-1].name
    run = _run(pipeline_stub, feeds.feed(), disabled_steps=[skipped])
    assert run.status == pb.RUN_STATUS_COMPLETED, run.error
    by_name = {r.step_name: r.status for r in run.step_results}
    assert by_name[skipped] == pb.STEP_STATUS_SKIPPED


def test_a_failing_step_fails_the_run_and_there_is_no_output(pipeline_stub: Stub) -> None:
    run = _run(pipeline_stub, feeds.feed(broken_hierarchy=True))
    assert run.status == pb.RUN_STATUS_FAILED
    failed = [r for r in run.step_results if r.status == pb.STEP_STATUS_FAILED]
    assert failed, "a failed run names its failed step"
    assert any(f.severity == "error" for r in failed for f in r.findings) or run.error
    assert _code(lambda: download(pipeline_stub, run.run_id)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_run_history_is_newest_first_and_pages(pipeline_stub: Stub) -> None:
    ids = [_run(pipeline_stub, feeds.feed(), label=f"page-{i}").run_id for i in range(3)]
    first = pipeline_stub.ListRuns(pb.ListRunsRequest(page_size=2), timeout=TIMEOUT)
    assert len(first.runs) == 2
    assert first.next_page_token
    assert [r.run_id for r in first.runs] == ids[::-1][:2]
    second = pipeline_stub.ListRuns(
        pb.ListRunsRequest(page_size=2, page_token=first.next_page_token), timeout=TIMEOUT
    )
    assert second.runs[0].run_id == ids[0]


def test_a_feed_larger_than_grpc_default_message_limit_streams(pipeline_stub: Stub) -> None:
    feed = feeds.feed(800_000)
    assert len(feed) > 4 * 1024 * 1024
    run = _run(pipeline_stub, feed)
    assert run.status == pb.RUN_STATUS_COMPLETED, run.error
    assert run.input_size == len(feed)
    assert sha256(download(pipeline_stub, run.run_id)) == run.output_sha256


# --- bad input -> status codes ------------------------------------------------------


def _options(**kwargs: object) -> pb.RunPipelineRequest:
    return pb.RunPipelineRequest(options=pb.RunOptions(**kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "messages", "code"),
    [
        ("no messages", [], grpc.StatusCode.INVALID_ARGUMENT),
        (
            "chunk before options",
            [pb.RunPipelineRequest(chunk=b"PK")],
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        ("options only", [_options(label="x")], grpc.StatusCode.INVALID_ARGUMENT),
        (
            "options twice",
            [_options(label="x"), pb.RunPipelineRequest(chunk=b"PK\x03\x04"), _options(label="y")],
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "unknown disabled step",
            [_options(disabled_steps=["no_such_step"]), pb.RunPipelineRequest(chunk=b"x")],
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "declared size over the cap",
            [_options(declared_size=1 << 40), pb.RunPipelineRequest(chunk=b"x")],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (
            "not a zip",
            [_options(label="x"), pb.RunPipelineRequest(chunk=b"this is not a zip")],
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "a zip without GTFS files",
            [_options(label="x"), pb.RunPipelineRequest(chunk=b"PK\x05\x06" + b"\0" * 18)],
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_run_pipeline_rejects(
    pipeline_stub: Stub, case: str, messages: list[pb.RunPipelineRequest], code: grpc.StatusCode
) -> None:
    assert _code(lambda: pipeline_stub.RunPipeline(iter(messages), timeout=TIMEOUT)) == code, case


@pytest.mark.parametrize(
    ("run_id", "code"),
    [("", grpc.StatusCode.INVALID_ARGUMENT), ("no-such-run", grpc.StatusCode.NOT_FOUND)],
)
def test_get_run_and_download_reject(
    pipeline_stub: Stub, run_id: str, code: grpc.StatusCode
) -> None:
    get = pb.GetRunRequest(run_id=run_id)
    assert _code(lambda: pipeline_stub.GetRun(get, timeout=TIMEOUT)) == code
    assert _code(lambda: download(pipeline_stub, run_id)) == code


@pytest.mark.parametrize(
    "request_",
    [pb.ListRunsRequest(page_size=-1), pb.ListRunsRequest(page_token="not-a-token")],
    ids=["negative page size", "forged page token"],
)
def test_list_runs_rejects(pipeline_stub: Stub, request_: pb.ListRunsRequest) -> None:
    call = lambda: pipeline_stub.ListRuns(request_, timeout=TIMEOUT)  # noqa: E731
    assert _code(call) == grpc.StatusCode.INVALID_ARGUMENT


# --- standard services -------------------------------------------------------------


def test_health_serves_the_server_and_the_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "pipeline.v1.PipelineService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_every_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT)))
    names = {s.name for s in reply.list_services_response.service}
    assert {"pipeline.v1.PipelineService", "grpc.health.v1.Health"} <= names
