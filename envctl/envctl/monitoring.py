"""The PromQL queries over the services' metrics: one place for the dashboard, the alert
policies (modules/monitoring, through ``envctl render``) and the deploy's metrics check
(``python -m envctl.ci metrics-check``), so what pages someone is what a deploy is judged by.

How the metrics are named in Cloud Monitoring (ADR 0027): the services send OTLP to
Google's Telemetry API, which stores every point as Managed Service for Prometheus does,
on the ``prometheus_target`` resource. The OpenTelemetry metric keeps its name, dots
and all, so PromQL quotes it inside the braces (``{"rpc.server.duration_count"}``); a
histogram is queried through its ``_count`` / ``_bucket`` series; the resource becomes
the labels ``job`` (``service.name``), ``namespace`` (``service.namespace``, the
environment), ``instance`` (``service.instance.id``, which the telemetry library starts
with the Cloud Run revision) and ``location`` (``cloud.region``). Point attributes keep
their names (``"http.route"``, ``"error.type"``).

What is measured, per service:

- requests and errors: the duration histogram's count, all of it and with ``error.type``
  set (the console's 5xx, the pipeline's server faults; a caller's mistake is no error);
- p95: the interactive requests only. Uploads and downloads (``POST /api/runs``, the
  output download, ``RunPipeline``, ``DownloadOutput``) take as long as the feed is big,
  so they would make any latency threshold either useless or always crossed; probes
  (``/healthz``, ``/readyz``, gRPC health) are Cloud Run's, not a person's, and are
  many and fast, so they would hide a slow page;
- failed runs: the count of ``pipeline.run.duration`` whose status is failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The services whose metrics the queries read, and how each measures a request.
HISTOGRAMS = {"console": "http.server.request.duration", "pipeline": "rpc.server.duration"}
# Series of one request kind that are not interactive (see the module doc).
INTERACTIVE = {
    "console": '"http.request.method"="GET", '
    '"http.route"!~"/api/runs/\\\\{run_id\\\\}/output|/healthz|/readyz"',
    "pipeline": '"rpc.service"="pipeline.v1.PipelineService", '
    '"rpc.method"!~"RunPipeline|DownloadOutput"',
}
RUN_DURATION = "pipeline.run.duration"
FAILED_RUN = "RUN_STATUS_FAILED"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Scope:
    """Whose series a query reads: one environment's service, optionally one revision."""

    environment: str
    service: str
    revision: str | None = None

    def labels(self, *extra: str) -> str:
        found = [f"namespace={_quote(self.environment)}", f"job={_quote(self.service)}"]
        if self.revision is not None:
            # service.instance.id is "REVISION-<random>" (telemetry.setup).
            found.append(f"instance=~{_quote(self.revision + '-.*')}")
        return ", ".join([*found, *(e for e in extra if e)])


def _series(metric: str, scope: Scope, *extra: str) -> str:
    return "{" + ", ".join([_quote(metric), scope.labels(*extra)]) + "}"


def requests(scope: Scope, window: str) -> str:
    """How many requests the service answered in ``window`` (e.g. "5m")."""
    count = _series(HISTOGRAMS[scope.service] + "_count", scope)
    return f"sum(increase({count}[{window}]))"


def error_ratio(scope: Scope, window: str) -> str:
    count = HISTOGRAMS[scope.service] + "_count"
    failed = _series(count, scope, '"error.type"!=""')
    every = _series(count, scope)
    return f"sum(rate({failed}[{window}])) / sum(rate({every}[{window}]))"


def latency(scope: Scope, window: str, quantile: float = 0.95, by: str = "") -> str:
    """The interactive requests' ``quantile`` in seconds (per ``by`` label when given)."""
    buckets = _series(HISTOGRAMS[scope.service] + "_bucket", scope, INTERACTIVE[scope.service])
    group = f"le, {_quote(by)}" if by else "le"
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({buckets}[{window}])))"


def failed_runs(scope: Scope, window: str) -> str:
    failed = _series(RUN_DURATION + "_count", scope, f'"pipeline.run.status"="{FAILED_RUN}"')
    return f"sum(increase({failed}[{window}]))"


def render_monitoring(env_name: str, telemetry: dict[str, Any]) -> dict[str, Any]:
    """What modules/monitoring gets from ``envctl render``: thresholds, channels, queries."""
    thresholds = telemetry["thresholds"]
    services = {}
    for service in sorted(HISTOGRAMS):
        scope = Scope(env_name, service)
        services[service] = {
            "error_ratio": error_ratio(scope, "5m"),
            "p95": latency(scope, "5m"),
            "latency_by_operation": {
                f"p{int(q * 100)}": latency(
                    scope, "5m", q, "http.route" if service == "console" else "rpc.method"
                )
                for q in (0.5, 0.95, 0.99)
            },
            "requests": requests(scope, "5m"),
        }
    pipeline = Scope(env_name, "pipeline")
    channels = telemetry.get("notification_channels", [])
    return {
        "thresholds": {
            "error_ratio": thresholds["error_ratio"],
            "p95_seconds": thresholds["p95_seconds"],
            "failed_runs_per_hour": thresholds["failed_runs_per_hour"],
        },
        "notification_emails": sorted(c["email"] for c in channels),
        "queries": {
            "services": services,
            "failed_runs_per_hour": failed_runs(pipeline, "1h"),
        },
    }
