"""Freeze windows hold a deploy back; a rollback still goes through."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from envctl.ci.gate import decide
from envctl.cli import main as envctl

from .conftest import FROZEN_TIME, QUIET_TIME, commit_all, git

FROZEN = dt.datetime.fromisoformat(FROZEN_TIME)
QUIET = dt.datetime.fromisoformat(QUIET_TIME)
NEW_SHA = "1" * 40
NEW_DIGEST = "sha256:" + "ab" * 32


def _release_twice(repo: Path) -> None:
    """Give prod a second release (dev → staging → prod) so it has one to roll back to."""
    for service in ("pipeline", "console"):
        args = ["set-image", "dev", service, "--commit", NEW_SHA, "--digest", NEW_DIGEST]
        assert envctl([*args, "--repo", str(repo)]) == 0
    assert envctl(["promote", "dev", "staging", "--repo", str(repo)]) == 0
    assert envctl(["promote", "staging", "prod", "--repo", str(repo)]) == 0


def test_no_window_open_allows(env_repo: Path) -> None:
    decision = decide(env_repo, "prod", QUIET)
    assert decision.allowed
    assert decision.window is None


def test_an_open_window_refuses_an_ordinary_change(env_repo: Path) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    _release_twice(env_repo)
    decision = decide(env_repo, "prod", FROZEN, base)
    assert not decision.allowed
    assert "environments/prod.yaml: freeze[0]" in decision.reason
    assert "year-end" in decision.reason


def test_a_weekly_window_refuses_too(env_repo: Path) -> None:
    friday_afternoon = dt.datetime(2026, 6, 12, 16, 0, tzinfo=dt.UTC)
    decision = decide(env_repo, "prod", friday_afternoon)
    assert not decision.allowed
    assert "freeze[1]" in decision.reason


def test_a_rollback_goes_through_a_freeze(env_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _release_twice(env_repo)
    base = git(env_repo, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("ENVCTL_NOW", FROZEN_TIME)
    assert envctl(["rollback", "prod", "--repo", str(env_repo)]) == 0
    decision = decide(env_repo, "prod", FROZEN, base)
    assert decision.allowed
    assert "rollback" in decision.reason


def test_a_rollback_does_not_carry_a_module_change_through(
    env_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _release_twice(env_repo)
    base = git(env_repo, "rev-parse", "HEAD").strip()
    assert envctl(["rollback", "prod", "--repo", str(env_repo)]) == 0
    (env_repo / "modules" / "stack" / "main.tf").write_text("# riding along\n")
    commit_all(env_repo, "stack: change")
    assert not decide(env_repo, "prod", FROZEN, base).allowed


def test_an_old_rollback_does_not_open_the_gate(env_repo: Path) -> None:
    """Only a rollback in this push counts, not one from weeks ago."""
    _release_twice(env_repo)
    assert envctl(["rollback", "prod", "--repo", str(env_repo)]) == 0
    base = git(env_repo, "rev-parse", "HEAD").strip()
    (env_repo / "README.md").write_text("later\n")
    commit_all(env_repo, "docs")
    assert not decide(env_repo, "prod", FROZEN, base).allowed
    assert not decide(env_repo, "prod", FROZEN, None).allowed
