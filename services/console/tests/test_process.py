"""The console-server process: starts on $PORT, stops cleanly on SIGTERM
(what Cloud Run sends before SIGKILL, 10 s later)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import psutil

from console_server.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from pipeline.v1 import pipeline_pb2 as pb
from testkit.net import free_port
from testkit.servers import Launcher, StandInPipeline, start_stand_in


def test_sigterm_stops_the_console_gracefully(launch: Launcher) -> None:
    console = launch.console(f"127.0.0.1:{free_port()}")
    with console.client() as client:
        assert client.get("/healthz").status_code == 200
    console.signal(signal.SIGTERM)
    assert console.popen is not None
    try:
        code = console.popen.wait(timeout=9)
    except subprocess.TimeoutExpired:
        console.fail("still running 9 s after SIGTERM")
    # uvicorn re-raises the signal once shut down, so the exit status says
    # "terminated by SIGTERM" like any well-behaved process.
    assert code in (0, -signal.SIGTERM)
    messages = [json.loads(line)["message"] for line in console.log().splitlines()]
    assert "Application shutdown complete." in messages
    assert any(f":{console.port}" in m for m in messages), "listened on $PORT"


class LongRun(StandInPipeline):
    """RunPipeline that computes for a minute, unless its caller goes away."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.caller_gone = threading.Event()

    def RunPipeline(
        self, request_iterator: Iterator[pb.RunPipelineRequest], context: grpc.ServicerContext
    ) -> pb.Run:
        self.record("RunPipeline", context)
        for _ in request_iterator:
            pass
        context.add_callback(self.caller_gone.set)
        self.started.set()
        self.caller_gone.wait(60)
        return pb.Run(run_id="0" * 32, status=pb.RUN_STATUS_COMPLETED)


def test_sigterm_during_a_long_run_answers_json_503_within_the_grace(launch: Launcher) -> None:
    long_run = LongRun()
    stand_in = start_stand_in(servicer=long_run)
    try:
        console = launch.console(f"127.0.0.1:{stand_in.port}")
        answers: list[httpx.Response] = []

        def post() -> None:
            with httpx.Client(base_url=console.url, timeout=60, trust_env=False) as client:
                feed = {"feed": ("big.zip", b"PK\x03\x04" + bytes(1000), "application/zip")}
                answers.append(client.post("/api/runs", files=feed))

        poster = threading.Thread(target=post)
        poster.start()
        assert long_run.started.wait(15), "the run never reached the pipeline"
        time.sleep(2)
        console.signal(signal.SIGTERM)
        sent = time.monotonic()
        poster.join(30)
        answered = time.monotonic() - sent
        assert console.popen is not None
        code = console.popen.wait(timeout=10)
        exited = time.monotonic() - sent
    finally:
        stand_in.stop()
    (response,) = answers
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "shutting_down"
    assert answered < GRACEFUL_SHUTDOWN_SECONDS, f"answered {answered:.1f} s after SIGTERM"
    assert answered >= GRACEFUL_SHUTDOWN_SECONDS - 2, "a run is given most of the grace"
    assert long_run.caller_gone.is_set(), "the pipeline call was cancelled"
    assert code in (0, -signal.SIGTERM)
    assert exited < 10, "Cloud Run's SIGKILL comes 10 s after SIGTERM"
    assert "Internal Server Error" not in console.log()
    assert "Exception in ASGI application" not in console.log()


def _listening(pid: int, port: int) -> set[str]:
    addrs: set[str] = set()
    for conn in psutil.Process(pid).net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
            addrs.add(conn.laddr.ip)
    return addrs


def test_listens_on_all_interfaces_by_default(launch: Launcher) -> None:
    # Cloud Run's front end reaches the container on its own interface.
    console = launch.console(f"127.0.0.1:{free_port()}")
    assert _listening(console.pid, console.port) == {"0.0.0.0"}


def test_console_listen_host_loopback_listens_on_loopback_only(launch: Launcher) -> None:
    console = launch.console(f"127.0.0.1:{free_port()}", CONSOLE_LISTEN_HOST="127.0.0.1")
    assert _listening(console.pid, console.port) == {"127.0.0.1"}
