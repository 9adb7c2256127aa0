"""The containers the capacity phase loads, pinned away from the load generator.

Three servers, one after another, each from the pipeline image's base so the
interpreter, grpcio and the CPU limit are the same:

- **bare**: `python -c BARE_SERVER` in the pipeline image — a grpcio server
  with only the stock health servicer and the pipeline's thread pool size: the
  most a Python gRPC server on this CPU answers, the capacity floor;
- **pipeline**: the pipeline image as deployed;
- **console**: the console image in front of a pipeline container.

Every container gets `--cpuset-cpus SERVER_CPUS` and `--cpus` = their count,
so on this 2-core machine the servers run on CPU 1 while Locust runs on CPU 0
(`Plan.generator_cpus`): neither steals the other's core. The console and the
pipeline behind it share the server CPUs, as the two services' work does in
one request. With host networking and free loopback ports, labelled like the
harness's containers so `make down` removes leftovers.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from bench.capacity import CapacityFailed, parse_cpus
from harness.containers import SERVICE_LABEL, STACK_LABEL, grpc_serving, http_ok, new_stack_id
from testkit.net import free_port

START_TIMEOUT_S = 60.0

# A health-only grpcio server, as the pipeline builds its own (server.py): the
# same thread pool size (PIPELINE_MAX_WORKERS' default) and the stock servicer.
BARE_SERVER = """
import os
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
server.add_insecure_port("127.0.0.1:" + os.environ["PORT"])
server.start()
server.wait_for_termination()
"""


@dataclass(frozen=True)
class Placement:
    """Where the servers run: a cpuset and the matching CPU limit."""

    server_cpus: str = ""  # "" : not pinned, no limit

    def docker_args(self) -> dict[str, Any]:
        if not self.server_cpus:
            return {}
        count = len(parse_cpus(self.server_cpus))
        return {"cpuset_cpus": self.server_cpus, "nano_cpus": count * 1_000_000_000}

    def describe(self, generator_cpus: str) -> str:
        servers = (
            f"CPUs {self.server_cpus} (--cpus {len(parse_cpus(self.server_cpus))})"
            if (self.server_cpus)
            else "unpinned"
        )
        generator = f"CPUs {generator_cpus}" if generator_cpus else "unpinned"
        return f"servers on {servers}, Locust on {generator}"


def _wait(container: Any, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        container.reload()
        if container.status not in ("created", "running"):
            logs = bytes(container.logs()).decode(errors="replace")[-3000:]
            raise CapacityFailed(f"{what} exited ({container.status}):\n{logs}")
        time.sleep(0.1)
    raise CapacityFailed(f"{what} not ready within {START_TIMEOUT_S:.0f}s")


class Servers:
    """Starts the capacity phase's containers; removes every one it started."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        self.stack = new_stack_id()
        self._client = docker.from_env()
        self._started: list[Any] = []

    def _run(self, image: str, service: str, env: dict[str, str], **extra: Any) -> Any:
        container = self._client.containers.run(
            image,
            detach=True,
            network_mode="host",
            environment=env,
            labels={STACK_LABEL: self.stack, SERVICE_LABEL: service},
            name=f"gtfs-capacity-{service}-{self.stack}-{uuid.uuid4().hex[:6]}",
            **self.placement.docker_args(),
            **extra,
        )
        self._started.append(container)
        return container

    def bare(self, pipeline_image: str) -> str:
        port = free_port()
        box = self._run(
            pipeline_image, "bare-grpc", {"PORT": str(port)},
            entrypoint=["python", "-c", BARE_SERVER],
        )  # fmt: skip
        addr = f"127.0.0.1:{port}"
        _wait(box, lambda: grpc_serving(addr), "bare grpcio server")
        return addr

    def pipeline(self, image: str) -> str:
        port = free_port()
        box = self._run(image, "pipeline", {"PORT": str(port), "PIPELINE_LISTEN_HOST": "127.0.0.1"})
        addr = f"127.0.0.1:{port}"
        _wait(box, lambda: grpc_serving(addr), "pipeline")
        return addr

    def console(self, image: str, pipeline_addr: str) -> str:
        port = free_port()
        env = {
            "PORT": str(port),
            "PIPELINE_ADDR": pipeline_addr,
            "PIPELINE_TLS": "false",
            "CONSOLE_LISTEN_HOST": "127.0.0.1",
        }
        box = self._run(image, "console", env)
        url = f"http://127.0.0.1:{port}"
        _wait(box, lambda: http_ok(f"{url}/readyz"), "console")
        return url

    def remove_all(self) -> None:
        for container in reversed(self._started):
            with contextlib.suppress(docker.errors.APIError):  # already gone
                container.remove(force=True)
        self._started.clear()

    def close(self) -> None:
        self.remove_all()
        self._client.close()


@contextmanager
def servers(placement: Placement) -> Iterator[Servers]:
    box = Servers(placement)
    try:
        yield box
    finally:
        box.close()
