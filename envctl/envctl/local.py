"""The docker platform: each service's host port and environment variables.

``local_service_settings(env)`` is what ``envctl up`` and the test harness start
containers with (host networking, so every address is loopback):

    {"pipeline": {"port": 50051, "protocol": "grpc", "probes": {...},
                  "env": {"PORT": "50051", "PIPELINE_NAME": "metro_schedule", ...}},
     "console":  {"port": 8080, ..., "env": {"PIPELINE_ADDR": "127.0.0.1:50051",
                                             "PIPELINE_TLS": "false", ...}}}

The variables are ``envctl.platform_env.service_env``: the file's ``env`` plus what the
platform sets, from the same contract ``envctl render`` writes for Cloud Run (NAME_ADDR,
NAME_TLS; no audience, because locally there is no ID token).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from envctl.errors import EnvctlError
from envctl.model import Environment
from envctl.platform_env import declared_ports, service_env
from envctl.probes import probe


def pick_free_port() -> int:
    """A loopback port free right now (the kernel picks it; the caller binds it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def resolve_ports(env: Environment) -> dict[str, int]:
    """Each service's port, with 0 replaced by a free one."""
    _require_docker(env)
    return {name: svc["port"] or pick_free_port() for name, svc in env.services.items()}


def local_service_settings(
    env: Environment, ports: Mapping[str, int] | None = None, commit: str | None = None
) -> dict[str, dict[str, Any]]:
    """Port, protocol, probes and environment variables of every service of ``env``.

    ``ports`` overrides the file's ports (default: :func:`resolve_ports`, which picks
    free ones for 0); ``commit`` is IMAGE_COMMIT for images built from the working tree
    ('checkout'); without it IMAGE_COMMIT is left to the image, which bakes it in.
    """
    _require_docker(env)
    chosen = dict(ports) if ports is not None else resolve_ports(env)
    settings: dict[str, dict[str, Any]] = {}
    for name, svc in env.services.items():
        settings[name] = {
            "port": chosen[name],
            "protocol": svc["protocol"],
            "probes": {kind: probe(kind, spec) for kind, spec in sorted(svc["probes"].items())},
            "env": service_env(env, name, ports=chosen, commit=commit),
        }
    return settings


def render_local(env: Environment) -> dict[str, Any]:
    """The docker environment as ``envctl render`` shows it (ports as written; 0 = free)."""
    settings = local_service_settings(env, ports=declared_ports(env))
    return {
        "environment": env.name,
        "platform": env.platform,
        "services": {
            name: {**settings[name], "image": env.image(name).as_dict()}
            for name in sorted(settings)
        },
    }


def _require_docker(env: Environment) -> None:
    if env.is_cloud:
        raise EnvctlError(
            f"{env.file}: platform: {env.name} runs on {env.platform}; local settings exist "
            "for docker environments only"
        )
