"""Freeze windows hold a deploy back; a return to a release the record shows succeeded,
or an override in force, still goes through (decided from files and records, never from
commit messages). The merge-method scenarios are in tests/ledger/."""

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


def _record(repo: Path, name: str, when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_NOW", when)
    assert envctl(["record", name, "--result", "succeeded", "--repo", str(repo)]) == 0


def _release_twice(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record prod's seed release as succeeded, then give prod a second one (dev →
    staging → prod, each recorded succeeded), so prod has a known good release to return to."""
    _record(repo, "prod", "2026-06-01T09:00:00Z", monkeypatch)
    image = f"{NEW_SHA}@{NEW_DIGEST}"
    monkeypatch.setenv("ENVCTL_NOW", QUIET_TIME)
    assert (
        envctl(["set-image", "dev", f"pipeline={image}", f"console={image}", "--repo", str(repo)])
        == 0
    )
    _record(repo, "dev", "2026-06-10T10:01:00Z", monkeypatch)
    assert envctl(["promote", "dev", "staging", "--repo", str(repo)]) == 0
    _record(repo, "staging", "2026-06-10T10:02:00Z", monkeypatch)
    assert envctl(["promote", "staging", "prod", "--repo", str(repo)]) == 0
    _record(repo, "prod", "2026-06-10T10:03:00Z", monkeypatch)


def test_no_window_open_allows(env_repo: Path) -> None:
    decision = decide(env_repo, "prod", QUIET)
    assert decision.allowed
    assert decision.window is None


def test_an_open_window_refuses_an_ordinary_change(env_repo: Path) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    edit = env_repo / "environments" / "prod.yaml"
    edit.write_text(edit.read_text().replace("max_instances: 5", "max_instances: 6"))
    commit_all(env_repo, "prod: console to 6")
    decision = decide(env_repo, "prod", FROZEN, base)
    assert not decision.allowed
    assert "environments/prod.yaml: freeze[0]" in decision.reason
    assert "year-end" in decision.reason
    assert "not a release the deploy record shows succeeded in prod" in decision.reason


def test_a_weekly_window_refuses_too(env_repo: Path) -> None:
    friday_afternoon = dt.datetime(2026, 6, 12, 16, 0, tzinfo=dt.UTC)
    decision = decide(env_repo, "prod", friday_afternoon)
    assert not decision.allowed
    assert "freeze[1]" in decision.reason


def test_a_rollback_goes_through_a_freeze(env_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _release_twice(env_repo, monkeypatch)
    base = git(env_repo, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("ENVCTL_NOW", FROZEN_TIME)
    assert envctl(["rollback", "prod", "--repo", str(env_repo)]) == 0
    decision = decide(env_repo, "prod", FROZEN, base)
    assert decision.allowed
    assert decision.way == "known-good"
    assert "a return to a known good release" in decision.reason


def test_a_rollback_does_not_carry_a_module_change_through(
    env_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _release_twice(env_repo, monkeypatch)
    base = git(env_repo, "rev-parse", "HEAD").strip()
    assert envctl(["rollback", "prod", "--repo", str(env_repo)]) == 0
    (env_repo / "modules" / "stack" / "main.tf").write_text("# riding along\n")
    commit_all(env_repo, "stack: change")
    decision = decide(env_repo, "prod", FROZEN, base)
    assert not decision.allowed
    assert "modules/stack/main.tf changed as well" in decision.reason
    # Without the push's base, the last recorded deploy is the base: the same answer.
    assert not decide(env_repo, "prod", FROZEN, None).allowed


def test_a_trailer_opens_nothing(env_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _release_twice(env_repo, monkeypatch)
    base = git(env_repo, "rev-parse", "HEAD").strip()
    edit = env_repo / "environments" / "prod.yaml"
    edit.write_text(edit.read_text().replace("max_instances: 5", "max_instances: 6"))
    commit_all(env_repo, "prod: roll back\n\nEnvctl-Action: rollback\n")
    assert not decide(env_repo, "prod", FROZEN, base).allowed


@pytest.mark.parametrize(
    ("expires", "allowed"),
    [("2026-12-23T08:00:00Z", True), ("2026-12-22T09:59:59Z", False)],
    ids=["in-force", "expired"],
)
def test_an_override_in_force_opens_the_window(
    env_repo: Path, monkeypatch: pytest.MonkeyPatch, expires: str, allowed: bool
) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    edit = env_repo / "environments" / "prod.yaml"
    text = edit.read_text().replace("max_instances: 5", "max_instances: 6")
    override = f'override:\n  reason: INC-7\n  by: ops-lead\n  expires: "{expires}"\nservices:\n'
    edit.write_text(text.replace("services:\n", override, 1))
    commit_all(env_repo, "prod: console to 6 for INC-7")
    monkeypatch.setenv("ENVCTL_NOW", FROZEN_TIME)
    decision = decide(env_repo, "prod", FROZEN, base)
    assert decision.allowed is allowed
    if allowed:
        assert decision.reason.endswith(
            "but override by ops-lead until 2026-12-23T08:00:00Z (INC-7)"
        )
    else:
        assert "carries no override in force" in decision.reason
