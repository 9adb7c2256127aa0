"""Pipeline servers over one run store: what a console sees across instances,
restarts and a store that goes away and comes back (real servers, real SQLite)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer

CHUNK = 64 * 1024
Serve = Callable[..., tuple[RunningServer, grpc.Channel]]


def requests(feed: bytes, **options: object) -> Iterator[pb.RunPipelineRequest]:
    yield pb.RunPipelineRequest(options=pb.RunOptions(**options))  # type: ignore[arg-type]
    for i in range(0, len(feed), CHUNK):
        yield pb.RunPipelineRequest(chunk=feed[i : i + CHUNK])


def health(channel: grpc.Channel) -> int:
    return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status)


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_run_on_one_instance_is_read_and_downloaded_from_another(
    serve: Serve, tiny_feed: bytes
) -> None:
    _, channel_a = serve()
    _, channel_b = serve()  # same PIPELINE_DATA_DIR: the same store
    a, b = pb_grpc.PipelineServiceStub(channel_a), pb_grpc.PipelineServiceStub(channel_b)
    run = a.RunPipeline(requests(tiny_feed, label="on a"))
    assert run.status == pb.RUN_STATUS_COMPLETED
    seen = b.GetRun(pb.GetRunRequest(run_id=run.run_id))
    assert seen == run
    assert [r.run_id for r in b.ListRuns(pb.ListRunsRequest()).runs] == [run.run_id]
    zip_from_b = b"".join(
        m.chunk for m in b.DownloadOutput(pb.DownloadOutputRequest(run_id=run.run_id))
    )
    assert len(zip_from_b) == run.output_size
    assert b.GetStatus(pb.GetStatusRequest()).last_run_time == run.finished_at


def test_history_survives_a_restart(serve: Serve, tiny_feed: bytes) -> None:
    first, channel = serve()
    run = pb_grpc.PipelineServiceStub(channel).RunPipeline(requests(tiny_feed))
    channel.close()
    first.stop(None)
    _, channel = serve(port=first.port)
    stub = pb_grpc.PipelineServiceStub(channel)
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).status == pb.RUN_STATUS_COMPLETED
    assert list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run.run_id)))


def test_a_store_away_at_start_is_not_serving_with_the_reason_until_it_returns(
    serve: Serve, tmp_path: Path, tiny_feed: bytes
) -> None:
    blocked = tmp_path / "db"
    blocked.write_text("a file where the database's folder should be")
    _, channel = serve(database_url=f"sqlite:///{blocked / 'runs.sqlite3'}", run_lease_seconds=0.3)
    stub = pb_grpc.PipelineServiceStub(channel)
    assert health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    status = stub.GetStatus(pb.GetStatusRequest())
    assert not status.healthy
    assert "database unavailable" in status.unhealthy_reason
    with pytest.raises(grpc.RpcError) as err:
        stub.RunPipeline(requests(tiny_feed))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no run started: database unavailable" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.ListRuns(pb.ListRunsRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE

    blocked.unlink()
    blocked.mkdir()  # the database comes back
    eventually(lambda: health(channel) == health_pb2.HealthCheckResponse.SERVING)
    assert stub.GetStatus(pb.GetStatusRequest()).unhealthy_reason == ""
    assert stub.RunPipeline(requests(tiny_feed)).status == pb.RUN_STATUS_COMPLETED


def test_a_store_lost_while_serving_turns_not_serving_and_back(
    serve: Serve,
    settings,
    tiny_feed: bytes,  # type: ignore[no-untyped-def]
) -> None:
    zips = settings.data_dir / "zips"
    _, channel = serve(output_url=zips.as_uri(), run_lease_seconds=0.3)
    stub = pb_grpc.PipelineServiceStub(channel)
    run = stub.RunPipeline(requests(tiny_feed))
    assert health(channel) == health_pb2.HealthCheckResponse.SERVING
    moved = settings.data_dir / "zips-away"
    zips.rename(moved)
    zips.write_text("the bucket is gone")  # neither readable nor writable as a folder
    eventually(lambda: health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING)
    assert "blob store unavailable" in stub.GetStatus(pb.GetStatusRequest()).unhealthy_reason
    zips.unlink()
    moved.rename(zips)
    eventually(lambda: health(channel) == health_pb2.HealthCheckResponse.SERVING)
    assert list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run.run_id)))


def test_status_counts_runs_of_this_instance_and_of_all(serve: Serve, tiny_feed: bytes) -> None:
    _, channel = serve()
    status = pb_grpc.PipelineServiceStub(channel).GetStatus(pb.GetStatusRequest())
    assert status.active_runs == 0
    assert status.active_runs_all_instances == 0


def test_uploads_left_by_a_killed_process_are_removed_at_start(
    serve: Serve,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    dead = settings.data_dir / "spool" / "vm-1234-abcdef"
    dead.mkdir(parents=True)
    (dead / ".owner-lock").touch()
    (dead / "0123.upload").write_bytes(b"x" * 1000)
    live, _ = serve()
    assert not dead.exists(), "a dead process's spool is removed"
    assert live.spool.dir.exists(), "the live one's is kept"
    neighbour, _ = serve()
    assert live.spool.dir.exists(), "a second instance leaves the first one's spool alone"
    neighbour.stop(None)
    assert not neighbour.spool.dir.exists()
    shutil.rmtree(settings.data_dir / "spool", ignore_errors=True)
