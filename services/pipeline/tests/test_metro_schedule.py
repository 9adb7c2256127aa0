"""The real pipeline (pipelines/metro_schedule) served over gRPC, on feeds from
tools/generate_feed.py: a clean feed completes with the counts the generator
planted; a feed with a broken stop hierarchy is a failed run with findings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import grpc
import pytest

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer
from testkit.scripts import load_tool

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_tool("generate_feed.py")


@pytest.fixture
def metro(serve: Callable[..., tuple[RunningServer, grpc.Channel]]) -> pb_grpc.PipelineServiceStub:
    _, channel = serve(pipelines_dir=REPO / "pipelines", pipeline_name="metro_schedule")
    return pb_grpc.PipelineServiceStub(channel)


def requests(feed: bytes) -> Iterator[pb.RunPipelineRequest]:
    yield pb.RunPipelineRequest(options=pb.RunOptions(label="generated"))
    for i in range(0, len(feed), 256 * 1024):
        yield pb.RunPipelineRequest(chunk=feed[i : i + 256 * 1024])


def test_steps_in_the_order_of_the_original_deployment(metro: pb_grpc.PipelineServiceStub) -> None:
    names = [s.name for s in metro.ListSteps(pb.ListStepsRequest()).steps]
    assert names == [
        "init",
        "update_feed_info",
        "merge_stops",
        "remove_unused_stops",
        "validate_stop_hierarchy",
    ]


def test_clean_feed_completes_with_planted_counts(
    metro: pb_grpc.PipelineServiceStub, generator: ModuleType
) -> None:
    run = metro.RunPipeline(requests(generator.build_feed(20_000)))
    assert run.status == pb.RUN_STATUS_COMPLETED, run.error
    steps = {s.step_name: s for s in run.step_results}
    merge_rows = {c.file: c for c in steps["merge_stops"].row_counts}["stops.txt"]
    assert merge_rows.rows_before - merge_rows.rows_after == generator.MERGED_STOPS
    unused_rows = {c.file: c for c in steps["remove_unused_stops"].row_counts}["stops.txt"]
    assert unused_rows.rows_before - unused_rows.rows_after == generator.REMOVED_STOPS
    assert steps["merge_stops"].findings, "merge counts are reported as findings"
    assert steps["validate_stop_hierarchy"].status == pb.STEP_STATUS_SUCCESS


def test_broken_hierarchy_fails_the_run_with_findings(
    metro: pb_grpc.PipelineServiceStub, generator: ModuleType
) -> None:
    run = metro.RunPipeline(requests(generator.build_feed(20_000, broken_hierarchy=True)))
    assert run.status == pb.RUN_STATUS_FAILED
    assert "validate_stop_hierarchy" in run.error
    validate = run.step_results[-1]
    assert validate.status == pb.STEP_STATUS_FAILED
    errors = [f for f in validate.findings if f.severity == "error"]
    assert len(errors) == generator.BROKEN_HIERARCHY_VIOLATIONS
    assert not run.output_available
