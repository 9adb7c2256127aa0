"""Render an environment: the root stack's variables (cloudrun) or the local plan (docker).

``render(env)`` is deterministic: the same file gives the same JSON byte for byte
(``to_json`` sorts keys), so golden snapshots of every environment show exactly what
each one gets. Derived values are computed here, once:

- the image reference REGISTRY/SERVICE@DIGEST (never a tag);
- one service account per service (``svc-NAME``) and, from ``calls``, who invokes whom;
- every variable the platform sets (``envctl.platform_env``): ``env`` is the file's
  variables plus the platform's values (IMAGE_COMMIT, GOOGLE_CLOUD_PROJECT, NAME_TLS,
  NAME_REQUIRE_ID_TOKEN, NAME_ALLOWED_INVOKERS), which modules/stack passes on as given;
  ``url_env`` names the variables whose value is a Cloud Run URL (NAME_ADDR,
  NAME_AUDIENCE, NAME_TOKEN_AUDIENCE) as ``{"service": NAME, "form": "url"|"address"}``,
  and the stack only fills in the URL, because it holds the project number. Cloud Run
  itself adds PORT and K_SERVICE/K_REVISION/K_CONFIGURATION;
- the dashboard, alert policies and notification channels of modules/monitoring
  (``monitoring``): the file's ``telemetry`` thresholds and channels, and the PromQL
  queries ``envctl.monitoring`` writes once for them and for the deploy's metrics check;
- a service's run store (``storage``): its Cloud SQL instance, database and IAM user, and
  its bucket, with the names ``envctl.platform_env`` puts in NAME_DATABASE_URL and
  NAME_OUTPUT_URL, so the stack creates exactly what the service is told to use.

For the docker platform ``envctl.local`` gives the same variables with loopback addresses.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envctl.local import render_local
from envctl.model import Environment
from envctl.monitoring import render_monitoring
from envctl.platform_env import (
    DATABASE,
    bucket_name,
    database_instance,
    platform_env,
    service_account_id,
    service_env,
    url_references,
)
from envctl.probes import probe

INGRESS = {
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "all": "INGRESS_TRAFFIC_ALL",
}
AVAILABILITY = {"zonal": "ZONAL", "regional": "REGIONAL"}
EGRESS = {"all-traffic": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
_REGISTRY = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>.+)$"
)


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
        "monitoring": render_monitoring(env.name, env.data["telemetry"]),
    }


def _service(env: Environment, name: str) -> dict[str, Any]:
    svc = env.services[name]
    image = env.image(name)
    callers = env.callers(name)
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
        "env": service_env(env, name),
        "url_env": url_references(platform_env(env, name)),
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
        "storage": _storage(env, name),
    }


def _storage(env: Environment, name: str) -> dict[str, Any] | None:
    """The run store's cloud resources, named as the service's variables name them."""
    storage = env.services[name].get("storage")
    if storage is None:
        return None
    database, bucket = storage.get("database"), storage.get("bucket")
    return {
        "database": None
        if database is None
        else {
            "instance": database_instance(env, name),
            "database": DATABASE,
            "network": env.services[name]["vpc"]["network"],
            "tier": database["tier"],
            "availability": AVAILABILITY[database["availability"]],
            "disk_gb": database["disk_gb"],
            "backups": database["backups"],
            "point_in_time_recovery": database["point_in_time_recovery"],
            "query_insights": database.get("query_insights", False),
        },
        "bucket": None
        if bucket is None
        else {"name": bucket_name(env, name), "lifecycle_days": bucket["lifecycle_days"]},
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
