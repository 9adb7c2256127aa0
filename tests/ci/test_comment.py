"""The PR comment: envctl diff's words plus the plan summary, one per environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.comment import MAX_BODY, load_diff, marker, plan_comment
from envctl.ci.plan import summarize
from envctl.cli import main as envctl

from .conftest import EditEnv
from .plans import image_update, plan

SHA = "0123456789abcdef" * 2 + "01234567"


def _diff_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert envctl(["diff", "staging", "--json", "--repo", str(repo)]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_the_comment_carries_the_diff_the_plan_and_its_marker(
    env_repo: Path, edit_env: EditEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(doc: Any) -> None:
        doc["services"]["console"]["scaling"]["max_instances"] = 9
        doc["services"]["console"]["invokers"].append("group:auditors@example.org")

    edit_env(env_repo, "staging", change)
    diff = _diff_json(env_repo, capsys)
    body = plan_comment(
        "staging", diff, summarize(plan(image_update())), commit=SHA, run_url="https://run/1"
    )
    assert body.startswith(marker("plan", "staging"))
    assert f"## `staging` at `{SHA[:12]}`" in body
    assert "console: scaling.max_instances: 3 → 9" in body
    assert "group:auditors@example.org may now invoke it" in body
    assert "**Plan: 0 to add, 1 to change, 0 to destroy.**" in body
    assert "[this run](https://run/1)" in body


def test_load_diff_refuses_other_json(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"ok": False}))
    with pytest.raises(ValueError, match="envctl diff --json"):
        load_diff(path)


def test_a_failed_plan_is_shown_instead_of_a_summary() -> None:
    body = plan_comment("dev", None, None, commit=SHA, plan_error="Error: ```quota``` exceeded\n")
    assert "**The plan failed**" in body
    assert "Error: `\u200b``quota`\u200b`` exceeded" in body  # a log cannot close the code block


def test_a_huge_comment_is_cut_below_githubs_limit() -> None:
    body = plan_comment("dev", None, None, commit=SHA, plan_error="x" * 10 + "\n" * 100_000)
    assert len(body) <= 65_536
    huge = {
        "environment": "dev",
        "base": "HEAD",
        "changes": [
            {
                "category": "env",
                "service": "console",
                "field": f"env.V{i}",
                "before": None,
                "after": "1",
                "text": f"console: env.V{i}: set to {'y' * 200}",
            }
            for i in range(500)
        ],
    }
    body = plan_comment("dev", huge, None, commit=SHA)
    assert len(body) <= MAX_BODY
    assert body.endswith("(truncated; the full plan is in the run's artifacts)\n")
