"""Stale plans at deploy time, answered by a person instead of a refusal (ADR 0023).

deploy.yml's ``plan`` job plans each environment with the read-only plan identity and
compares that plan with the one reviewed on the pull request (:func:`verdict`). When they
are the same, the deploy goes on. When they differ, or there is no reviewed plan at all
(``workflow_dispatch``, a push that came from no planned PR), the environment's plan is
*fresh*: the ``fresh-plan`` job, in the GitHub Environment of that name (required
reviewers, main only), waits for a person to approve it, with the fresh plans and why
each is fresh in the run's summary (:func:`fresh_summary`). The deploy job then plans
once more with the deploy identity and applies only a plan equal to the approved one
(``plan-check``), so the comparison is never skipped: a plan that moved again while it
waited for approval is refused, not applied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.ci.plan import differences, load_plan, summarize

VERDICT_FILE = "verdict.json"


@dataclass(frozen=True)
class Verdict:
    environment: str
    reviewed: bool  # a plan reviewed on a pull request was found
    reason: str  # why the plan is fresh ("" when it is the reviewed one)
    differences: tuple[str, ...]
    plan_sha256: str  # of the plan JSON this job made (what the approval covers)
    summary_markdown: str

    @property
    def fresh(self) -> bool:
        return bool(self.reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "reviewed": self.reviewed,
            "fresh": self.fresh,
            "reason": self.reason,
            "differences": list(self.differences),
            "plan_sha256": self.plan_sha256,
            "summary_markdown": self.summary_markdown,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Verdict:
        if not isinstance(data, dict) or not isinstance(data.get("environment"), str):
            raise ValueError(f"{where}: not a plan verdict (no environment)")
        return cls(
            data["environment"],
            bool(data.get("reviewed")),
            str(data.get("reason") or ""),
            tuple(str(d) for d in data.get("differences") or ()),
            str(data.get("plan_sha256") or ""),
            str(data.get("summary_markdown") or ""),
        )

    def to_markdown(self) -> str:
        if not self.fresh:
            return f"✅ `{self.environment}`: the plan is the one reviewed on the pull request\n"
        lines = [f"### `{self.environment}`: fresh plan, waiting for approval", "", self.reason]
        if self.differences:
            lines += ["", "What differs from the reviewed plan:", ""]
            lines += [f"- {d}" for d in self.differences[:40]]
            if len(self.differences) > 40:
                lines.append(f"- … and {len(self.differences) - 40} more")
        lines += ["", "The plan to approve:", "", self.summary_markdown.rstrip()]
        lines += ["", f"<sub>plan JSON sha256 `{self.plan_sha256}`</sub>"]
        return "\n".join(lines) + "\n"


def verdict(environment: str, current: Path, reviewed: Path | None) -> Verdict:
    """Is ``current`` the plan reviewed on the PR (``reviewed``; None or a missing file:
    there is no reviewed plan)?"""
    plan = load_plan(current)
    digest = hashlib.sha256(current.read_bytes()).hexdigest()
    summary = summarize(plan).to_markdown()
    if reviewed is None:
        why = (
            "No plan was reviewed for this deploy (dispatched by hand, or pushed without a "
            "planned pull request): a person approves the plan made now."
        )
        return Verdict(environment, False, why, (), digest, summary)
    if not reviewed.is_file():
        why = (
            f"The reviewed plan run kept no plan for `{environment}` ({reviewed} is missing): "
            "a person approves the plan made now."
        )
        return Verdict(environment, False, why, (), digest, summary)
    found = differences(load_plan(reviewed), plan)
    if not found:
        return Verdict(environment, True, "", (), digest, summary)
    why = (
        "The plan made now differs from the plan reviewed on the pull request (another "
        "change reached this environment since): a person approves the plan made now."
    )
    return Verdict(environment, True, why, tuple(found), digest, summary)


def load_verdicts(folder: Path) -> list[Verdict]:
    """Every ``verdict.json`` under ``folder`` (one per environment's plan artifact)."""
    found = []
    for path in sorted(folder.rglob(VERDICT_FILE)) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        found.append(Verdict.from_dict(data, str(path)))
    return found


def fresh_summary(verdicts: list[Verdict]) -> str:
    fresh = [v for v in verdicts if v.fresh]
    if not fresh:
        return "Every plan is the one reviewed on its pull request; no approval needed.\n"
    head = [
        "## Fresh plans to approve",
        "",
        "Approving the `fresh-plan` environment applies exactly these plans (the deploy "
        "plans again and refuses one that moved since).",
        "",
    ]
    return "\n".join(head) + "\n".join(v.to_markdown() for v in verdicts)
