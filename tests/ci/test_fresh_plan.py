"""Stale plans at deploy: the verdict of each environment's plan against the reviewed one,
and the summary of the fresh plans a person approves (envctl.ci.freshplan)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.__main__ import main

from .plans import image_update, plan


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "github_output"
    out.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    return out


def verdict(
    tmp_path: Path, env: str, current: object, reviewed: object | None, run: str
) -> dict[str, Any]:
    cur = write(tmp_path / f"{env}-current.json", current)
    rev = tmp_path / f"{env}-reviewed" / "plan.json"
    if reviewed is not None:
        write(rev, reviewed)
    out = tmp_path / "verdicts" / env / "verdict.json"
    args = ["plan-verdict", env, "--current", str(cur), "--reviewed", str(rev)]
    assert main([*args, "--reviewed-run", run, "--out", str(out)]) == 0
    return dict(json.loads(out.read_text()))


def test_the_reviewed_plan_is_not_fresh(tmp_path: Path, outputs: Path) -> None:
    found = verdict(tmp_path, "staging", plan(image_update()), plan(image_update()), "42")
    assert found["fresh"] is False
    assert found["reviewed"] is True
    assert "fresh=false" in outputs.read_text()


def test_a_plan_that_moved_since_review_is_fresh_with_what_differs(
    tmp_path: Path, outputs: Path
) -> None:
    reviewed = plan(image_update("registry/console@sha256:reviewed"))
    found = verdict(
        tmp_path, "prod", plan(image_update("registry/console@sha256:now")), reviewed, "42"
    )
    assert found["fresh"] is True
    assert found["reviewed"] is True
    assert "differs from the plan reviewed" in found["reason"]
    assert any("planned differently now" in d for d in found["differences"])
    assert "fresh=true" in outputs.read_text()


def test_no_reviewed_run_is_fresh_never_skipped(tmp_path: Path, outputs: Path) -> None:
    # workflow_dispatch: no reviewed run, even if some file happens to lie there.
    found = verdict(tmp_path, "prod", plan(image_update()), plan(image_update()), "")
    assert found["fresh"] is True
    assert found["reviewed"] is False
    assert "No plan was reviewed" in found["reason"]


def test_a_reviewed_run_without_this_environment_s_plan_is_fresh(
    tmp_path: Path, outputs: Path
) -> None:
    found = verdict(tmp_path, "staging", plan(image_update()), None, "42")
    assert found["fresh"] is True
    assert "kept no plan for `staging`" in found["reason"]


def test_fresh_plans_lists_what_to_approve_and_shows_the_plans(
    tmp_path: Path, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict(tmp_path, "dev", plan(image_update()), plan(image_update()), "42")
    verdict(tmp_path, "prod", plan(image_update()), None, "")
    capsys.readouterr()
    assert main(["fresh-plans", str(tmp_path / "verdicts"), "--expect", '["dev", "prod"]']) == 0
    text = capsys.readouterr().out
    assert 'environments=["prod"]' in outputs.read_text()
    assert "any=true" in outputs.read_text()
    assert "`prod`: fresh plan, waiting for approval" in text
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in text
    assert "`dev`: the plan is the one reviewed" in text
    summary = Path(os.environ["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Fresh plans to approve" in summary


def test_nothing_fresh_needs_no_approval(tmp_path: Path, outputs: Path) -> None:
    verdict(tmp_path, "dev", plan(image_update()), plan(image_update()), "42")
    assert main(["fresh-plans", str(tmp_path / "verdicts")]) == 0
    assert "any=false" in outputs.read_text()


def test_a_missing_verdict_is_an_error_not_a_silent_pass(
    tmp_path: Path, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict(tmp_path, "dev", plan(image_update()), plan(image_update()), "42")
    assert main(["fresh-plans", str(tmp_path / "verdicts"), "--expect", '["dev", "prod"]']) == 1
    assert "no plan verdict for prod" in capsys.readouterr().err


def test_a_dispatch_goes_through_approval_and_is_compared_again_before_apply(
    tmp_path: Path, outputs: Path, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy workflow's calls in order, for a push that came from no planned PR."""
    from .fake_github import REPO, FakeGitHub

    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", http_server(fake.route).url)
    assert main(["reviewed-run", "--sha", "1" * 40, "--optional"]) == 0
    assert "run_id=\n" in outputs.read_text()  # nothing was reviewed: not a refusal
    planned = write(tmp_path / "plan-job" / "plan.json", plan(image_update()))
    verdict_file = tmp_path / "artifacts" / "deploy-plan-prod" / "verdict.json"
    args = ["plan-verdict", "prod", "--current", str(planned), "--reviewed", "reviewed/plan.json"]
    assert main([*args, "--reviewed-run", "", "--out", str(verdict_file)]) == 0
    assert main(["fresh-plans", str(tmp_path / "artifacts"), "--expect", '["prod"]']) == 0
    assert "any=true" in outputs.read_text()  # the fresh-plan job waits for a person
    # After approval the deploy job plans again and applies only the approved plan.
    same = write(tmp_path / "deploy-job" / "same.json", plan(image_update()))
    moved = write(tmp_path / "deploy-job" / "moved.json", plan(image_update("r/c@sha256:x")))
    assert main(["plan-check", str(planned), str(same)]) == 0
    assert main(["plan-check", str(planned), str(moved)]) == 1
