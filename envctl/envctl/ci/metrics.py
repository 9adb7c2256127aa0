"""The deploy's metrics check: the new revisions' error ratio and p95, from Cloud Monitoring.

After the smoke check has sent traffic to the new revisions, each service's series of its
new revision (``instance`` starts with the revision, ADR 0027) are read with the same
PromQL the alert policies use (``envctl.monitoring``), over the environment's
``telemetry.verification.window_minutes``:

1. requests: polled until at least ``verification.min_requests`` have been counted or the
   wait runs out (exports arrive once per ``metric_interval_seconds``, and Cloud
   Monitoring takes a little longer to answer with them). Too few is a failure: a
   release whose metrics never arrive is not verified;
2. error ratio against ``telemetry.thresholds.error_ratio``;
3. p95 of the interactive requests against ``telemetry.thresholds.p95_seconds``.

The queries go to Cloud Monitoring's Prometheus HTTP API,
``GET https://monitoring.googleapis.com/v1/projects/PROJECT/location/global/prometheus/api/v1/query``,
with the deploy identity's OAuth access token (it needs ``roles/monitoring.viewer``), over
plain HTTPS: no client library. Every query is printed before it is sent, so the workflow
log shows exactly what was asked. The result is evidence for ``envctl record --evidence``:
``{"kind": "metrics", "ok": ..., "services": {NAME: {figures, thresholds, queries}}}``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envctl import monitoring
from envctl.model import Environment

API = "https://monitoring.googleapis.com"
USER_AGENT = "envctl-ci-metrics/1"
POLL_SECONDS = 30.0


class MetricsError(RuntimeError):
    """Cloud Monitoring could not be asked (refused, unreachable, an answer we cannot read)."""


class PrometheusApi:
    """Cloud Monitoring's PromQL endpoint for one project, with a bearer token."""

    def __init__(
        self,
        project: str,
        token: str,
        log: Callable[[str], None],
        api: str = API,
        timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(api)
        loopback = parsed.hostname in {"127.0.0.1", "::1", "localhost"}
        # The token only ever travels over TLS; plain http is for loopback tests.
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise ValueError(f"--api must be an https:// URL, not {api!r}")
        self.url = (
            f"{api.rstrip('/')}/v1/projects/{project}/location/global/prometheus/api/v1/query"
        )
        self._token, self._timeout, self._log = token, timeout, log

    def value(self, query: str, at: dt.datetime) -> float | None:
        """The query's one value at ``at`` (None: no series, or not a number, e.g. 0/0)."""
        self._log(f"query: {query}")
        params = urllib.parse.urlencode({"query": query, "time": f"{at.timestamp():.3f}"})
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            f"{self.url}?{params}",
            headers={"Authorization": f"Bearer {self._token}", "User-Agent": USER_AGENT},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310
                body = json.loads(reply.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise MetricsError(f"Cloud Monitoring answered {exc.code}: {_reason(exc)}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise MetricsError(f"Cloud Monitoring could not be reached: {exc}") from exc
        except ValueError as exc:
            raise MetricsError(f"Cloud Monitoring's answer is not JSON: {exc}") from exc
        return _scalar(body)


def _reason(exc: urllib.error.HTTPError) -> str:
    """Google's {"error": {"message"}} or Prometheus's {"error": "..."}, else the body's start."""
    raw = exc.read()[:2000].decode("utf-8", "replace")
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.strip()[:200] or exc.reason
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("status") or error)[:300]
    return str(error or body)[:300]


def _scalar(body: Any) -> float | None:
    if not isinstance(body, dict) or body.get("status") != "success":
        raise MetricsError(f"Cloud Monitoring's answer is not a success: {str(body)[:300]}")
    data = body.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    if not isinstance(result, list):
        raise MetricsError(f"Cloud Monitoring's answer has no result list: {str(data)[:300]}")
    if not result:
        return None
    if len(result) > 1:
        raise MetricsError(f"expected one series, got {len(result)}: {str(result)[:300]}")
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MetricsError(f"unreadable sample: {str(result[0])[:300]}") from exc
    return None if math.isnan(value) or math.isinf(value) else value


@dataclass
class ServiceVerdict:
    service: str
    revision: str
    requests: float | None = None
    error_ratio: float | None = None
    p95_seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    queries: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "ok": self.ok,
            "requests": self.requests,
            "error_ratio": self.error_ratio,
            "p95_seconds": self.p95_seconds,
            "problems": self.problems,
            "queries": self.queries,
        }


@dataclass
class MetricsReport:
    environment: str
    window_minutes: int
    min_requests: int
    thresholds: dict[str, float]
    checked_at: str
    services: list[ServiceVerdict]

    @property
    def ok(self) -> bool:
        return bool(self.services) and all(s.ok for s in self.services)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "metrics",
            "environment": self.environment,
            "ok": self.ok,
            "checked_at": self.checked_at,
            "window_minutes": self.window_minutes,
            "min_requests": self.min_requests,
            "thresholds": self.thresholds,
            "services": {s.service: s.as_dict() for s in self.services},
        }

    def to_markdown(self) -> str:
        head = "passed" if self.ok else "FAILED"
        lines = [
            f"Metrics check of {self.environment} (last {self.window_minutes} min of each new "
            f"revision, Cloud Monitoring): **{head}**",
            "",
            "| service | revision | requests | error ratio | p95 | |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s in self.services:
            lines.append(
                f"| {s.service} | `{s.revision}` | {_shown(s.requests, '{:.0f}')} | "
                f"{_shown(s.error_ratio, '{:.2%}')} (≤ {self.thresholds['error_ratio']:.2%}) | "
                f"{_shown(s.p95_seconds, '{:.3f} s')} (≤ {self.thresholds['p95_seconds']} s) | "
                f"{'✅' if s.ok else '❌ ' + '; '.join(s.problems)} |"
            )
        return "\n".join(lines) + "\n"


def _shown(value: float | None, form: str) -> str:
    return "no data" if value is None else form.format(value)


def check(
    env: Environment,
    revisions: dict[str, str],
    api: PrometheusApi,
    now: Callable[[], dt.datetime],
    wait_seconds: float | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> MetricsReport:
    """Judge each service's new revision (``revisions``: service → revision name)."""
    telemetry = env.data.get("telemetry") or {}
    if "thresholds" not in telemetry or "verification" not in telemetry:
        raise ValueError(
            f"{env.file}: telemetry: {env.name} sets no thresholds and verification to check "
            "its metrics against"
        )
    unknown = sorted(set(revisions) - set(monitoring.HISTOGRAMS))
    if unknown:
        raise ValueError(
            f"no metrics are known for {', '.join(unknown)} (known: console, pipeline)"
        )
    thresholds = telemetry["thresholds"]
    window_minutes = int(telemetry["verification"]["window_minutes"])
    min_requests = int(telemetry["verification"]["min_requests"])
    window = f"{window_minutes}m"
    deadline = time.monotonic() + (window_minutes * 60 if wait_seconds is None else wait_seconds)
    verdicts = []
    for service, revision in sorted(revisions.items()):
        scope = monitoring.Scope(env.name, service, revision)
        verdict = ServiceVerdict(service, revision)
        verdict.queries = {
            "requests": monitoring.requests(scope, window),
            "error_ratio": monitoring.error_ratio(scope, window),
            "p95": monitoring.latency(scope, window),
        }
        while True:
            verdict.requests = api.value(verdict.queries["requests"], now()) or 0.0
            if verdict.requests >= min_requests or time.monotonic() >= deadline:
                break
            sleep(poll_seconds)
        if verdict.requests < min_requests:
            verdict.problems.append(
                f"{verdict.requests:.0f} requests reached {revision} in {window_minutes} min "
                f"(at least {min_requests} needed to judge it): no metrics, no verdict"
            )
            verdicts.append(verdict)
            continue
        verdict.error_ratio = api.value(verdict.queries["error_ratio"], now())
        verdict.p95_seconds = api.value(verdict.queries["p95"], now())
        if verdict.error_ratio is None:
            verdict.problems.append("no error ratio could be computed")
        elif verdict.error_ratio > thresholds["error_ratio"]:
            verdict.problems.append(
                f"error ratio {verdict.error_ratio:.2%} is over {thresholds['error_ratio']:.2%}"
            )
        if verdict.p95_seconds is None:
            verdict.problems.append("no interactive request to take a p95 of")
        elif verdict.p95_seconds > thresholds["p95_seconds"]:
            verdict.problems.append(
                f"p95 {verdict.p95_seconds:.3f} s is over {thresholds['p95_seconds']} s"
            )
        verdicts.append(verdict)
    return MetricsReport(
        env.name,
        window_minutes,
        min_requests,
        {k: float(thresholds[k]) for k in ("error_ratio", "p95_seconds")},
        now().isoformat().replace("+00:00", "Z"),
        verdicts,
    )


def revisions_from_outputs(outputs: dict[str, Any]) -> dict[str, str]:
    """Each service's newest ready revision, from ``tofu output -json`` of modules/stack."""
    try:
        value = outputs["latest_ready_revisions"]["value"]
    except (KeyError, TypeError) as exc:
        raise ValueError("the stack's outputs have no latest_ready_revisions") from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise ValueError(f"latest_ready_revisions is not a map of revision names: {value!r}")
    return dict(value)
