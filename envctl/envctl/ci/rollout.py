"""Gradual rollout: a new revision starts with no traffic, then takes its share in steps.

A service with ``rollout: {canary_percent, stable_revision}`` in its environment file is
deployed in steps, each one a ``tofu apply`` of the rendered variables with only the
service's ``traffic`` changed, and a smoke check after each:

    step 0  the new revision gets 0% under the revision tag ``canary``; the stable
            revision keeps 100% (tag ``stable``). The console's canary is reachable
            at its tag URL (https://canary---HOST), so it is smoke-checked there first.
    step 1  the rendered variables exactly as reviewed: canary_percent to the new
            revision, the rest to the stable one.

Going to 100% is a pull request that removes the ``rollout`` block: the environment file
stays the record of who gets which revision. A failed smoke check stops the steps; the
deploy workflow then opens the rollback PR.

The pipeline is internal (no ingress from a runner), so its canary at 0% is proven by
Cloud Run's own gRPC startup probe (the apply waits for the revision to be Ready); from
step 1 on, the console's /readyz and /api/dag reach it through the split. When the
console rolls out too, step 0 points the console's canary revision at the pipeline's
canary revision (its ``PIPELINE_ADDR`` becomes the pipeline's tag address,
``canary---HOST:443``), so the data canary (``verify``) runs the reference feeds through
the console's tag URL against the new pipeline while neither has traffic (ADR 0022). The
final step renders the console's address as usual again: its canary revision at step 1
reaches the pipeline through the pipeline's own split.
"""

from __future__ import annotations

import copy
import json
import subprocess
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.ci.smoke import SmokeReport
from envctl.model import Environment
from envctl.platform_env import ADDRESS, CANARY_ADDRESS
from envctl.render import LATEST, REVISION

CANARY, STABLE = "canary", "stable"
CONSOLE = "console"


@dataclass(frozen=True)
class Step:
    index: int
    percents: dict[str, int]  # service → share of the new revision; {} = as rendered
    final: bool

    def describe(self) -> str:
        if self.final:
            return "apply the reviewed split: " + ", ".join(
                f"{svc} {pct}% to {CANARY}" for svc, pct in sorted(self.percents.items())
            )
        return "deploy with no traffic: " + ", ".join(
            f"{svc} {pct}% to {CANARY}" for svc, pct in sorted(self.percents.items())
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "percents": self.percents,
            "final": self.final,
            "description": self.describe(),
        }


def rollouts(env: Environment) -> dict[str, dict[str, Any]]:
    """Services of ``env`` with a gradual rollout configured, by name."""
    return {name: svc["rollout"] for name, svc in env.services.items() if svc.get("rollout")}


def steps(env: Environment) -> list[Step]:
    configured = rollouts(env)
    if not configured:
        return []
    return [
        Step(0, {svc: 0 for svc in configured}, final=False),
        Step(1, {svc: int(r["canary_percent"]) for svc, r in configured.items()}, final=True),
    ]


def traffic(percent: int, stable_revision: str) -> list[dict[str, Any]]:
    """The stack's ``traffic`` list: ``percent`` to the newest revision, the rest stable."""
    return [
        {"type": LATEST, "percent": percent, "revision": None, "tag": CANARY},
        {"type": REVISION, "percent": 100 - percent, "revision": stable_revision, "tag": STABLE},
    ]


def paired_canaries(env: Environment) -> dict[str, list[str]]:
    """Rolled-out callers → the rolled-out services they call: at step 0 each such
    caller's canary revision addresses its callee's canary revision."""
    configured = rollouts(env)
    pairs = {
        caller: [callee for callee in env.calls(caller) if callee in configured]
        for caller in configured
    }
    return {caller: callees for caller, callees in pairs.items() if callees}


def step_variables(env: Environment, rendered: dict[str, Any], step: Step) -> dict[str, Any]:
    """The stack variables for ``step``: the final step is ``rendered`` untouched."""
    if step.final:
        return rendered
    out = copy.deepcopy(rendered)
    for svc, rollout in rollouts(env).items():
        out["services"][svc]["traffic"] = traffic(step.percents[svc], rollout["stable_revision"])
    for caller, callees in paired_canaries(env).items():
        for ref in out["services"][caller].get("url_env", {}).values():
            if ref["service"] in callees and ref["form"] == ADDRESS:
                ref["form"] = CANARY_ADDRESS
    return out


def canary_reaches_pipeline(env: Environment) -> bool:
    """Does the console's canary tag URL reach the new pipeline at step 0? Yes when the
    console rolls out and the pipeline either takes all traffic at once (no rollout of
    its own) or is paired with it (:func:`paired_canaries`)."""
    configured = rollouts(env)
    if CONSOLE not in configured:
        return False
    return "pipeline" not in configured or "pipeline" in paired_canaries(env).get(CONSOLE, [])


def tagged_url(url: str, tag: str) -> str:
    """Cloud Run's URL of a revision tag: the tag and three dashes before the host."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r} is not a URL")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{tag}---{parts.netloc}"))


def service_url(outputs: dict[str, Any], service: str) -> str:
    """``service``'s URL from ``tofu output -json``.

    Accepts the shapes a stack may reasonably expose: ``service_urls`` / ``service_uris``
    (a map of service → URL), ``services`` (a map of service → object with ``uri`` or
    ``url``), or ``<service>_url`` / ``<service>_uri``.
    """

    def value(name: str) -> Any:
        entry = outputs.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    for name in ("service_urls", "service_uris"):
        found = value(name)
        if isinstance(found, dict) and isinstance(found.get(service), str):
            return str(found[service])
    services = value("services")
    if isinstance(services, dict) and isinstance(services.get(service), dict):
        for key in ("uri", "url", "service_uri", "service_url"):
            if isinstance(services[service].get(key), str):
                return str(services[service][key])
    for name in (f"{service}_url", f"{service}_uri"):
        if isinstance(value(name), str):
            return str(value(name))
    known = ", ".join(sorted(outputs)) or "none"
    raise KeyError(
        f"no URL for {service!r} in the stack's outputs (have: {known}); expected "
        f'service_urls = {{ {service} = "https://..." }}'
    )


def expected_commits(env: Environment, step: Step | None, via_canary_url: bool) -> dict[str, str]:
    """Which service → commit the smoke check may insist on at ``step``.

    A service whose traffic is split answers from either revision, so its commit is not
    checked; the console behind its canary tag URL is always the new one.
    """
    split = set(step.percents) if step is not None else set()
    expect = {}
    for name in env.services:
        if name not in split or (name == CONSOLE and via_canary_url):
            expect[name] = env.image(name).commit
    return expect


Runner = Callable[[Sequence[str]], str]
Smoke = Callable[[str, dict[str, str]], SmokeReport]
# The data canary at a console URL: True when the new pipeline agrees with its baseline.
Verify = Callable[[str], bool]


def run_command(args: Sequence[str]) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:3])} … failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


@dataclass
class StepResult:
    step: Step
    url: str
    report: SmokeReport
    canary: bool | None = None  # the data canary's verdict, where it ran

    @property
    def ok(self) -> bool:
        return self.report.ok and self.canary is not False

    def as_dict(self) -> dict[str, Any]:
        found = {**self.step.as_dict(), "url": self.url, "smoke": self.report.as_dict()}
        if self.canary is not None:
            found["canary"] = self.canary
        return found


def execute(
    env: Environment,
    rendered: dict[str, Any],
    stack: Path,
    workdir: Path,
    console_url: str,
    smoke: Smoke,
    runner: Runner = run_command,
    verify: Verify | None = None,
) -> list[StepResult]:
    """Apply each step and smoke-check it; stop at the first failed check. ``verify``
    (the data canary) runs at step 0 through the console's canary tag URL when that
    reaches the new pipeline (:func:`canary_reaches_pipeline`), before any traffic."""
    results: list[StepResult] = []
    configured = rollouts(env)
    for step in steps(env):
        var_file = workdir / f"{env.name}-rollout-step-{step.index}.tfvars.json"
        var_file.write_text(
            json.dumps(step_variables(env, rendered, step), indent=2, sort_keys=True)
        )
        runner(
            [
                "tofu",
                f"-chdir={stack}",
                "apply",
                "-input=false",
                "-auto-approve",
                f"-var-file={var_file.resolve()}",
            ]
        )
        via_canary = CONSOLE in configured and step.percents.get(CONSOLE) == 0
        url = tagged_url(console_url, CANARY) if via_canary else console_url
        report = smoke(url, expected_commits(env, step, via_canary))
        result = StepResult(step, url, report)
        results.append(result)
        if report.ok and verify is not None and not step.final and canary_reaches_pipeline(env):
            result.canary = verify(url)
        if not result.ok:
            break
    return results
