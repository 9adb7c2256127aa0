"""Which environments a push or a PR changes: real git repositories, real diffs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envctl.ci.changed import changed_environments, cloud_environments, promotion_order
from envctl.load import list_environments, load_environment

from .conftest import EditEnv, commit_all, git

ALL_CLOUD = ["dev", "staging", "prod"]


def _scale(max_instances: int) -> Any:
    def change(doc: Any) -> None:
        doc["services"]["console"]["scaling"]["max_instances"] = max_instances

    return change


def test_cloud_environments_follow_the_promotion_chain(env_repo: Path) -> None:
    assert cloud_environments(env_repo) == ALL_CLOUD


def test_promotion_order_sorts_by_distance_from_the_chain_start(env_repo: Path) -> None:
    envs = {n: load_environment(env_repo, n) for n in reversed(list_environments(env_repo))}
    assert promotion_order(envs) == ["local", "dev", "staging", "prod"]


def test_one_changed_file_is_one_environment(env_repo: Path, edit_env: EditEnv) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    edit_env(env_repo, "staging", _scale(4))
    commit_all(env_repo, "staging: scale")
    assert changed_environments(env_repo, base) == ["staging"]


def test_several_files_come_out_in_promotion_order(env_repo: Path, edit_env: EditEnv) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    edit_env(env_repo, "prod", _scale(6))
    commit_all(env_repo, "prod first")
    edit_env(env_repo, "dev", _scale(3))
    commit_all(env_repo, "then dev")
    assert changed_environments(env_repo, base) == ["dev", "prod"]


def test_a_module_change_deploys_every_cloud_environment(env_repo: Path) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    (env_repo / "modules" / "stack" / "main.tf").write_text("# stack, changed\n")
    commit_all(env_repo, "stack: change")
    assert changed_environments(env_repo, base) == ALL_CLOUD


def test_local_and_unrelated_paths_deploy_nothing(env_repo: Path, edit_env: EditEnv) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()

    def port(doc: Any) -> None:
        doc["services"]["console"]["env"]["EXTRA"] = "1"

    edit_env(env_repo, "local", port)
    (env_repo / "README.md").write_text("docs\n")
    commit_all(env_repo, "local only")
    assert changed_environments(env_repo, base) == []


@pytest.mark.parametrize("base", [None, "", "0" * 40, "f" * 40])
def test_an_unknown_base_means_everything(env_repo: Path, base: str | None) -> None:
    assert changed_environments(env_repo, base) == ALL_CLOUD


def test_a_deleted_environment_is_not_deployed(env_repo: Path, edit_env: EditEnv) -> None:
    # A made-up leaf environment, so that deleting it breaks no promotion chain.
    text = (env_repo / "environments" / "staging.yaml").read_text()
    qa = env_repo / "environments" / "qa.yaml"
    qa.write_text(text)
    commit_all(env_repo, "qa: new")
    base = git(env_repo, "rev-parse", "HEAD").strip()
    qa.unlink()
    edit_env(env_repo, "dev", _scale(3))
    commit_all(env_repo, "qa: gone; dev: scale")
    assert changed_environments(env_repo, base) == ["dev"]


def test_a_pull_request_counts_only_its_own_changes(env_repo: Path, edit_env: EditEnv) -> None:
    """Changes that reached main after the branch started are not the PR's."""
    git(env_repo, "checkout", "--quiet", "-b", "feature")
    edit_env(env_repo, "dev", _scale(3))
    commit_all(env_repo, "dev on the branch")
    git(env_repo, "checkout", "--quiet", "main")
    edit_env(env_repo, "prod", _scale(6))
    commit_all(env_repo, "prod on main meanwhile")
    git(env_repo, "checkout", "--quiet", "feature")
    assert changed_environments(env_repo, "main") == ["dev"]
