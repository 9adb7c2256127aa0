"""Every RPC of pipeline.v1 against a real server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

CHUNK = 64 * 1024


def requests(feed: bytes, **options: object) -> Iterator[pb.RunPipelineRequest]:
    yield pb.RunPipelineRequest(options=pb.RunOptions(**options))  # type: ignore[arg-type]
    for i in range(0, len(feed), CHUNK):
        yield pb.RunPipelineRequest(chunk=feed[i : i + CHUNK])


def test_status_reports_pipeline_and_version(stub: pb_grpc.PipelineServiceStub) -> None:
    status = stub.GetStatus(pb.GetStatusRequest())
    assert status.healthy
    assert status.pipeline_name == "simple"
    assert status.step_count == 4
    assert status.version == "0123456789abcdef0123456789abcdef01234567"
    assert not status.HasField("last_run_time")
    assert status.framework_version


def test_list_steps_in_execution_order(stub: pb_grpc.PipelineServiceStub) -> None:
    steps = stub.ListSteps(pb.ListStepsRequest()).steps
    assert [s.name for s in steps] == ["init", "publisher", "drop_unnamed_stops", "fail_on_marker"]
    publisher = steps[1]
    assert publisher.type == pb.STEP_TYPE_BUILTIN
    assert publisher.builtin_class == "UpdateFeedInfo"
    assert list(publisher.files) == ["feed_info.txt"]
    custom = steps[2]
    assert custom.type == pb.STEP_TYPE_CUSTOM
    assert custom.builtin_class == ""
    assert custom.description == "Drop stops without a name."
    assert [s.index for s in steps] == [0, 1, 2, 3]


def test_dag_is_reactflow_without_duplicate_edges(stub: pb_grpc.PipelineServiceStub) -> None:
    dag = stub.GetDag(pb.GetDagRequest())
    parsed = json.loads(dag.reactflow_json)
    assert {n["id"] for n in parsed["nodes"]} == {
        "init",
        "publisher",
        "drop_unnamed_stops",
        "fail_on_marker",
    }
    assert {n["type"] for n in parsed["nodes"]} == {"builtin", "custom"}
    edges = [(e["source"], e["target"]) for e in parsed["edges"]]
    assert len(edges) == len(set(edges)), "duplicate edges"
    # init runs before="*": an edge to every other step.
    assert ("init", "fail_on_marker") in edges
    assert ("drop_unnamed_stops", "fail_on_marker") in edges
    assert dag.node_count == 4
    assert dag.edge_count == len(edges)


def test_run_reports_steps_rows_findings_and_output(
    stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    run = stub.RunPipeline(requests(tiny_feed, label="tiny.zip"))
    assert run.status == pb.RUN_STATUS_COMPLETED, run.error
    assert run.label == "tiny.zip"
    assert run.input_size == len(tiny_feed)
    assert run.input_sha256 == hashlib.sha256(tiny_feed).hexdigest()
    by_name = {s.step_name: s for s in run.step_results}
    assert [s.step_name for s in run.step_results] == [
        "init",
        "publisher",
        "drop_unnamed_stops",
        "fail_on_marker",
    ]
    assert all(s.status == pb.STEP_STATUS_SUCCESS for s in run.step_results)
    drop = by_name["drop_unnamed_stops"]
    assert [(c.file, c.rows_before, c.rows_after) for c in drop.row_counts] == [("stops.txt", 3, 2)]
    assert drop.findings[0].code == "stops_counted"
    assert drop.findings[0].context["kept"] == "2"
    assert any("kept 2 of 3 stops" in m for m in drop.messages)
    assert run.output_available
    assert run.output_size > 0

    output = b"".join(
        c.chunk for c in stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run.run_id))
    )
    assert len(output) == run.output_size
    assert hashlib.sha256(output).hexdigest() == run.output_sha256
    with zipfile.ZipFile(io.BytesIO(output)) as zf:
        assert "Test Publisher" in zf.read("feed_info.txt").decode()
        assert zf.read("stops.txt").decode().count("\n") == 3  # header + 2 stops


def test_failed_step_fails_the_run(
    stub: pb_grpc.PipelineServiceStub, feed_with: Callable[..., bytes]
) -> None:
    feed = feed_with(
        {"routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,FAIL,3\n"}
    )
    run = stub.RunPipeline(requests(feed))
    assert run.status == pb.RUN_STATUS_FAILED
    assert "fail_on_marker" in run.error
    assert "route FAIL found" in run.error
    assert run.step_results[-1].status == pb.STEP_STATUS_FAILED
    assert not run.output_available
    with pytest.raises(grpc.RpcError) as err:
        list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run.run_id)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_disabled_steps_are_skipped(stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes) -> None:
    run = stub.RunPipeline(requests(tiny_feed, disabled_steps=["drop_unnamed_stops"]))
    assert run.status == pb.RUN_STATUS_COMPLETED
    statuses = {s.step_name: s.status for s in run.step_results}
    assert statuses["drop_unnamed_stops"] == pb.STEP_STATUS_SKIPPED


def test_get_run_list_runs_paged_newest_first(
    stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    ids = [stub.RunPipeline(requests(tiny_feed, label=f"run{i}")).run_id for i in range(5)]
    assert stub.GetRun(pb.GetRunRequest(run_id=ids[2])).label == "run2"
    first = stub.ListRuns(pb.ListRunsRequest(page_size=2))
    assert [r.run_id for r in first.runs] == [ids[4], ids[3]]
    # A run arriving between pages must not shift the next page.
    stub.RunPipeline(requests(tiny_feed, label="late"))
    second = stub.ListRuns(pb.ListRunsRequest(page_size=2, page_token=first.next_page_token))
    assert [r.run_id for r in second.runs] == [ids[2], ids[1]]
    third = stub.ListRuns(pb.ListRunsRequest(page_size=2, page_token=second.next_page_token))
    assert [r.run_id for r in third.runs] == [ids[0]]
    assert third.next_page_token == ""
    status = stub.GetStatus(pb.GetStatusRequest())
    assert status.HasField("last_run_time")


def test_health_serving_and_reflection(serve) -> None:  # type: ignore[no-untyped-def]
    _, channel = serve()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "pipeline.v1.PipelineService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"pipeline.v1.PipelineService", "grpc.health.v1.Health"} <= names
