"""What the `docker` platform needs from an environment file: per service, its
port (0 = any free loopback port) and its plain env vars.

This is the one place the harness reads environments/local.yaml. When envctl
offers the same (its loader plus a per-service view for the docker platform),
`docker_services` becomes a thin call into it and nothing else changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from harness.tree import REPO_ROOT

LOCAL_FILE = REPO_ROOT / "environments" / "local.yaml"
# Callee first: the console needs the pipeline's address at start.
START_ORDER = ("pipeline", "console")


class LocalEnvError(ValueError):
    """The environment file cannot drive the docker platform; names file and field."""


@dataclasses.dataclass(frozen=True)
class DockerService:
    name: str
    port: int
    env: dict[str, str]


def load(path: Path = LOCAL_FILE) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text())
    if not isinstance(data, dict):
        raise LocalEnvError(f"{path}: top level must be a mapping")
    return data


def docker_services(env: Mapping[str, Any], source: str = str(LOCAL_FILE)) -> list[DockerService]:
    """The services of a `platform: docker` environment, in start order."""
    if env.get("platform") != "docker":
        raise LocalEnvError(f"{source}: platform: must be docker to run here")
    services = env.get("services")
    if not isinstance(services, Mapping):
        raise LocalEnvError(f"{source}: services: must be a mapping")
    result = []
    for name in START_ORDER:
        spec = services.get(name)
        if not isinstance(spec, Mapping):
            raise LocalEnvError(f"{source}: services.{name}: missing")
        port = spec.get("port", 0)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise LocalEnvError(f"{source}: services.{name}.port: 0-65535 expected")
        plain = spec.get("env") or {}
        if not isinstance(plain, Mapping):
            raise LocalEnvError(f"{source}: services.{name}.env: must be a mapping")
        result.append(DockerService(name, port, {str(k): str(v) for k, v in plain.items()}))
    return result
