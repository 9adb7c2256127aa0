"""Smoke check of a deployed environment, through the console's public API.

Three requests, each with ``Authorization: Bearer <Google ID token>`` when a token is
given (Cloud Run refuses unauthenticated callers on every service here):

- ``GET /readyz``: the console is up *and* its pipeline answers gRPC health SERVING, so
  this is the pipeline health check too. Polled until a deadline: a new revision may be
  cold. 401/403 end the wait at once (a wrong identity does not fix itself).
- ``GET /api/dag``: a real round trip to the pipeline (GetDag): at least one node, node
  types builtin/custom, and every edge joins two known nodes.
- ``GET /api/status``: the pipeline is healthy and both services report the commits the
  environment file names (IMAGE_COMMIT), proving the new revisions, not old ones, answer.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envctl.ci.console_client import ConsoleClient, Response

USER_AGENT = "envctl-ci-smoke/1"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeReport:
    url: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }

    def to_markdown(self) -> str:
        head = "passed" if self.ok else "FAILED"
        lines = [f"Smoke check of {self.url}: **{head}**", ""]
        lines += [f"- {'✅' if c.ok else '❌'} `{c.name}`: {c.detail}" for c in self.checks]
        return "\n".join(lines) + "\n"


class SmokeClient(ConsoleClient):
    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0) -> None:
        super().__init__(base_url, token, timeout, USER_AGENT)


def _ready(
    client: SmokeClient,
    deadline: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Check:
    attempts = 0
    last = "no answer"
    while True:
        attempts += 1
        try:
            reply = client.get("/readyz")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = f"no answer ({getattr(exc, 'reason', exc)})"
        else:
            if reply.status == 200:
                pipeline = _field(reply, "pipeline")
                return Check("/readyz", True, f"ready, pipeline {pipeline} (attempt {attempts})")
            if reply.status in {401, 403}:
                return Check(
                    "/readyz",
                    False,
                    f"HTTP {reply.status}: the token's identity may not invoke the console "
                    "(it needs roles/run.invoker) or the token's audience is wrong",
                )
            last = f"HTTP {reply.status} {reply.error_text()}"
        if clock() + interval > deadline:
            return Check("/readyz", False, f"not ready after {attempts} attempts: {last}")
        sleep(interval)


def _field(reply: Response, key: str) -> str:
    try:
        return str(reply.json()[key])
    except (ValueError, KeyError, TypeError):
        return "?"


def _dag(client: SmokeClient) -> Check:
    reply = client.get("/api/dag")
    if reply.status != 200:
        return Check("/api/dag", False, f"HTTP {reply.status} {reply.error_text()}")
    try:
        dag = reply.json()
        nodes, edges = dag["nodes"], dag["edges"]
        ids = {node["id"] for node in nodes}
        kinds = {node["type"] for node in nodes}
        ends = {end for edge in edges for end in (edge["source"], edge["target"])}
    except (ValueError, KeyError, TypeError) as exc:
        return Check("/api/dag", False, f"not ReactFlow JSON ({type(exc).__name__}: {exc})")
    if not nodes:
        return Check("/api/dag", False, "the DAG has no nodes: the pipeline serves no steps")
    if not kinds <= {"builtin", "custom"}:
        return Check(
            "/api/dag", False, f"unknown node types {sorted(kinds - {'builtin', 'custom'})}"
        )
    if not ends <= ids:
        return Check("/api/dag", False, f"edges name unknown nodes {sorted(ends - ids)}")
    return Check("/api/dag", True, f"{len(nodes)} nodes, {len(edges)} edges")


def _status(client: SmokeClient, expect: dict[str, str]) -> Check:
    reply = client.get("/api/status")
    if reply.status != 200:
        return Check("/api/status", False, f"HTTP {reply.status} {reply.error_text()}")
    try:
        status = reply.json()
        healthy = bool(status["healthy"])
        running = {"pipeline": str(status["version"]), "console": str(status["console_version"])}
    except (ValueError, KeyError, TypeError) as exc:
        return Check("/api/status", False, f"unexpected body ({type(exc).__name__}: {exc})")
    if not healthy:
        return Check("/api/status", False, "the pipeline reports itself unhealthy")
    wrong = [
        f"{svc} runs {running[svc][:12]}, expected {want[:12]}"
        for svc, want in sorted(expect.items())
        if svc in running and running[svc] != want
    ]
    if wrong:
        return Check("/api/status", False, "; ".join(wrong))
    shown = ", ".join(f"{svc} {sha[:12]}" for svc, sha in sorted(running.items()))
    return Check("/api/status", True, f"healthy; {shown}")


def smoke(
    base_url: str,
    token: str | None = None,
    expect: dict[str, str] | None = None,
    *,
    ready_timeout: float = 180.0,
    interval: float = 5.0,
    request_timeout: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeReport:
    """Run the checks against ``base_url``; ``expect`` maps service → commit it must run."""
    client = SmokeClient(base_url, token, request_timeout)
    report = SmokeReport(client.base_url)
    ready = _ready(client, clock() + ready_timeout, interval, clock, sleep)
    report.checks.append(ready)
    if not ready.ok:
        return report  # the rest would only repeat the same failure
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("/api/dag", lambda: _dag(client)),
        ("/api/status", lambda: _status(client, expect or {})),
    ]
    for name, run in checks:
        try:
            report.checks.append(run())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            report.checks.append(Check(name, False, f"no answer ({getattr(exc, 'reason', exc)})"))
    return report
