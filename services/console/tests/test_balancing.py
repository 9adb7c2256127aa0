"""One console over several pipelines: PIPELINE_ADDR lists them, the console's
one channel spreads calls over them with round_robin, skips a backend that died
or says NOT_SERVING, and is ready while at least one backend is SERVING.

Real gRPC servers throughout: pipeline-server processes (each with its own
store, so a run is found only on the instance that ran it) and, where a test
must flip a backend's health, in-process stand-ins.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from console_server.grpc_client import channel_options
from console_server.settings import Settings
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.net import free_port
from testkit.servers import (
    TINY_FEED,
    ConsoleServer,
    Launcher,
    PipelineServer,
    StandIn,
    start_stand_in,
)
from testkit.zips import make_zip

FAST = {"CONSOLE_CALL_TIMEOUT_SECONDS": "2", "CONSOLE_READY_TIMEOUT_SECONDS": "2"}
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


def versions(client: httpx.Client, calls: int) -> Counter[str]:
    """Which pipeline (its IMAGE_COMMIT) answered each of ``calls`` GET /api/status."""
    seen: Counter[str] = Counter()
    for _ in range(calls):
        response = client.get("/api/status")
        assert response.status_code == 200, response.text
        seen[response.json()["version"]] += 1
    return seen


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    return body


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check()`` until true; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout} s")


# --- the channel's configuration ---------------------------------------------------


def test_one_address_keeps_the_plain_channel() -> None:
    options = dict(channel_options(Settings(pipeline_addr="127.0.0.1:50051")))
    config = json.loads(options["grpc.service_config"])
    assert "loadBalancingConfig" not in config
    assert "healthCheckConfig" not in config


def test_several_addresses_add_round_robin_and_keep_every_other_option() -> None:
    one = channel_options(Settings(pipeline_addr="127.0.0.1:50051"))
    many = channel_options(Settings(pipeline_addr="127.0.0.1:50051,127.0.0.1:50052"))
    assert [name for name, _ in one] == [name for name, _ in many]
    differ = {name for (name, a), (_, b) in zip(one, many, strict=True) if a != b}
    assert differ == {"grpc.service_config"}
    config = json.loads(dict(many)["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}
    assert config["methodConfig"] == json.loads(dict(one)["grpc.service_config"])["methodConfig"]


# --- two real pipelines -------------------------------------------------------------


@dataclass
class Two:
    launch: Launcher
    a: PipelineServer
    b: PipelineServer
    console: ConsoleServer


@pytest.fixture
def two(launch: Launcher) -> Two:
    a, b = (launch.pipeline(IMAGE_COMMIT=f"pipeline-{name}") for name in ("a", "b"))
    console = launch.console(f"{a.addr},{b.addr}", **FAST)
    console.wait_ready(timeout=15)
    return Two(launch, a, b, console)


def find_run(addr: str, run_id: str) -> bool:
    """Whether the pipeline at ``addr`` knows ``run_id`` (asked directly, not via the console)."""
    with grpc.insecure_channel(addr) as channel:
        try:
            pb_grpc.PipelineServiceStub(channel).GetRun(pb.GetRunRequest(run_id=run_id), timeout=5)
        except grpc.RpcError as exc:
            code = exc.code()  # a grpc.Call too
            if code != grpc.StatusCode.NOT_FOUND:
                raise
            return False
    return True


def test_calls_land_on_both_pipelines(two: Two) -> None:
    pipelines = (two.a, two.b)
    with two.console.client() as client:
        seen = versions(client, 20)
        # round_robin alternates: about half each, never all on one.
        assert set(seen) == {"pipeline-a", "pipeline-b"}, seen
        assert min(seen.values()) >= 5, seen

        feed = make_zip(TINY_FEED)
        run_ids = []
        for i in range(4):
            response = client.post("/api/runs", files={"feed": (f"f{i}.zip", feed)})
            assert response.status_code == 201, response.text
            run_ids.append(response.json()["run_id"])
    # Each pipeline keeps its own runs here, so each run is on exactly one of them.
    holders = {
        run_id: [p.addr for p in pipelines if find_run(p.addr, run_id)] for run_id in run_ids
    }
    assert all(len(h) == 1 for h in holders.values()), holders
    assert {h[0] for h in holders.values()} == {p.addr for p in pipelines}, holders


def test_killing_one_pipeline_keeps_the_console_answering(two: Two) -> None:
    launch, a, b, console = two.launch, two.a, two.b, two.console
    with console.client() as client:
        assert set(versions(client, 4)) == {"pipeline-a", "pipeline-b"}

        a.signal(signal.SIGKILL)
        assert a.popen is not None
        a.popen.wait(5)
        # At once: the kernel resets a's connection, round_robin drops that
        # subchannel, and a call already on it is retried (UNAVAILABLE) on b.
        start = time.monotonic()
        assert versions(client, 10) == {"pipeline-b": 10}
        assert client.get("/readyz").status_code == 200
        assert time.monotonic() - start < 5

        # Both gone: not ready, and the message says none is SERVING.
        b.signal(signal.SIGKILL)
        assert b.popen is not None
        b.popen.wait(5)
        readyz = error(client.get("/readyz"), 503)
        assert readyz["code"] == "pipeline_not_ready"
        assert "none of the 2 pipeline backends is SERVING" in readyz["message"]
        assert error(client.get("/api/status"), 503)["code"] == "pipeline_unavailable"
        assert client.get("/healthz").status_code == 200

        # One back on its port: ready again, calls go to it alone.
        launch.restart(a)
        assert console.wait_ready(timeout=15) < 10
        assert versions(client, 4) == {"pipeline-a": 4}

        # The other back too: both take calls again.
        launch.restart(b)
        until(lambda: len(versions(client, 4)) == 2, 10, "b back in the rotation")


def test_console_started_before_one_of_its_pipelines(launch: Launcher) -> None:
    a = launch.pipeline(IMAGE_COMMIT="pipeline-a")
    b_port = free_port()
    console = launch.console(f"{a.addr},127.0.0.1:{b_port}", **FAST)
    # Ready with one of two: the missing one is skipped, not waited for.
    assert console.wait_ready(timeout=10) < 10
    with console.client() as client:
        assert versions(client, 6) == {"pipeline-a": 6}
        launch.pipeline(port=b_port, IMAGE_COMMIT="pipeline-b")
        until(lambda: len(versions(client, 4)) == 2, 10, "late pipeline in the rotation")


# --- health: NOT_SERVING backends get no calls ----------------------------------------


@pytest.fixture
def stand_ins() -> Iterator[list[StandIn]]:
    servers = [start_stand_in(), start_stand_in()]
    yield servers
    for server in servers:
        server.stop()


def status_calls(stand_in: StandIn) -> int:
    return stand_in.servicer.methods().count("GetStatus")


def test_a_not_serving_pipeline_gets_no_calls_and_none_serving_is_not_ready(
    launch: Launcher, stand_ins: list[StandIn]
) -> None:
    a, b = stand_ins
    console = launch.console(f"127.0.0.1:{a.port},127.0.0.1:{b.port}", **FAST)
    console.wait_ready(timeout=10)
    with console.client() as client:
        for _ in range(6):
            assert client.get("/api/status").status_code == 200
        assert status_calls(a) >= 2
        assert status_calls(b) >= 2

        # a says NOT_SERVING (draining, its store down): gRPC's client-side
        # health check (a Watch per backend) takes it out of the rotation.
        a.health.set("", NOT_SERVING)

        def none_on_a() -> bool:
            before = status_calls(a)
            for _ in range(4):
                assert client.get("/api/status").status_code == 200
            return status_calls(a) == before

        # The Watch pushes the change; the channel acts on it within moments.
        took = until(none_on_a, 5, "a out of the rotation")
        before = status_calls(a), status_calls(b)
        for _ in range(10):
            assert client.get("/api/status").status_code == 200
            assert client.get("/readyz").status_code == 200
        assert status_calls(a) == before[0], "a NOT_SERVING backend got a call"
        assert status_calls(b) == before[1] + 10
        assert took < 1, f"took {took:.2f} s"

        # Neither SERVING: /readyz and calls are 503.
        b.health.set("", NOT_SERVING)
        until(lambda: client.get("/readyz").status_code == 503, 5, "/readyz 503")
        readyz = error(client.get("/readyz"), 503)
        assert "none of the 2 pipeline backends is SERVING" in readyz["message"]
        assert error(client.get("/api/status"), 503)["code"] == "pipeline_unavailable"

        # a SERVING again: ready, and a takes the calls.
        a.health.set("", SERVING)
        until(lambda: client.get("/readyz").status_code == 200, 5, "/readyz 200 again")
        before = status_calls(a), status_calls(b)
        for _ in range(4):
            assert client.get("/api/status").status_code == 200
        assert status_calls(a) == before[0] + 4
        assert status_calls(b) == before[1]
