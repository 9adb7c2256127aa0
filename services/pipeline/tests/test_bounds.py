"""Bounded work per request (issue 17, rows 3, 4, 5, 9, 15): idle and slow
callers, callers that leave, oversized and undecodable input. Real servers on
loopback; every figure asserted is measured here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer

Serve = Callable[..., tuple[RunningServer, grpc.Channel]]
RUN_PIPELINE = "/pipeline.v1.PipelineService/RunPipeline"


def blocked(
    release: threading.Event, *first: pb.RunPipelineRequest
) -> Iterator[pb.RunPipelineRequest]:
    """Send ``first``, then nothing until ``release``; then end the stream."""
    yield from first
    release.wait()


def options(**kwargs: object) -> pb.RunPipelineRequest:
    return pb.RunPipelineRequest(options=pb.RunOptions(**kwargs))  # type: ignore[arg-type]


def feed(data: bytes, **kwargs: object) -> Iterator[pb.RunPipelineRequest]:
    yield options(**kwargs)
    yield pb.RunPipelineRequest(chunk=data)


def error_of(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


# --- row 3: idle streams cannot take the threads health and reads need ----------


def test_sixteen_idle_streams_leave_health_and_reads_answering(serve: Serve) -> None:
    _, channel = serve(max_concurrent_runs=2, stream_idle_seconds=30)
    stub = pb_grpc.PipelineServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    release = threading.Event()
    calls = [stub.RunPipeline.future(blocked(release), timeout=60) for _ in range(16)]
    try:
        # Four (two run slots + two) are admitted and wait; the rest are refused at once.
        wait_for(lambda: sum(c.done() for c in calls) == 12, timeout=5)
        refused = [c.exception() for c in calls if c.done()]
        assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}  # type: ignore[union-attr]
        assert "limit 4" in (refused[0].details() or "")  # type: ignore[union-attr]
        latencies = []
        for _ in range(200):
            start = time.perf_counter()
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            latencies.append(time.perf_counter() - start)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert p99(latencies) < 0.1, f"health p99 {p99(latencies) * 1000:.1f} ms"
        print(f"health p99 under 16 idle streams: {p99(latencies) * 1000:.2f} ms")
        # Reads too, many at once.
        assert stub.GetStatus(pb.GetStatusRequest(), timeout=2).healthy
        replies = [stub.ListRuns.future(pb.ListRunsRequest(), timeout=2) for _ in range(32)]
        assert all(r.result() is not None for r in replies)
    finally:
        release.set()
    for call in calls:
        call.exception(timeout=10)


def test_half_open_streams_are_let_go_after_the_idle_timeout(
    serve: Serve, tiny_feed: bytes
) -> None:
    _, channel = serve(max_concurrent_runs=2, stream_idle_seconds=1.0)
    stub = pb_grpc.PipelineServiceStub(channel)
    release = threading.Event()
    try:
        holders = [
            stub.RunPipeline.future(
                blocked(release, options(), pb.RunPipelineRequest(chunk=tiny_feed[:100])),
                timeout=30,
            )
            for _ in range(2)
        ]
        wait_for(lambda: stub.GetStatus(pb.GetStatusRequest()).active_runs == 2, timeout=5)
        started = time.monotonic()
        err = error_of(lambda: stub.RunPipeline(feed(tiny_feed), timeout=10))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for holder in holders:
            held = holder.exception(timeout=10)
            assert held is not None
            assert held.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
            assert "PIPELINE_STREAM_IDLE_SECONDS" in (held.details() or "")  # type: ignore[attr-defined]
        freed = wait_for(lambda: stub.GetStatus(pb.GetStatusRequest()).active_runs == 0, 5)
        print(f"slots freed {time.monotonic() - started:.2f} s after the idle streams stopped")
        assert freed < 2
        assert stub.RunPipeline(feed(tiny_feed), timeout=30).status == pb.RUN_STATUS_COMPLETED
    finally:
        release.set()


def test_timed_out_streams_leave_no_thread_behind(serve: Serve, tiny_feed: bytes) -> None:
    # One slot: three streams admitted, three reader threads. Three rounds of
    # three idle streams would exhaust them if any reader outlived its call.
    _, channel = serve(max_concurrent_runs=1, stream_idle_seconds=0.5)
    stub = pb_grpc.PipelineServiceStub(channel)
    release = threading.Event()
    try:
        for _ in range(3):
            idle = [stub.RunPipeline.future(blocked(release), timeout=30) for _ in range(3)]
            codes = {c.exception(timeout=10).code() for c in idle}  # type: ignore[union-attr]
            assert codes == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert stub.RunPipeline(feed(tiny_feed), timeout=30).status == pb.RUN_STATUS_COMPLETED
    finally:
        release.set()
    live = [t.name for t in threading.enumerate() if t.name.startswith("rpc-receive")]
    assert len(live) <= 3, live


def test_an_upload_that_trickles_for_ever_is_ended(serve: Serve, tiny_feed: bytes) -> None:
    _, channel = serve(stream_idle_seconds=1.0, upload_seconds=1.5)
    stub = pb_grpc.PipelineServiceStub(channel)

    def trickle() -> Iterator[pb.RunPipelineRequest]:
        yield options()
        for _ in range(100):
            yield pb.RunPipelineRequest(chunk=b"x")
            time.sleep(0.3)

    started = time.monotonic()
    err = error_of(lambda: stub.RunPipeline(trickle(), timeout=30))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "PIPELINE_UPLOAD_SECONDS" in (err.details() or "")
    assert time.monotonic() - started < 3


# --- row 9: a run whose caller has gone stops, and is never recorded completed ---


def test_a_caller_that_leaves_mid_run_fails_the_run_and_frees_its_slot(
    serve: Serve, tiny_feed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONG_STEP_SECONDS", "0.3")  # ten steps: three seconds
    _, channel = serve(pipeline_name="long")
    stub = pb_grpc.PipelineServiceStub(channel)
    call = stub.RunPipeline.future(feed(tiny_feed), timeout=60)
    wait_for(lambda: bool(stub.ListRuns(pb.ListRunsRequest()).runs), timeout=10)
    time.sleep(0.5)  # inside the steps
    left = time.monotonic()
    call.cancel()
    freed = wait_for(lambda: stub.GetStatus(pb.GetStatusRequest()).active_runs == 0, timeout=5)
    print(f"slot freed {freed:.2f} s after the caller left (steps of 0.3 s)")
    assert freed < 1.0
    run = stub.ListRuns(pb.ListRunsRequest()).runs[0]
    assert run.status == pb.RUN_STATUS_FAILED
    assert "caller went away" in run.error
    assert not run.output_available
    skipped = [s for s in run.step_results if s.status == pb.STEP_STATUS_SKIPPED]
    assert skipped
    assert "stopped" in skipped[-1].messages[0]
    assert time.monotonic() - left < 2


# --- rows 4, 5 and 15: input is bounded, and bad bytes are INVALID_ARGUMENT -----


def test_a_huge_run_id_is_not_found_with_a_short_message(
    stub: pb_grpc.PipelineServiceStub,
) -> None:
    for run_id in ("a" * 16_000, "Z" * 32, "0" * 31, "é" * 32):
        for call in (
            lambda run_id=run_id: stub.GetRun(pb.GetRunRequest(run_id=run_id)),
            lambda run_id=run_id: list(
                stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run_id))
            ),
        ):
            err = error_of(call)
            assert err.code() == grpc.StatusCode.NOT_FOUND
            assert len(err.details() or "") < 200
            assert "32 lowercase hexadecimal" in (err.details() or "")


def test_a_label_over_the_limit_is_invalid_argument(
    stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    err = error_of(lambda: stub.RunPipeline(feed(tiny_feed, label="x" * (5 * 1024 * 1024))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details() or "") == "label is 5242880 characters; the limit is 256"
    ok = stub.RunPipeline(feed(tiny_feed, label="é" * 256))
    assert ok.label == "é" * 256


def test_list_runs_fits_a_message_even_with_runs_stored_before_the_bounds(
    serve: Serve, tiny_feed: bytes, tmp_path: object
) -> None:
    running, channel = serve()
    stub = pb_grpc.PipelineServiceStub(channel)
    # Two runs written with 5 MiB labels, as an older server would have stored them.
    from pathlib import Path

    upload = Path(str(tmp_path)) / "feed.zip"
    upload.write_bytes(tiny_feed)
    for _ in range(2):
        run = pb.Run(
            run_id=running.store.new_run_id(),
            status=pb.RUN_STATUS_RUNNING,
            label="L" * (5 * 1024 * 1024),
        )
        run.started_at.GetCurrentTime()
        running.store.start(run, upload)
    page = stub.ListRuns(pb.ListRunsRequest(page_size=100))
    assert len(page.runs) == 2
    assert all(len(r.label) == 257 for r in page.runs)  # 256 and "…"
    assert page.ByteSize() < 4 * 1024 * 1024
    one = stub.GetRun(pb.GetRunRequest(run_id=page.runs[0].run_id))
    assert len(one.label) == 257


def test_a_page_ends_before_the_run_that_would_overfill_it(serve: Serve, tiny_feed: bytes) -> None:
    running, _ = serve()
    from pipeline_server.servicer import MAX_PAGE_BYTES

    upload = running.spool.dir / "feed.zip"
    upload.write_bytes(tiny_feed)
    big = pb.StepResult(step_name="s", messages=["m" * (1024 * 1024)])
    ids = []
    for _ in range(5):  # each about 1 MiB of step messages
        run = pb.Run(run_id=running.store.new_run_id(), status=pb.RUN_STATUS_RUNNING)
        run.started_at.GetCurrentTime()
        running.store.start(run, upload)
        run.status = pb.RUN_STATUS_FAILED
        run.step_results.append(big)
        running.store.finish(run, None)
        ids.append(run.run_id)
    first, token = running.store.page(100, "", max_bytes=MAX_PAGE_BYTES)
    assert 1 <= len(first) < 5
    assert token
    assert sum(r.ByteSize() for r in first) <= MAX_PAGE_BYTES
    seen = [r.run_id for r in first]
    while token:
        more, token = running.store.page(100, token, max_bytes=MAX_PAGE_BYTES)
        seen += [r.run_id for r in more]
    assert seen == ids[::-1], "every run once, newest first, across the cut pages"


def test_a_negative_declared_size_is_invalid_argument(
    stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    err = error_of(lambda: stub.RunPipeline(feed(tiny_feed, declared_size=-1)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "declared_size is -1" in (err.details() or "")


def test_many_long_unknown_step_names_give_a_short_message(
    stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    names = [f"{i:04d}" + "n" * 996 for i in range(1000)]  # 1 MB of names
    err = error_of(lambda: stub.RunPipeline(feed(tiny_feed, disabled_steps=names)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "and 995 more" in (err.details() or "")
    assert len(err.details() or "") <= 1000


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff\xff", b"\x0a\x02\xff\xfe"],  # not protobuf; a string field of bad UTF-8
    ids=["garbage", "bad-utf8"],
)
def test_undecodable_requests_are_invalid_argument(serve: Serve, payload: bytes) -> None:
    _, channel = serve()
    methods = ["/pipeline.v1.PipelineService/GetRun", "/grpc.health.v1.Health/Check"]
    if payload.startswith(b"\xff"):  # ListRuns has no string field 1 to hold bad UTF-8
        methods.append("/pipeline.v1.PipelineService/ListRuns")
    for method in methods:
        err = error_of(lambda method=method: channel.unary_unary(method)(payload, timeout=5))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, err)
        assert "not a valid" in (err.details() or "")
    download = channel.unary_stream("/pipeline.v1.PipelineService/DownloadOutput")
    err = error_of(lambda: list(download(payload, timeout=5)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # In a stream: the options, then a message that does not parse.
    upload = channel.stream_unary(RUN_PIPELINE)
    first = options().SerializeToString()
    err = error_of(lambda: upload(iter([first, payload]), timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid pipeline.v1.RunPipelineRequest" in (err.details() or "")
    stub = pb_grpc.PipelineServiceStub(channel)
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=5).active_runs == 0
