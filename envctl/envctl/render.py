"""Render an environment: the root stack's variables (cloudrun) or the local plan (docker).

``render(env)`` is deterministic: the same file gives the same JSON byte for byte
(``to_json`` sorts keys), so golden snapshots of every environment show exactly what
each one gets. Derived values are computed here, once:

- the image reference REGISTRY/SERVICE@DIGEST (never a tag);
- one service account per service (``svc-NAME``) and, from ``calls``, who invokes whom;
- IMAGE_COMMIT, and for a called service NAME_REQUIRE_ID_TOKEN / NAME_ALLOWED_INVOKERS.

What needs the project number (a callee's URL for NAME_ADDR / NAME_AUDIENCE) is added
by modules/stack from ``calls``; locally ``envctl.local`` does the same with loopback.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envctl.local import render_local
from envctl.model import Environment
from envctl.policy import env_prefix
from envctl.probes import probe

INGRESS = {
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "all": "INGRESS_TRAFFIC_ALL",
}
EGRESS = {"all-traffic": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
_REGISTRY = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>.+)$"
)


def service_account_id(service: str) -> str:
    return f"svc-{service}"


def service_account_email(env: Environment, service: str) -> str:
    return f"{service_account_id(service)}@{env.project}.iam.gserviceaccount.com"


def render(env: Environment) -> dict[str, Any]:
    if not env.is_cloud:
        return render_local(env)
    registry = _REGISTRY.match(env.registry or "")
    assert registry is not None  # guaranteed by the schema pattern
    return {
        "environment": env.name,
        "project_id": env.project,
        "region": env.region,
        "registry": {"location": registry["location"], "repository_id": registry["repo"]},
        "deletion_protection": bool(env.data["deletion_protection"]),
        "labels": {"environment": env.name, "managed-by": "envctl"},
        "services": {name: _service(env, name) for name in sorted(env.services)},
    }


def _service(env: Environment, name: str) -> dict[str, Any]:
    svc = env.services[name]
    image = env.image(name)
    callers = env.callers(name)
    env_vars = dict(svc["env"])
    env_vars["IMAGE_COMMIT"] = image.commit
    if callers:
        # The callee checks the ID token itself too (defence in depth behind run.invoker).
        prefix = env_prefix(name)
        env_vars[f"{prefix}_REQUIRE_ID_TOKEN"] = "true"
        emails = sorted(service_account_email(env, c) for c in callers)
        env_vars[f"{prefix}_ALLOWED_INVOKERS"] = ",".join(emails)
    vpc = svc.get("vpc")
    return {
        "image": f"{env.registry}/{name}@{image.digest}",
        "commit": image.commit,
        "service_account_id": service_account_id(name),
        "ingress": INGRESS[svc["ingress"]],
        "invoker_members": sorted(svc["invokers"]),
        "callers": callers,
        "calls": sorted(env.calls(name)),
        "min_instances": svc["scaling"]["min_instances"],
        "max_instances": svc["scaling"]["max_instances"],
        "cpu": svc["resources"]["cpu"],
        "memory": svc["resources"]["memory"],
        "startup_cpu_boost": svc["startup_cpu_boost"],
        "concurrency": svc["concurrency"],
        "timeout_seconds": svc["timeout_seconds"],
        "http2": svc["http2"],
        "startup_probe": probe("startup", svc["probes"]["startup"]),
        "liveness_probe": probe("liveness", svc["probes"]["liveness"]),
        "env": dict(sorted(env_vars.items())),
        "secret_env": {
            var: {"secret": ref["secret"], "version": ref["version"]}
            for var, ref in sorted(svc["secrets"].items())
        },
        "vpc_egress": None
        if vpc is None
        else {
            "network": vpc["network"],
            "subnetwork": vpc["subnetwork"],
            "egress": EGRESS[vpc["egress"]],
        },
        "traffic": _traffic(svc.get("rollout")),
    }


def _traffic(rollout: dict[str, Any] | None) -> list[dict[str, Any]]:
    if rollout is None:
        return [{"type": LATEST, "percent": 100, "revision": None, "tag": None}]
    canary = rollout["canary_percent"]
    return [
        {"type": LATEST, "percent": canary, "revision": None, "tag": "canary"},
        {
            "type": REVISION,
            "percent": 100 - canary,
            "revision": rollout["stable_revision"],
            "tag": "stable",
        },
    ]


def backend_config(env: Environment) -> dict[str, str]:
    """The gcs backend settings for ``tofu init -backend-config``: one state per environment."""
    return {"bucket": str(env.data["state_bucket"]), "prefix": f"environments/{env.name}"}


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
