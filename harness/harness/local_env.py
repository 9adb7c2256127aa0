"""What the docker platform needs from an environment: per service, its port and
its env vars, and the order to start them in.

envctl owns reading and validating environment files; this module only asks it
(`envctl.load.load_environment`, `envctl.local.local_service_settings`), so
`envctl up local`, `make up` and the tests start containers from the same
settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envctl.load import load_environment
from envctl.local import local_service_settings
from envctl.model import Environment
from harness.containers import Probe
from harness.tree import REPO_ROOT

# Run stores of the docker environments (gitignored): delete a folder for an empty history.
LOCAL_DATA = REPO_ROOT / ".cache" / "local-data"


@dataclasses.dataclass(frozen=True)
class DockerService:
    name: str
    # 0 never reaches here: envctl has replaced it with a free loopback port.
    port: int
    env: dict[str, str]
    # The startup probe, as Cloud Run would run it, and how long it may take.
    probe: Probe
    ready_within_s: float
    # A host folder for the service's run store (services with a `storage` section):
    # history and zips survive `make up` being stopped and started again.
    data_dir: Path | None = None


def load(name: str = "local") -> Environment:
    return load_environment(REPO_ROOT, name)


def start_order(env: Environment) -> list[str]:
    """Callees before their callers (the caller needs the callee's address at start)."""
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in path:
            raise ValueError(f"{env.file}: services.{name}.calls: a cycle {' -> '.join(path)}")
        for callee in env.calls(name):
            visit(callee, (*path, name))
        ordered.append(name)

    for name in env.services:
        visit(name, ())
    return ordered


def docker_services(env: Environment, image_commit: str | None = None) -> list[DockerService]:
    """The services of a docker environment in start order, ports and env resolved."""
    settings = local_service_settings(env, commit=image_commit)
    services = []
    for name in start_order(env):
        startup = settings[name]["probes"]["startup"]
        probe = Probe(startup["type"], startup.get("path") or "/readyz")
        within = float(startup["period_seconds"] * startup["failure_threshold"])
        port = int(settings[name]["port"])
        data_dir = LOCAL_DATA / env.name / name if env.service(name).get("storage") else None
        services.append(
            DockerService(name, port, dict(settings[name]["env"]), probe, within, data_dir)
        )
    return services
