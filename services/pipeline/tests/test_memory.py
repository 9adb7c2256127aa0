"""Memory per run, predicted and enforced (issue 17, row 7 and item 3).

The limit comes from real files laid out as cgroup v2 / v1 and /proc lay them
out; the runs go through a real server with the row-7 feed: 40 × 10 MiB of CSV,
400 MiB uncompressed in a 3.6 MB zip, inside every per-entry cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness.feeds import write_padded_feed
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.memory import MIB, MODEL, Limit, MemoryBudget, detect_limit

GIB = 1024 * MIB
CHUNK = 1024 * 1024


def requests(feed: bytes) -> Iterator[pb.RunPipelineRequest]:
    yield pb.RunPipelineRequest(options=pb.RunOptions())
    for i in range(0, len(feed), CHUNK):
        yield pb.RunPipelineRequest(chunk=feed[i : i + CHUNK])


def refused(stub: pb_grpc.PipelineServiceStub, feed: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        stub.RunPipeline(requests(feed))
    return err.value


@pytest.fixture(scope="module")
def feed_400mib(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("row7") / "feed.zip"
    assert write_padded_feed(path) > 400 * MIB
    return path.read_bytes()


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


MEMINFO = "MemTotal:       24683060 kB\nMemFree:        22000000 kB\n"


@pytest.mark.parametrize(
    ("configured", "files", "expected"),
    [
        (0, {"memory.max": "1073741824\n"}, Limit(GIB, "cgroup v2 memory.max")),
        (
            0,
            {"memory.max": "max\n", "memory/memory.limit_in_bytes": "536870912\n"},
            Limit(512 * MIB, "cgroup v1 memory.limit_in_bytes"),
        ),
        (
            0,
            {"memory/memory.limit_in_bytes": "9223372036854771712\n"},
            Limit(24683060 * 1024, "MemTotal (no cgroup limit)"),
        ),
        (0, {"memory.max": "max\n"}, Limit(24683060 * 1024, "MemTotal (no cgroup limit)")),
        (0, {"memory.max": "garbage\n"}, Limit(24683060 * 1024, "MemTotal (no cgroup limit)")),
        (2 * GIB, {"memory.max": "1073741824\n"}, Limit(2 * GIB, "PIPELINE_MEMORY_LIMIT_BYTES")),
    ],
    ids=["v2", "v2-max-then-v1", "v1-unlimited", "v2-max-only", "garbage", "configured"],
)
def test_limit_is_read_from_the_cgroup(
    tmp_path: Path, configured: int, files: dict[str, str], expected: Limit
) -> None:
    cgroup = _files(tmp_path / "cgroup", files)
    meminfo = _files(tmp_path, {"meminfo": MEMINFO}) / "meminfo"
    assert detect_limit(configured, cgroup, meminfo) == expected


def test_in_flight_runs_share_the_budget() -> None:
    budget = MemoryBudget(Limit(GIB, "test"), reserve_bytes=160 * MIB)
    one = MODEL.largest_feed(budget.usable // 2)
    first = budget.admit(one, 0, 0)
    second = budget.admit(one, 0, 0)
    with pytest.raises(Exception, match="not enough memory free") as err:
        budget.admit(one, 0, 0)
    assert "too large" not in str(err.value), "busy, not too large: the console's 429, not 413"
    budget.release(first)
    budget.release(second)
    assert budget.held == 0
    with pytest.raises(Exception, match="too large for this instance's memory"):
        budget.admit(budget.largest_feed() + MIB, 0, 0)


def test_400mib_feed_under_1gib_is_refused_with_the_figures(
    serve, tiny_feed: bytes, feed_400mib: bytes
) -> None:  # type: ignore[no-untyped-def]
    # The cap left high: admission itself must refuse, from the prediction.
    _, channel = serve(memory_limit_bytes=GIB, max_uncompressed_bytes=4 * GIB)
    stub = pb_grpc.PipelineServiceStub(channel)
    err = refused(stub, feed_400mib)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    message = err.details() or ""
    assert "feed too large for this instance's memory" in message
    assert "400 MiB uncompressed" in message
    assert "needs about 18" in message, "~1870 MiB: 47 M fields"
    assert "1024 MiB (PIPELINE_MEMORY_LIMIT_BYTES" in message
    assert stub.ListRuns(pb.ListRunsRequest()).runs == [], "a refused feed is not a run"
    assert stub.RunPipeline(requests(tiny_feed)).status == pb.RUN_STATUS_COMPLETED


def test_default_cap_follows_from_the_memory_limit(
    serve, tiny_feed: bytes, feed_400mib: bytes
) -> None:  # type: ignore[no-untyped-def]
    # 512 MiB: no feed over (512 - 160 - 192) / 1.25 = 128 MiB could fit, however
    # few its fields; decompression stops there.
    _, channel = serve(memory_limit_bytes=512 * MIB)
    stub = pb_grpc.PipelineServiceStub(channel)
    start = time.monotonic()
    err = refused(stub, feed_400mib)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    cap = MODEL.largest_feed(512 * MIB - 160 * MIB)
    assert cap == 128 * MIB
    message = err.details() or ""
    assert f"uncompresses to more than {cap} bytes" in message
    assert "too large" in message, "the console answers 413"
    assert "runs may use 352 MiB of this instance's 512 MiB" in message
    assert time.monotonic() - start < 20, "decompression stops at the cap"
    assert stub.RunPipeline(requests(tiny_feed)).status == pb.RUN_STATUS_COMPLETED


def test_a_run_in_flight_holds_its_memory(
    serve, tiny_feed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLOW_STEP_SECONDS", "1.5")
    # Room for one small run's prediction beside the server, not for two.
    one_run = MODEL.predict(MIB, 0, len(tiny_feed))
    _, channel = serve(
        pipeline_name="slow",
        memory_limit_bytes=160 * MIB + one_run + one_run // 2,
        max_uncompressed_bytes=MIB,  # so the tiny feed predicts below one_run
    )
    stub = pb_grpc.PipelineServiceStub(channel)
    results: list[pb.Run] = []
    first = threading.Thread(target=lambda: results.append(stub.RunPipeline(requests(tiny_feed))))
    first.start()
    for _ in range(200):
        if stub.GetStatus(pb.GetStatusRequest()).active_runs == 1:
            break
        time.sleep(0.02)
    time.sleep(0.2)  # past inspection: its memory is reserved
    err = refused(stub, tiny_feed)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "not enough memory free for this run now" in (err.details() or "")
    assert "too large" not in (err.details() or ""), "busy: the console's 429"
    first.join()
    assert results[0].status == pb.RUN_STATUS_COMPLETED
    assert stub.RunPipeline(requests(tiny_feed)).status == pb.RUN_STATUS_COMPLETED, "released"
