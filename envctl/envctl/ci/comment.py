"""The pull-request comment for one environment: what the change does, and its plan.

One comment per environment, found again by a hidden marker and edited in place on
every push, so a PR carries exactly one current answer per environment instead of a
scroll of stale ones. The words come from ``envctl diff --json`` (rendered by envctl's
own markdown function, so the comment reads like the CLI) and the plan summary from
``tofu show -json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envctl.ci.plan import PlanSummary
from envctl.diff import Change, to_markdown

# GitHub refuses comment bodies above 65536 characters; keep clear of it.
MAX_BODY = 60_000


def marker(kind: str, environment: str) -> str:
    return f"<!-- envctl-ci:{kind}:{environment} -->"


def diff_markdown(diff: dict[str, Any]) -> str:
    """``envctl diff --json`` output back into envctl's markdown."""
    changes = [Change(**c) for c in diff.get("changes", [])]
    return to_markdown(str(diff["environment"]), str(diff.get("base", "HEAD")), changes)


def load_diff(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "environment" not in data or "changes" not in data:
        raise ValueError(f"{path}: not the output of envctl diff --json")
    return data


def plan_comment(
    environment: str,
    diff: dict[str, Any] | None,
    plan: PlanSummary | None,
    *,
    commit: str,
    run_url: str | None = None,
    plan_error: str | None = None,
) -> str:
    # The lock marker makes this comment the PR's claim of the environment (envctl.ci.lock).
    parts = [marker("plan", environment), marker("lock", environment)]
    parts += [f"## `{environment}` at `{commit[:12]}`", ""]
    if diff is not None:
        parts += [diff_markdown(diff).rstrip(), ""]
    parts += ["#### OpenTofu plan", ""]
    if plan_error is not None:
        tail = plan_error.strip()[-3000:]
        parts += ["**The plan failed**; nothing can be deployed until it succeeds.", ""]
        parts += ["```text", tail.replace("```", "`\u200b``"), "```", ""]
    elif plan is not None:
        parts += [plan.to_markdown().rstrip(), ""]
    else:
        parts += ["(no plan: this environment has no OpenTofu stack)", ""]
    where = f" in [this run]({run_url})" if run_url else ""
    parts.append(
        f"<sub>Planned{where}; this comment is updated on every push. After merge the "
        "deploy applies this plan, and refuses if the plan it makes then differs.</sub>"
    )
    body = "\n".join(parts) + "\n"
    if len(body) > MAX_BODY:
        body = (
            body[: MAX_BODY - 100] + "\n\n… (truncated; the full plan is in the run's artifacts)\n"
        )
    return body
