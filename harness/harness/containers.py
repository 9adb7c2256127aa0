"""Start, probe and stop the two service containers (testcontainers, host network).

Every container runs with host networking and gets its port through $PORT, so all
traffic stays on 127.0.0.1 (ARCHITECTURE.md, "Network rule"). Every container is
labelled `org.cloudrun-gtfs.stack=<stack id>` so `make down` (tools/down) can
remove leftovers of a run that was killed before its teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import docker.errors
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from testcontainers.core.container import DockerContainer

from testkit.net import free_port

STACK_LABEL = "org.cloudrun-gtfs.stack"
SERVICE_LABEL = "org.cloudrun-gtfs.service"
START_TIMEOUT_S = 60.0
# The services' user in the image (services/Dockerfile: USER 10001:10001).
SERVICE_UID = 10001
# Where a pipeline container keeps its run store when given a host folder.
CONTAINER_DATA_DIR = "/data"


class ContainerFailed(RuntimeError):
    """A container exited or never became ready; the message carries its logs."""


def new_stack_id() -> str:
    return uuid.uuid4().hex[:10]


@dataclasses.dataclass
class ServiceContainer:
    service: str
    image: str
    port: int
    stack: str
    container: DockerContainer

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def id(self) -> str:
        return str(self.container.get_wrapped_container().id)

    def logs(self) -> str:
        try:
            out, err = self.container.get_logs()
        except docker.errors.NotFound:
            return "(container already removed)"
        return (out + err).decode(errors="replace")

    def running(self) -> bool:
        try:
            self.container.get_wrapped_container().reload()
        except docker.errors.NotFound:
            return False
        status: str = self.container.get_wrapped_container().status
        return status == "running"

    def stop(self, timeout: int = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout`: what Cloud Run does on scale-in."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.get_wrapped_container().stop(timeout=timeout)

    def start_again(self, probe: Probe | None = None, timeout: float = START_TIMEOUT_S) -> None:
        """Start this stopped or killed container again (same port, same mounts) and wait
        until it is ready: a restarted instance, as after a crash."""
        self.container.get_wrapped_container().start()
        _wait(self, probe or (GRPC_READY if self.service == "pipeline" else HTTP_READY), timeout)

    def kill(self) -> None:
        """SIGKILL at once: an instance that dies mid-request."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.get_wrapped_container().kill()

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.stop(force=True)


def shared_data_dir(path: Path) -> Path:
    """A host folder a pipeline container can keep its run store in (and several
    containers can share, as Cloud Run instances share Cloud SQL and a bucket)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, SERVICE_UID, SERVICE_UID)
    else:
        path.chmod(0o777)
    return path


def _start(
    service: str,
    image: str,
    port: int,
    stack: str,
    env: Mapping[str, str],
    data_dir: Path | None = None,
    mem_limit: str | None = None,
) -> ServiceContainer:
    if data_dir is not None:
        env = {**env, "PIPELINE_DATA_DIR": CONTAINER_DATA_DIR}
    # docker --memory (and no swap beyond it): the cgroup limit Cloud Run also sets.
    memory = {"mem_limit": mem_limit, "memswap_limit": mem_limit} if mem_limit else {}
    container = (
        DockerContainer(image)
        .with_envs(**{**env, "PORT": str(port)})
        .with_name(f"gtfs-{service}-{stack}-{uuid.uuid4().hex[:6]}")
        .with_kwargs(
            network_mode="host",
            labels={STACK_LABEL: stack, SERVICE_LABEL: service},
            **memory,
        )
    )
    if data_dir is not None:
        container = container.with_volume_mapping(
            str(shared_data_dir(data_dir)), CONTAINER_DATA_DIR, "rw"
        )
    container.start()
    return ServiceContainer(service, image, port, stack, container)


def _fail(box: ServiceContainer, why: str) -> ContainerFailed:
    return ContainerFailed(f"{box.service} ({box.image}) {why}; logs:\n{box.logs()[-4000:]}")


def grpc_serving(addr: str, timeout: float = 1.0) -> bool:
    """True when the server at addr answers grpc.health.v1 Check with SERVING."""
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclasses.dataclass(frozen=True)
class Probe:
    """How readiness is asked: grpc.health.v1, or an HTTP GET that must answer 200."""

    kind: str  # "grpc" or "http"
    path: str = "/readyz"


GRPC_READY = Probe("grpc")
HTTP_READY = Probe("http", "/readyz")


def _ready(box: ServiceContainer, probe: Probe) -> bool:
    if probe.kind == "grpc":
        return grpc_serving(box.addr)
    return http_ok(f"{box.url}{probe.path}")


def _wait(box: ServiceContainer, probe: Probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ready(box, probe):
            return
        if not box.running():
            raise _fail(box, "exited before it was ready")
        time.sleep(0.2)
    raise _fail(box, f"was not ready within {timeout:.0f}s")


def start_service(
    service: str,
    image: str,
    stack: str,
    port: int | None,
    env: Mapping[str, str],
    probe: Probe,
    timeout: float = START_TIMEOUT_S,
    data_dir: Path | None = None,
    mem_limit: str | None = None,
) -> ServiceContainer:
    """Start one service on `port` (None: a free one) and wait until `probe` passes;
    ``mem_limit``: docker's memory limit ("1g"), the container's cgroup limit."""
    # A port picked here is free only until something else binds it; another test
    # worker may win that race. Retry with a new port; a fixed port is not retried.
    attempts = 1 if port else 3
    for attempt in range(1, attempts + 1):
        box = _start(service, image, port or free_port(), stack, env, data_dir, mem_limit)
        try:
            _wait(box, probe, timeout)
        except ContainerFailed:
            box.remove()
            if attempt == attempts:
                raise
            continue
        except BaseException:
            box.remove()
            raise
        return box
    raise AssertionError("unreachable")


def start_pipeline(
    image: str,
    stack: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
    data_dir: Path | None = None,
    mem_limit: str | None = None,
) -> ServiceContainer:
    """Start the pipeline and wait until grpc.health.v1 says SERVING.

    ``data_dir``: a host folder mounted as its PIPELINE_DATA_DIR, so its run store
    outlives the container and can be shared with other pipeline containers.
    ``mem_limit``: docker's memory limit ("1g"), as Cloud Run's instance memory.
    """
    return start_service(
        "pipeline", image, stack, port, env or {}, GRPC_READY, timeout, data_dir, mem_limit
    )


def pipeline_addr_value(pipeline_addr: str | Sequence[str]) -> str:
    """PIPELINE_ADDR for one address, or for several (comma-separated: the console
    balances over them with round_robin; IP literals of one family, plaintext)."""
    if isinstance(pipeline_addr, str):
        return pipeline_addr
    if not pipeline_addr:
        raise ValueError("no pipeline address")
    return ",".join(pipeline_addr)


def start_console(
    image: str,
    stack: str,
    pipeline_addr: str | Sequence[str],
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> ServiceContainer:
    """Start the console pointed at `pipeline_addr` (one address, or several to
    balance over) and wait until /readyz is 200."""
    settings = {
        "PIPELINE_TLS": "false",
        **(env or {}),
        "PIPELINE_ADDR": pipeline_addr_value(pipeline_addr),
    }
    return start_service("console", image, stack, port, settings, HTTP_READY, timeout)


@dataclasses.dataclass
class Stack:
    """Both services, the console pointed at the pipeline."""

    id: str
    pipeline: ServiceContainer
    console: ServiceContainer

    def remove(self) -> None:
        # Caller last: the console would otherwise log the pipeline vanishing.
        self.console.remove()
        self.pipeline.remove()


def start_stack(
    pipeline_image: str,
    console_image: str,
    stack: str | None = None,
    pipeline_port: int | None = None,
    console_port: int | None = None,
    pipeline_env: Mapping[str, str] | None = None,
    console_env: Mapping[str, str] | None = None,
) -> Stack:
    """Start the pipeline (callee first), then the console with its address injected."""
    stack = stack or new_stack_id()
    pipeline = start_pipeline(pipeline_image, stack, pipeline_port, pipeline_env)
    try:
        console = start_console(console_image, stack, pipeline.addr, console_port, console_env)
    except BaseException:
        pipeline.remove()
        raise
    return Stack(stack, pipeline, console)
