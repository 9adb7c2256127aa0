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
step 1 on, the console's /readyz and /api/dag reach it through the split.
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


def step_variables(env: Environment, rendered: dict[str, Any], step: Step) -> dict[str, Any]:
    """The stack variables for ``step``: the final step is ``rendered`` untouched."""
    if step.final:
        return rendered
    out = copy.deepcopy(rendered)
    for svc, rollout in rollouts(env).items():
        out["services"][svc]["traffic"] = traffic(step.percents[svc], rollout["stable_revision"])
    return out


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

    def as_dict(self) -> dict[str, Any]:
        return {**self.step.as_dict(), "url": self.url, "smoke": self.report.as_dict()}


def execute(
    env: Environment,
    rendered: dict[str, Any],
    stack: Path,
    workdir: Path,
    console_url: str,
    smoke: Smoke,
    runner: Runner = run_command,
) -> list[StepResult]:
    """Apply each step and smoke-check it; stop at the first failed check."""
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
        results.append(StepResult(step, url, report))
        if not report.ok:
            break
    return results
