"""The pipeline container under a 1 GiB memory limit (dev's Cloud Run instance size)
refuses issue 17 row 7's feed (400 MiB of CSV in a 3 MB zip, whose run peaks near
1 GiB RSS and would need 1.9 GB by the model) with RESOURCE_EXHAUSTED and the
figures, is not OOM-killed, and runs a normal feed afterwards."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from harness.feeds import feed, write_padded_feed
from harness.fixtures import StackFactory
from harness.grpc_client import run_requests
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

MIB = 1024 * 1024


def test_row7_feed_under_1gib_is_refused_not_oom_killed(
    stacks: StackFactory, tmp_path: Path
) -> None:
    big = tmp_path / "row7.zip"
    assert write_padded_feed(big) > 400 * MIB
    box = stacks.pipeline("memory", mem_limit="1g")
    with grpc.insecure_channel(box.addr) as channel:
        stub = pb_grpc.PipelineServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.RunPipeline(run_requests(big), timeout=120)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        message = err.value.details() or ""
        assert "feed too large for this instance's memory" in message, message
        assert "instance's 1024 MiB (cgroup" in message, "the limit is read from the cgroup"
        assert "needs about 18" in message, message  # ~1870 MiB predicted

        wrapped = box.container.get_wrapped_container()
        wrapped.reload()
        assert wrapped.attrs["State"]["OOMKilled"] is False
        assert box.running()
        assert wrapped.attrs["RestartCount"] == 0

        run = stub.RunPipeline(run_requests(feed()), timeout=120)
        assert run.status == pb.RUN_STATUS_COMPLETED
        assert stub.ListRuns(pb.ListRunsRequest()).runs[0].run_id == run.run_id
