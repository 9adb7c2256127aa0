"""Health probes as rendered for Cloud Run and for the local harness (timing filled in)."""

from __future__ import annotations

from typing import Any

# Probe timing when a file does not say: startup allows two minutes (the pipeline scans
# and resolves its DAG before it serves); liveness restarts after 90 s without an answer.
PROBE_DEFAULTS = {
    "startup": {"period_seconds": 5, "failure_threshold": 24},
    "liveness": {"period_seconds": 30, "failure_threshold": 3},
}


def probe(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` from the file ({type, path?, period_seconds?, failure_threshold?}), complete."""
    defaults = PROBE_DEFAULTS[kind]
    return {
        "type": spec["type"],
        "path": spec.get("path"),
        "period_seconds": spec.get("period_seconds", defaults["period_seconds"]),
        "failure_threshold": spec.get("failure_threshold", defaults["failure_threshold"]),
    }
