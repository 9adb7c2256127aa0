"""The console and the pipeline agree: what one shows, the other holds."""

from __future__ import annotations

import hashlib
import json

import grpc
import httpx
import pytest

from harness import containers, feeds
from harness.grpc_client import download
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

pytestmark = pytest.mark.docker

TIMEOUT = 60
STEP_STATUS = {
    pb.STEP_STATUS_SUCCESS: "success",
    pb.STEP_STATUS_FAILED: "failed",
    pb.STEP_STATUS_SKIPPED: "skipped",
}
RUN_STATUS = {
    pb.RUN_STATUS_COMPLETED: "completed",
    pb.RUN_STATUS_FAILED: "failed",
    pb.RUN_STATUS_RUNNING: "running",
}


def test_console_dag_is_the_pipeline_dag(
    stack: containers.Stack, pipeline_stub: pipeline_pb2_grpc.PipelineServiceStub
) -> None:
    via_console = httpx.get(f"{stack.console.url}/api/dag", timeout=TIMEOUT).json()
    via_grpc = json.loads(pipeline_stub.GetDag(pb.GetDagRequest(), timeout=TIMEOUT).reactflow_json)
    assert via_console == via_grpc


def test_console_steps_and_status_are_the_pipeline_s(
    stack: containers.Stack, pipeline_stub: pipeline_pb2_grpc.PipelineServiceStub
) -> None:
    steps = httpx.get(f"{stack.console.url}/api/steps", timeout=TIMEOUT).json()["steps"]
    grpc_steps = pipeline_stub.ListSteps(pb.ListStepsRequest(), timeout=TIMEOUT).steps
    assert [s["name"] for s in steps] == [s.name for s in grpc_steps]
    status = httpx.get(f"{stack.console.url}/api/status", timeout=TIMEOUT).json()
    grpc_status = pipeline_stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert status["pipeline_name"] == grpc_status.pipeline_name
    assert status["version"] == grpc_status.version
    assert status["step_count"] == grpc_status.step_count


@pytest.mark.parametrize("broken", [False, True], ids=["completed", "failed"])
def test_a_run_started_through_the_console_is_the_run_the_pipeline_holds(
    stack: containers.Stack,
    pipeline_stub: pipeline_pb2_grpc.PipelineServiceStub,
    broken: bool,
) -> None:
    feed = feeds.feed(broken_hierarchy=broken)
    response = httpx.post(
        f"{stack.console.url}/api/runs",
        files={"feed": ("cross.zip", feed, "application/zip")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    run = response.json()
    held = pipeline_stub.GetRun(pb.GetRunRequest(run_id=run["run_id"]), timeout=TIMEOUT)
    assert run["status"] == RUN_STATUS[held.status]
    assert [(r["step_name"], r["status"]) for r in run["step_results"]] == [
        (r.step_name, STEP_STATUS[r.status]) for r in held.step_results
    ]
    for mine, theirs in zip(run["step_results"], held.step_results, strict=True):
        assert [f["code"] for f in mine["findings"]] == [f.code for f in theirs.findings]
    assert run["input_sha256"] == held.input_sha256 == hashlib.sha256(feed).hexdigest()
    assert run["output_sha256"] == held.output_sha256
    if broken:
        return
    output = httpx.get(f"{stack.console.url}/api/runs/{run['run_id']}/output", timeout=TIMEOUT)
    assert output.status_code == 200
    via_grpc = download(pipeline_stub, run["run_id"])
    assert output.content == via_grpc
    assert hashlib.sha256(via_grpc).hexdigest() == held.output_sha256


def test_pipeline_errors_reach_the_console_as_their_http_status(stack: containers.Stack) -> None:
    missing = httpx.get(f"{stack.console.url}/api/runs/absent", timeout=TIMEOUT)
    assert missing.status_code == 404
    with grpc.insecure_channel(stack.pipeline.addr) as channel:
        stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetRun(pb.GetRunRequest(run_id="absent"), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
