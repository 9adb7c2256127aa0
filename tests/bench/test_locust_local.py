"""The stock `locust -f bench/bench/locustfile.py`, headless, against checkout servers.

No containers: `pipeline-server` and `console-server` run as processes from
this checkout on free loopback ports. Locust runs as a subprocess (it
monkey-patches whatever process imports it), and the test reads back what it
wrote: its CSV stats (filled by the interceptor, under gRPC method names) and
the locustfile's microsecond histogram file.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.histogram import Histogram
from bench.warm import LOCUSTFILE, REPO

START_TIMEOUT_S = 60.0
# The Locust runs end once every task has this many calls, or at BOUND_S.
MIN_CALLS = 3
BOUND_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(ready: object, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready in {START_TIMEOUT_S:.0f}s")


def _serving(addr: str) -> bool:
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(pipeline addr, console url) of checkout servers on loopback."""
    data = tmp_path_factory.mktemp("pipeline-data")
    pipeline_port, console_port = _free_port(), _free_port()
    addr, url = f"127.0.0.1:{pipeline_port}", f"http://127.0.0.1:{console_port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, "PORT": str(pipeline_port), "PIPELINE_DATA_DIR": str(data)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pipeline_server"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait(lambda: _serving(addr), procs[0], "pipeline-server")
        env = {**os.environ, "PORT": str(console_port), "PIPELINE_ADDR": addr}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "console_server"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait(lambda: _ready(url), procs[1], "console-server")
        yield addr, url
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _locust(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "--csv",
            str(out / "locust"),
            "--json-file",
            str(out / "locust"),
            "--bench-hist-dir",
            str(out),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BOUND_S + 60,
        check=False,
    )


def test_locust_reports_grpc_calls_by_method_and_writes_microsecond_histograms(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    addr, url = servers
    done = _locust(
        tmp_path,
        "--users",
        "3",
        "--spawn-rate",
        "3",
        # Ended by a count of calls, not the clock: every task must be seen at
        # least MIN_CALLS times, however loaded the machine; the run time only
        # bounds a run whose servers stopped answering.
        "--run-time",
        f"{BOUND_S}s",
        "--bench-min-calls",
        str(MIN_CALLS),
        "--pipeline-target",
        addr,
        "--host",
        url,
        "--console-users",
        "1",
        "--wait-min",
        "0.01",
        "--wait-max",
        "0.02",
        # Every task often enough that MIN_CALLS of each come quickly.
        "--weight-run-pipeline",
        "2",
        "--weight-get-status",
        "2",
        "--weight-list-steps",
        "2",
        "--weight-get-dag",
        "2",
        "--run-rows",
        "500",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # Locust's final stats (the CSVs lag by up to a second; this is written at exit).
    entries = json.loads((tmp_path / "locust.json").read_text())
    stats = {(e["method"], e["name"]): e for e in entries}
    for method in ("GetStatus", "ListSteps", "GetDag", "RunPipeline"):
        entry = stats[("grpc", method)]
        assert entry["num_requests"] >= MIN_CALLS, method
        assert entry["num_failures"] == 0, method
        assert entry["total_content_length"] > 0, method
    for path in ("/api/dag", "/api/status"):
        assert stats[("GET", path)]["num_requests"] >= MIN_CALLS
    # It ended on the count, well before the bound.
    assert "every task has" in done.stderr, done.stderr[-3000:]
    with (tmp_path / "locust_stats.csv").open() as fh:
        assert {("grpc", "GetDag"), ("GET", "/api/dag")} <= {
            (r["Type"], r["Name"]) for r in csv.DictReader(fh)
        }

    files = list(tmp_path.glob("hist-*.json"))
    assert len(files) == 1, "one Locust process, one histogram file"
    data = json.loads(files[0].read_text())
    methods = data["methods"]
    assert methods["GetDag"]["kind"] == "grpc"
    assert methods["/api/dag"]["kind"] == "http"
    for method in ("GetStatus", "ListSteps", "GetDag", "RunPipeline"):
        h = Histogram.from_json(methods[method]["histogram"])
        # Every call Locust counted, the interceptor also timed (one clock, one place).
        assert h.count == stats[("grpc", method)]["num_requests"], method
        # Microseconds: a loopback call is well over 10 µs and under 10 s.
        assert 10 < h.value_at(50) < 10_000_000, method
    assert data["timeline"]["GetDag"], "per-second timeline is written too"


def test_failures_carry_the_grpc_status_code(tmp_path: Path) -> None:
    # Nothing listens on this port: every call fails UNAVAILABLE.
    done = _locust(
        tmp_path,
        "--users",
        "1",
        "--spawn-rate",
        "1",
        # Ended by a count of calls, not the clock: a 2-3 s run could end before
        # its users made a call and write an empty stats CSV (seen about one run
        # in three on a loaded machine).
        "--run-time",
        f"{BOUND_S}s",
        "--bench-min-calls",
        str(MIN_CALLS),
        "--pipeline-target",
        f"127.0.0.1:{_free_port()}",
        "--weight-run-pipeline",
        "0",
        "--wait-min",
        "0.05",
        "--wait-max",
        "0.05",
        "PipelineUser",
    )
    # Locust's own verdict: failures were recorded (--exit-code-on-error defaults to 1).
    assert done.returncode == 1, done.stderr[-3000:]
    with (tmp_path / "locust_failures.csv").open() as fh:
        failures = list(csv.DictReader(fh))
    assert failures
    assert all("UNAVAILABLE" in f["Error"] for f in failures)
    data = json.loads(next(tmp_path.glob("hist-*.json")).read_text())
    assert set(data["methods"]["GetDag"]["errors"]) == {"UNAVAILABLE"}
