"""The run store under faults, over real containers: a pipeline killed mid-run and
started again, two pipelines sharing one store behind one console, and the
store's PostgreSQL stopped and started again.

Each pipeline keeps its run store in a host folder mounted as its
PIPELINE_DATA_DIR (or in a PostgreSQL container), so the store outlives the
container the way Cloud SQL and a bucket outlive a Cloud Run instance.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from harness import feeds
from harness.fixtures import StackFactory
from harness.postgres import Postgres, start_postgres
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

pytestmark = pytest.mark.docker

# A short lease: an abandoned run is failed within seconds (the default is 30 s).
FAST_STORE = {"PIPELINE_RUN_LEASE_SECONDS": "3"}
CALL_S = 15.0
RECOVERY_S = 45.0
LONG_RUN_ROWS = 3_000_000


def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within:.0f}s")
        time.sleep(0.25)
    return time.monotonic() - started


def status_of(url: str) -> int:
    try:
        return httpx.get(url, timeout=CALL_S).status_code
    except httpx.HTTPError:
        return 0


def run_through(console: str, feed: bytes, label: str) -> dict[str, object]:
    response = httpx.post(
        f"{console}/api/runs", files={"feed": (label, feed, "application/zip")}, timeout=120
    )
    assert response.status_code == 201, response.text
    run: dict[str, object] = response.json()
    assert run["status"] == "completed", run
    return run


def downloaded(console: str, run_id: object) -> bytes:
    response = httpx.get(f"{console}/api/runs/{run_id}/output", timeout=CALL_S)
    assert response.status_code == 200, response.text
    return response.content


def test_a_pipeline_killed_mid_run_fails_that_run_and_keeps_every_earlier_one(
    stacks: StackFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    stack_id = "kill9-" + tmp_path.name[-6:]
    pipeline = stacks.pipeline(stack_id, env=FAST_STORE, data_dir=store)
    console = stacks.console(stack_id, pipeline.addr).url
    earlier = [run_through(console, feeds.feed(), f"earlier-{i}.zip") for i in range(2)]

    long_feed = feeds.feed(LONG_RUN_ROWS)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        grpc.insecure_channel(pipeline.addr) as channel,
    ):
        upload = pool.submit(
            httpx.post,
            f"{console}/api/runs",
            files={"feed": ("long.zip", long_feed, "application/zip")},
            timeout=120,
        )
        stub = pipeline_pb2_grpc.PipelineServiceStub(channel)

        def recorded_as_running() -> bool:
            assert not upload.done(), f"the run ended before the kill: {upload.result().text}"
            status = stub.GetStatus(pb.GetStatusRequest(), timeout=5)
            return status.active_runs_all_instances >= 1

        eventually(recorded_as_running, 60, "the long run is recorded as running")
        pipeline.kill()
        answer = upload.result(timeout=120)
    assert answer.status_code != 201 or answer.json()["status"] != "completed", answer.text

    pipeline.start_again()  # the same container: a crashed instance restarted
    eventually(lambda: status_of(f"{console}/readyz") == 200, RECOVERY_S, "console ready")

    def long_run() -> dict[str, object] | None:
        runs = httpx.get(f"{console}/api/runs", timeout=CALL_S).json()["runs"]
        return next((r for r in runs if r["label"] == "long.zip"), None)

    took = eventually(
        lambda: (run := long_run()) is not None and run["status"] == "failed",
        RECOVERY_S,
        "the killed run is marked failed",
    )
    failed = long_run()
    assert failed is not None
    assert "abandoned" in str(failed["error"]), failed
    print(f"killed run marked failed {took:.1f}s after the restart")

    listed = {
        r["run_id"]: r for r in httpx.get(f"{console}/api/runs", timeout=CALL_S).json()["runs"]
    }
    for run in earlier:
        assert listed[run["run_id"]]["status"] == "completed"
        assert len(downloaded(console, run["run_id"])) == run["output_size"]
    leftovers = [p for p in (store / "spool").rglob("*.upload")]
    assert leftovers == [], "the killed process's spooled upload was removed at restart"


def test_two_pipelines_sharing_one_store_serve_every_run_through_one_console(
    stacks: StackFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    stack_id = "shared-" + tmp_path.name[-6:]
    a = stacks.pipeline(stack_id, env=FAST_STORE, data_dir=store)
    b = stacks.pipeline(stack_id, env=FAST_STORE, data_dir=store)
    console = stacks.console(stack_id, [a.addr, b.addr]).url
    runs = [run_through(console, feeds.feed(), f"shared-{i}.zip") for i in range(4)]

    for addr in (a.addr, b.addr):
        with grpc.insecure_channel(addr) as channel:
            stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
            for run in runs:
                seen = stub.GetRun(pb.GetRunRequest(run_id=str(run["run_id"])), timeout=CALL_S)
                assert seen.status == pb.RUN_STATUS_COMPLETED, addr
    # round_robin alternates: each zip is fetched through both instances in turn.
    for run in runs:
        for _ in range(2):
            assert len(downloaded(console, run["run_id"])) == run["output_size"]
    listed = httpx.get(f"{console}/api/runs", timeout=CALL_S).json()["runs"]
    assert {r["run_id"] for r in runs} <= {r["run_id"] for r in listed}


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A PostgreSQL container of this test's own: the test stops and starts it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.remove()


def test_the_database_stopped_and_started_turns_readiness_503_and_back_losing_no_run(
    stacks: StackFactory, tmp_path: Path, own_postgres: Postgres
) -> None:
    stack_id = "pgdown-" + tmp_path.name[-6:]
    env = {**FAST_STORE, "PIPELINE_DATABASE_URL": own_postgres.url}
    pipeline = stacks.pipeline(stack_id, env=env, data_dir=tmp_path / "zips")
    console = stacks.console(stack_id, pipeline.addr).url
    before = run_through(console, feeds.feed(), "before-outage.zip")

    own_postgres.stop()
    took = eventually(
        lambda: status_of(f"{console}/readyz") == 503, RECOVERY_S, "readiness turns 503"
    )
    print(f"readiness 503 {took:.1f}s after the database stopped")
    refused = httpx.get(f"{console}/api/runs", timeout=CALL_S)
    assert refused.status_code == 503, refused.text
    with grpc.insecure_channel(pipeline.addr) as channel:
        status = pipeline_pb2_grpc.PipelineServiceStub(channel).GetStatus(
            pb.GetStatusRequest(), timeout=CALL_S
        )
    assert not status.healthy
    assert "database unavailable" in status.unhealthy_reason

    own_postgres.start()
    took = eventually(
        lambda: status_of(f"{console}/readyz") == 200, RECOVERY_S, "readiness back to 200"
    )
    print(f"readiness 200 {took:.1f}s after the database came back")
    assert pipeline.running(), "the pipeline rode out the outage without a restart"
    kept = httpx.get(f"{console}/api/runs/{before['run_id']}", timeout=CALL_S).json()
    assert kept["status"] == "completed"
    assert len(downloaded(console, before["run_id"])) == before["output_size"]
    run_through(console, feeds.feed(), "after-outage.zip")
