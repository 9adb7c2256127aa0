"""Small ``tofu show -json`` documents for the tests (the shape OpenTofu 1.6+ writes)."""

from __future__ import annotations

import copy
from typing import Any

SERVICE = 'module.services["console"].google_cloud_run_v2_service.this'
IAM = 'module.invokers["console"].google_cloud_run_v2_service_iam_member.this["group:ops"]'
BEFORE: dict[str, Any] = {
    "name": "console",
    "client": None,
    "template": {
        "containers": [
            {"image": "registry/console@sha256:old", "env": [{"name": "A", "value": "1"}]}
        ],
        "scaling": {"max_instance_count": 2},
    },
    "labels": {"commit": "old"},
}


def resource(
    address: str, actions: list[str], before: Any = None, after: Any = None, unknown: Any = None
) -> dict[str, Any]:
    return {
        "address": address,
        "mode": "managed",
        "type": address.rsplit(".", 2)[-2],
        "name": "this",
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": unknown if unknown is not None else {},
            "before_sensitive": {},
            "after_sensitive": {},
        },
    }


def plan(*changes: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "terraform_version": "1.8.0",
        "resource_changes": list(changes),
        "output_changes": outputs or {},
        "timestamp": "2026-06-10T10:00:00Z",
    }


def image_update(image: str = "registry/console@sha256:new") -> dict[str, Any]:
    after = copy.deepcopy(BEFORE)
    after["template"]["containers"][0]["image"] = image
    after["labels"]["commit"] = "new"
    return resource(SERVICE, ["update"], BEFORE, after)
