"""Faults: the pipeline stops, comes back, or dies mid-run; the console copes.

Each test gets its own stack (the `stacks` factory): they stop and kill
containers, which must not disturb the shared contract-test stack.
"""

from __future__ import annotations

import concurrent.futures
import time

import grpc
import httpx
import pytest

from harness import feeds
from harness.fixtures import StackFactory
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

pytestmark = pytest.mark.docker

# The console's deadline for short calls (CONSOLE_CALL_TIMEOUT_SECONDS default)
# and a margin for HTTP and scheduling on a 2-core machine.
CALL_DEADLINE_S = 10.0
MARGIN_S = 3.0
RECOVERY_S = 30.0
# Rows of stop_times.txt for a run that lasts seconds (about 5 s here).
LONG_RUN_ROWS = 3_000_000


def _timed_get(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=CALL_DEADLINE_S + MARGIN_S * 2)
    return response, time.monotonic() - started


def _eventually(url: str, want: int, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            response = httpx.get(url, timeout=CALL_DEADLINE_S + MARGIN_S)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == want:
            return response
        if time.monotonic() > deadline:
            got = response.status_code if response is not None else "no answer"
            raise AssertionError(f"{url}: wanted {want} within {within}s, last {got}")
        time.sleep(0.5)


def test_pipeline_down_is_503_within_the_deadline_and_recovers_without_restart(
    stacks: StackFactory,
) -> None:
    stack = stacks.stack()
    console = stack.console.url
    console_id = stack.console.id
    stack.pipeline.stop(timeout=5)

    for path in ("/readyz", "/api/status", "/api/steps", "/api/dag", "/api/runs"):
        response, took = _timed_get(f"{console}{path}")
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"]["code"], path
        assert took < CALL_DEADLINE_S + MARGIN_S, f"{path} took {took:.1f}s"
    assert httpx.get(f"{console}/healthz", timeout=5).status_code == 200, "liveness stays up"

    # A new pipeline container on the same port: the console finds it by itself.
    stacks.pipeline(stack.id, port=stack.pipeline.port)
    _eventually(f"{console}/readyz", 200, RECOVERY_S)
    assert httpx.get(f"{console}/api/status", timeout=CALL_DEADLINE_S).status_code == 200
    assert stack.console.running()
    assert stack.console.id == console_id, "the console was not restarted"


def test_pipeline_killed_mid_run_never_reports_the_run_completed(stacks: StackFactory) -> None:
    stack = stacks.stack()
    feed = feeds.feed(LONG_RUN_ROWS)

    def upload() -> httpx.Response:
        return httpx.post(
            f"{stack.console.url}/api/runs",
            files={"feed": ("long.zip", feed, "application/zip")},
            timeout=120,
        )

    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        grpc.insecure_channel(stack.pipeline.addr) as channel,
    ):
        pending = pool.submit(upload)
        stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
        deadline = time.monotonic() + 60
        while stub.GetStatus(pb.GetStatusRequest(), timeout=5).active_runs < 1:
            assert not pending.done(), (
                f"run ended before it could be killed: {pending.result().text}"
            )
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        stack.pipeline.kill()
        response = pending.result(timeout=120)

    # The upload's answer: an error, or a run that is not completed.
    if response.status_code == 201:
        assert response.json()["status"] != "completed", response.text
    else:
        assert response.status_code in (502, 503, 504), response.text
        assert response.json()["error"]["code"]

    # After a replacement comes up, history never shows that run completed.
    stacks.pipeline(stack.id, port=stack.pipeline.port)
    _eventually(f"{stack.console.url}/readyz", 200, RECOVERY_S)
    runs = httpx.get(f"{stack.console.url}/api/runs", timeout=CALL_DEADLINE_S).json()["runs"]
    assert not [r for r in runs if r["label"] == "long.zip" and r["status"] == "completed"]
