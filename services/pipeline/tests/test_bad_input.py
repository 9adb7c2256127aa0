"""Bad input never takes the server down: each kind gets its status code and a
message saying what is wrong, health stays SERVING, and the next good run works."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.zips import corrupt_first_deflate, with_extract_version

CHUNK = 64 * 1024


def requests(feed: bytes, **options: object) -> Iterator[pb.RunPipelineRequest]:
    yield pb.RunPipelineRequest(options=pb.RunOptions(**options))  # type: ignore[arg-type]
    for i in range(0, len(feed), CHUNK):
        yield pb.RunPipelineRequest(chunk=feed[i : i + CHUNK])


def rejected(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def assert_still_healthy(channel: grpc.Channel, good_feed: bytes) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    run = pb_grpc.PipelineServiceStub(channel).RunPipeline(requests(good_feed))
    assert run.status == pb.RUN_STATUS_COMPLETED


def zip_entries(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make_feed", "expected"),
    [
        (lambda build, good: b"this is not a zip", "not a zip"),
        (lambda build, good: corrupt_first_deflate(good), "compressed data is corrupt"),
        (lambda build, good: with_extract_version(good, 228), "zip version 22.8"),
        (lambda build, good: good[: len(good) // 2], "not a zip"),
        (
            lambda build, good: build({"stops.txt": None, "stop_times.txt": None}),
            "missing required GTFS files: stops.txt, stop_times.txt",
        ),
        (
            lambda build, good: zip_entries({"../escape.txt": b"x", "stops.txt": b"stop_id\n"}),
            "path outside the feed",
        ),
        (
            lambda build, good: zip_entries({"/etc/stops.txt": b"stop_id\n"}),
            "path outside the feed",
        ),
        (lambda build, good: zip_entries({"feed/stops.txt": b"stop_id\n"}), "inside a folder"),
        (lambda build, good: zip_entries({"stops.txt": b"0" * (64 * 1024 * 1024)}), "zip bomb"),
    ],
    ids=[
        "not-zip",
        "corrupt-deflate",
        "version-22.8",
        "truncated",
        "missing-files",
        "dotdot",
        "absolute",
        "folder",
        "bomb-ratio",
    ],
)
def test_invalid_feed_is_invalid_argument(
    serve,
    feed_with,
    tiny_feed: bytes,
    make_feed,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    _, channel = serve()
    stub = pb_grpc.PipelineServiceStub(channel)
    feed = make_feed(feed_with, tiny_feed)
    err = rejected(lambda: stub.RunPipeline(requests(feed)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (err.details() or "")
    assert stub.ListRuns(pb.ListRunsRequest()).runs == [], "a rejected upload is not a run"
    assert_still_healthy(channel, tiny_feed)


def test_uncompressed_cap(serve, tiny_feed: bytes) -> None:  # type: ignore[no-untyped-def]
    # A size limit, like the upload cap: RESOURCE_EXHAUSTED, "too large" (the console's 413).
    _, channel = serve(max_uncompressed_bytes=200)
    err = rejected(lambda: pb_grpc.PipelineServiceStub(channel).RunPipeline(requests(tiny_feed)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "feed too large: it uncompresses to more than 200 bytes" in (err.details() or "")


def test_upload_over_cap_is_resource_exhausted(serve, tiny_feed: bytes) -> None:  # type: ignore[no-untyped-def]
    _, channel = serve(max_upload_bytes=len(tiny_feed) - 1)
    stub = pb_grpc.PipelineServiceStub(channel)
    err = rejected(lambda: stub.RunPipeline(requests(tiny_feed)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "upload too large" in (err.details() or "")
    err = rejected(lambda: stub.RunPipeline(requests(b"", declared_size=10**9)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1000000000 bytes declared" in (err.details() or "")


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([pb.RunPipelineRequest(chunk=b"PK")], "first RunPipeline message must carry options"),
        ([], "first RunPipeline message must carry options"),
        ([pb.RunPipelineRequest(options=pb.RunOptions())], "no feed received"),
        (
            [
                pb.RunPipelineRequest(options=pb.RunOptions()),
                pb.RunPipelineRequest(options=pb.RunOptions()),
            ],
            "options may only be sent once",
        ),
        (
            [pb.RunPipelineRequest(options=pb.RunOptions(disabled_steps=["nope"]))],
            "unknown steps ['nope']",
        ),
    ],
    ids=["no-options", "empty-stream", "no-chunks", "options-twice", "unknown-step"],
)
def test_malformed_stream(stub: pb_grpc.PipelineServiceStub, messages, expected: str) -> None:  # type: ignore[no-untyped-def]
    err = rejected(lambda: stub.RunPipeline(iter(messages)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (err.details() or "")


def test_unknown_run_is_not_found(stub: pb_grpc.PipelineServiceStub) -> None:
    for call in (
        lambda: stub.GetRun(pb.GetRunRequest(run_id="does-not-exist")),
        lambda: list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id="does-not-exist"))),
    ):
        err = rejected(call)
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert "does-not-exist" in (err.details() or "")
    err = rejected(lambda: stub.GetRun(pb.GetRunRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_page_token(stub: pb_grpc.PipelineServiceStub) -> None:
    err = rejected(lambda: stub.ListRuns(pb.ListRunsRequest(page_token="garbage!")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rejected(lambda: stub.ListRuns(pb.ListRunsRequest(page_size=-1)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_run_beyond_concurrency_cap_is_resource_exhausted(
    serve,
    tiny_feed: bytes,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("SLOW_STEP_SECONDS", "1.5")
    _, channel = serve(pipeline_name="slow", max_concurrent_runs=1)
    stub = pb_grpc.PipelineServiceStub(channel)
    results: list[pb.Run] = []
    first = threading.Thread(target=lambda: results.append(stub.RunPipeline(requests(tiny_feed))))
    first.start()
    # Wait until the first run holds the only slot.
    for _ in range(100):
        if stub.GetStatus(pb.GetStatusRequest()).active_runs == 1:
            break
        threading.Event().wait(0.02)
    err = rejected(lambda: stub.RunPipeline(requests(tiny_feed)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit 1" in (err.details() or "")
    first.join()
    assert results[0].status == pb.RUN_STATUS_COMPLETED, "the running run is unaffected"
    assert stub.RunPipeline(requests(tiny_feed)).status == pb.RUN_STATUS_COMPLETED


def test_history_is_bounded_by_retention_with_its_zips(serve, settings, tiny_feed: bytes) -> None:  # type: ignore[no-untyped-def]
    # A short lease makes the store's upkeep (which applies retention) run every 0.1 s.
    _, channel = serve(retention_runs=3, run_lease_seconds=0.3)
    stub = pb_grpc.PipelineServiceStub(channel)
    ids = [stub.RunPipeline(requests(tiny_feed)).run_id for _ in range(5)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = [r.run_id for r in stub.ListRuns(pb.ListRunsRequest(page_size=100)).runs]
        if len(listed) == 3:
            break
        time.sleep(0.05)
    assert listed == ids[:1:-1], "the newest three are kept"
    for gone in ids[:2]:
        err = rejected(lambda gone=gone: stub.GetRun(pb.GetRunRequest(run_id=gone)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert not (settings.data_dir / "runs" / gone).exists(), "a deleted run leaves no zip"
    kept = stub.GetRun(pb.GetRunRequest(run_id=ids[2]))
    assert kept.output_available
    assert list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id=ids[2])))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a data disk that fills up (mounting needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_data_disk_is_resource_exhausted_and_the_space_comes_back(  # type: ignore[no-untyped-def]
    serve, small_disk: Path, tiny_feed: bytes
) -> None:
    _, channel = serve(data_dir=small_disk)
    stub = pb_grpc.PipelineServiceStub(channel)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("stops.txt", os.urandom(6 * 1024 * 1024))  # more than the disk
    incompressible = buffer.getvalue()
    err = rejected(lambda: stub.RunPipeline(requests(incompressible)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "no space left on this instance's data disk" in (err.details() or "")
    assert not list((small_disk / "spool").rglob("*.upload")), "the partial upload is gone"
    assert_still_healthy(channel, tiny_feed)
