"""bootstrap/github against the workflows it serves: every `vars.NAME` a workflow reads is
set, each from the GCP roots' outputs; the required checks are ci.yml's jobs by the names
they report; the Environments, the rulesets and the merge settings say what the
cross-team contracts say (.github/workflows/README.md, ADR 0024)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from envctl import hcl

from . import tfeval

WORKFLOWS = tfeval.REPO / ".github" / "workflows"
ROOT = tfeval.GITHUB_ROOT
# vars.NAME (or vars['NAME']) inside a ${{ }} expression.
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_VARS = re.compile(r"\bvars(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\])")


def _variables_in(text: str) -> list[str]:
    return [a or b for expr in _EXPR.findall(text) for a, b in _VARS.findall(expr)]


def _workflow(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _resource(rtype: str, name: str) -> dict[str, Any]:
    return tfeval.resources(ROOT)[(rtype, name)]


def _local(name: str) -> Any:
    return tfeval.locals_(ROOT)[name]


def _jobs_reading_vars() -> list[tuple[str, str, bool, str]]:
    """(workflow, job, runs in an Environment, variable) for every vars.NAME in a job."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_id, job in (_workflow(path).get("jobs") or {}).items():
            text = yaml.safe_dump(job)
            for name in _variables_in(text):
                found.append((path.name, job_id, "environment" in job, name))
        # vars outside jobs (workflow-level env) would be read without an Environment.
        top = {k: v for k, v in _workflow(path).items() if k != "jobs"}
        for name in _variables_in(yaml.safe_dump(top)):
            found.append((path.name, "(workflow)", False, name))
    return found


def test_the_workflows_read_variables() -> None:
    names = {name for *_, name in _jobs_reading_vars()}
    assert {"WIF_PROVIDER", "DEPLOY_SA", "PLAN_SA", "BUILD_SA", "RELEASE_APP_ID"} <= names


def test_every_variable_a_workflow_reads_is_set_by_bootstrap() -> None:
    repository = set(hcl.unquote(_local("repository_variables")))
    environment = set(hcl.unquote(_local("environment_variables")))
    missing = []
    for workflow, job, in_environment, name in _jobs_reading_vars():
        available = repository | (environment if in_environment else set())
        if name not in available:
            where = (
                "its Environment's or the repository's" if in_environment else "the repository's"
            )
            missing.append(f"{workflow} job {job} reads vars.{name}, not among {where} variables")
    assert not missing, "\n".join(missing)


def test_variables_come_from_the_gcp_roots_outputs() -> None:
    identity_root = tfeval.BOOTSTRAP / "gcp" / hcl.unquote(_local("identity_environment"))
    identity_outputs = tfeval.outputs(identity_root)
    for name, value in hcl.unquote(_local("repository_variables")).items():
        if name == "RELEASE_APP_ID":  # assigned by GitHub when the App is made
            assert value == "tostring(var.release_app_id)"
            continue
        match = re.fullmatch(r"local\.identity\.(\w+)", value)
        assert match, f"{name} = {value}: not an output of the GCP root"
        assert match.group(1) in identity_outputs, (
            f"{name}: {identity_root.name} has no output {match.group(1)}"
        )
    assert (
        hcl.unquote(_local("identity"))
        == "data.terraform_remote_state.gcp[local.identity_environment].outputs"
    )
    for name, output in hcl.unquote(_local("environment_variables")).items():
        for env in hcl.unquote(_local("deploy_environments")):
            assert output in tfeval.outputs(tfeval.BOOTSTRAP / "gcp" / env), (
                f"{name}: {env} has no {output}"
            )


def _reported_name(job_id: str, job: dict[str, Any]) -> str:
    return str(job.get("name", job_id))


def test_required_checks_are_cis_jobs_by_the_names_they_report() -> None:
    ci = _workflow(WORKFLOWS / "ci.yml")
    reported = {_reported_name(i, j) for i, j in ci["jobs"].items()}
    assert not any("${{" in name for name in reported), "a matrix name is not a fixed check name"
    required = hcl.unquote(_local("required_checks"))
    assert sorted(required) == sorted(reported)
    # ci.yml runs on every PR (no paths filter), so every required check always reports.
    triggers = ci[True] if True in ci else ci["on"]  # PyYAML reads the key `on` as True
    assert triggers["pull_request"] in (None, {}) or "paths" not in triggers["pull_request"]


def test_checks_of_path_filtered_workflows_are_not_required() -> None:
    required = set(hcl.unquote(_local("required_checks")))
    for path in sorted(WORKFLOWS.glob("*.yml")):
        data = _workflow(path)
        triggers = data.get(True, data.get("on")) or {}
        pr = triggers.get("pull_request") if isinstance(triggers, dict) else None
        if isinstance(pr, dict) and "paths" in pr:
            names = {_reported_name(i, j) for i, j in data["jobs"].items()}
            assert not required & names, (
                f"{path.name} is path-filtered: {required & names} would block other PRs"
            )


def test_main_ruleset_requires_prs_up_to_date_checks_and_forbids_force_push() -> None:
    ruleset = hcl.unquote(_resource("github_repository_ruleset", "main"))
    assert ruleset["target"] == "branch"
    assert ruleset["enforcement"] == "active"
    assert ruleset["conditions"][0]["ref_name"][0]["include"] == ["refs/heads/main"]
    (rules,) = ruleset["rules"]
    assert rules["deletion"] is True
    assert rules["non_fast_forward"] is True
    assert rules["required_linear_history"] is True
    assert rules["pull_request"]
    (checks,) = rules["required_status_checks"]
    assert checks["strict_required_status_checks_policy"] is True
    assert "bypass_actors" not in ruleset


def test_the_repository_allows_squash_merges_only() -> None:
    repo = hcl.unquote(_resource("github_repository", "this"))
    assert repo["allow_squash_merge"] is True
    assert repo["allow_merge_commit"] is False
    assert repo["allow_rebase_merge"] is False
    assert repo["has_issues"] is True  # drift.yml opens issues


def test_deploy_records_are_created_by_the_release_app_only_and_never_changed() -> None:
    create = hcl.unquote(
        _resource("github_repository_ruleset", "deploy_records_created_by_release_app")
    )
    immutable = hcl.unquote(_resource("github_repository_ruleset", "deploy_records_immutable"))
    for ruleset in (create, immutable):
        assert ruleset["target"] == "tag"
        assert ruleset["enforcement"] == "active"
        assert ruleset["conditions"][0]["ref_name"][0]["include"] == ["refs/tags/deploy/**"]
    assert create["rules"][0] == {"creation": True}
    assert create["bypass_actors"] == [
        {"actor_id": "var.release_app_id", "actor_type": "Integration", "bypass_mode": "always"}
    ]
    assert immutable["rules"][0] == {"update": True, "deletion": True, "non_fast_forward": True}
    assert "bypass_actors" not in immutable  # nobody, the App included, moves or deletes one


def test_environments_are_main_only_and_fresh_plan_holds_nothing() -> None:
    env = hcl.unquote(_resource("github_repository_environment", "this"))
    assert env["for_each"] == "local.environments"
    (policy,) = env["deployment_branch_policy"]
    assert policy == {"protected_branches": False, "custom_branch_policies": True}
    main_only = hcl.unquote(
        _resource("github_repository_environment_deployment_policy", "main_only")
    )
    assert main_only["for_each"] == "github_repository_environment.this"
    assert main_only["branch_pattern"] == "main"
    assert env["can_admins_bypass"] is False
    # Which Environments, and which need a person: prod and fresh-plan.
    assert hcl.unquote(_local("deploy_environments")) == ["dev", "staging", "prod"]
    reviewers = hcl.unquote(_local("reviewers"))
    assert set(reviewers) == {"prod", "fresh-plan"}
    assert reviewers["prod"] == "var.prod_reviewers"
    # fresh-plan: no variables, no secrets (only deploy_environments get variables).
    variables = hcl.unquote(_resource("github_actions_environment_variable", "deploy"))
    assert "local.deploy_environments" in variables["for_each"]
    kinds = {rtype for rtype, _ in tfeval.resources(ROOT)}
    assert not kinds & {"github_actions_environment_secret", "github_actions_secret"}


@pytest.mark.parametrize("root", [*tfeval.GCP_ROOTS, ROOT], ids=lambda p: p.name)
def test_bootstrap_state_lives_in_the_environments_state_bucket(root: Path) -> None:
    backend = {k: hcl.unquote(v) for k, v in tfeval.backend(root).items()}
    env = "prod" if root == ROOT else root.name
    file = yaml.safe_load((tfeval.REPO / "environments" / f"{env}.yaml").read_text())
    assert backend["bucket"] == file["state_bucket"]
    assert backend["prefix"] == ("bootstrap/github" if root == ROOT else "bootstrap/gcp")
