"""Cold: what the first caller of a brand-new instance waits for.

Each sample starts fresh containers from the images at a SHA (host network,
free loopback ports, labelled like the harness's so `make down` removes
leftovers) and records:

- `python_start_s`: `docker run --rm <pipeline image> python -c pass` — the
  engine's container start plus a bare interpreter, measured in the same sample.
  It is the machine's own floor for a cold start and the denominator of the
  cold ratio, so a slower engine or disk does not read as a regression;
- `serving_s`: pipeline start requested → grpc.health.v1 says SERVING
  (polled every few ms with a fresh channel, so resolution is ~10 ms);
- `first_rpc_us` / `second_rpc_us`: the first GetDag on a fresh channel to the
  just-SERVING instance (connection set-up and the server's first-call paths
  included), then the next call on the same channel;
- `console_start_s`: a fresh console (pointed at that pipeline) start
  requested → `/healthz` 200. `/healthz` rather than `/readyz`: readiness
  calls the pipeline, which would warm the console's channel before we measure;
- `console_first_us` / `console_second_us`: the first GET /api/dag on a fresh
  HTTP connection — the console's channel connects during this call — then
  the next one.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import docker
import docker.errors
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.containers import SERVICE_LABEL, STACK_LABEL, new_stack_id
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.net import free_port

START_TIMEOUT_S = 90.0
POLL_S = 0.005
PROBE_TIMEOUT_S = 0.25


class ColdStartFailed(RuntimeError):
    """A container exited or never became ready; the message carries its logs."""


@dataclass(frozen=True)
class ColdSample:
    python_start_s: float
    serving_s: float
    first_rpc_us: int
    second_rpc_us: int
    console_start_s: float
    console_first_us: int
    console_second_us: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: (field, unit, what it is) in report order.
METRICS = (
    ("python_start_s", "s", "container + bare interpreter (machine floor)"),
    ("serving_s", "s", "pipeline start → gRPC SERVING"),
    ("first_rpc_us", "us", "first GetDag on a fresh channel"),
    ("second_rpc_us", "us", "second GetDag, same channel"),
    ("console_start_s", "s", "console start → /healthz 200"),
    ("console_first_us", "us", "first GET /api/dag after console start"),
    ("console_second_us", "us", "second GET /api/dag"),
)


def _serving(addr: str) -> bool:
    # A fresh channel per probe: a channel that saw "connection refused" backs
    # off before it retries, which would add up to a second to the measurement.
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=PROBE_TIMEOUT_S
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _healthz(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=PROBE_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def _logs(container: Any) -> str:
    try:
        return bytes(container.logs()).decode(errors="replace")[-4000:]
    except docker.errors.APIError:
        return "(no logs)"


def _wait(container: Any, ready: Callable[[], bool], what: str, t0: float) -> float:
    """Seconds from t0 until `ready()`; raises if the container dies or times out."""
    next_check = time.perf_counter() + 0.5
    while True:
        if ready():
            return time.perf_counter() - t0
        now = time.perf_counter()
        if now - t0 > START_TIMEOUT_S:
            raise ColdStartFailed(
                f"{what} not ready in {START_TIMEOUT_S:.0f}s:\n{_logs(container)}"
            )
        if now >= next_check:
            container.reload()
            if container.status not in ("created", "running"):
                raise ColdStartFailed(f"{what} exited ({container.status}):\n{_logs(container)}")
            next_check = now + 0.5
        time.sleep(POLL_S)


def _start(
    client: Any, image: str, service: str, stack: str, port: int, env: dict[str, str]
) -> Any:
    return client.containers.run(
        image,
        detach=True,
        network_mode="host",
        environment={**env, "PORT": str(port)},
        labels={STACK_LABEL: stack, SERVICE_LABEL: service},
        name=f"gtfs-bench-{service}-{stack}-{uuid.uuid4().hex[:6]}",
    )


def _remove(container: Any) -> None:
    with contextlib.suppress(docker.errors.APIError):  # already gone
        container.remove(force=True)


def _timed_us(fn: Callable[[], object]) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) // 1000


def sample(client: Any, pipeline_image: str, console_image: str) -> ColdSample:
    """One cold sample; every container it starts is removed before it returns."""
    stack = new_stack_id()
    t0 = time.perf_counter()
    client.containers.run(
        pipeline_image,
        entrypoint=["python", "-c", "pass"],
        network_mode="none",
        remove=True,
        labels={STACK_LABEL: stack, SERVICE_LABEL: "python-floor"},
    )
    python_start_s = time.perf_counter() - t0

    started: list[Any] = []
    try:
        port = free_port()
        addr = f"127.0.0.1:{port}"
        t0 = time.perf_counter()
        pipeline = _start(client, pipeline_image, "pipeline", stack, port, {})
        started.append(pipeline)
        serving_s = _wait(pipeline, lambda: _serving(addr), "pipeline", t0)

        with grpc.insecure_channel(addr) as channel:
            stub = pb_grpc.PipelineServiceStub(channel)
            first_rpc_us = _timed_us(lambda: stub.GetDag(pb.GetDagRequest(), timeout=30))
            second_rpc_us = _timed_us(lambda: stub.GetDag(pb.GetDagRequest(), timeout=30))

        console_port = free_port()
        url = f"http://127.0.0.1:{console_port}"
        env = {"PIPELINE_ADDR": addr, "PIPELINE_TLS": "false"}
        t0 = time.perf_counter()
        console = _start(client, console_image, "console", stack, console_port, env)
        started.append(console)
        console_start_s = _wait(console, lambda: _healthz(url), "console", t0)
        with httpx.Client(base_url=url, timeout=30) as http:
            first = _timed_us(lambda: http.get("/api/dag").raise_for_status())
            second = _timed_us(lambda: http.get("/api/dag").raise_for_status())
        return ColdSample(
            python_start_s=round(python_start_s, 4),
            serving_s=round(serving_s, 4),
            first_rpc_us=first_rpc_us,
            second_rpc_us=second_rpc_us,
            console_start_s=round(console_start_s, 4),
            console_first_us=first,
            console_second_us=second,
        )
    finally:
        for container in reversed(started):
            _remove(container)


def run(
    pipeline_image: str,
    console_image: str,
    samples: int,
    progress: Callable[[int, ColdSample], None] | None = None,
) -> list[ColdSample]:
    client = docker.from_env()
    try:
        out = []
        for i in range(samples):
            s = sample(client, pipeline_image, console_image)
            out.append(s)
            if progress:
                progress(i + 1, s)
        return out
    finally:
        client.close()
