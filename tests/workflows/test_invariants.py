"""Invariants of .github/workflows that linters do not know about: pinned actions, least
privilege, timeouts, one deploy at a time per environment behind its GitHub Environment,
SHA-tagged images only, and every envctl / envctl.ci call a real command with real flags."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envctl.cli
from envctl.ci.__main__ import parser as ci_parser
from envctl.ci.changed import cloud_environments

from .conftest import ROOT, WORKFLOWS
from .shell import commands, envctl_calls, envctl_ci_calls

EXPECTED = {
    "ci.yml",
    "bench.yml",
    "build.yml",
    "plan.yml",
    "deploy.yml",
    "promote.yml",
    "rollback.yml",
    "drift.yml",
    "providers-lock.yml",
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s*#\s*v\d+\.\d+\.\d+\s*$")

Workflows = dict[str, dict[str, Any]]


def jobs(workflows: Workflows) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            yield name, job_id, job


def steps(workflows: Workflows) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, job_id, job in jobs(workflows):
        for step in job.get("steps", []):
            yield name, job_id, step


def scripts(workflows: Workflows) -> Iterator[tuple[str, str, str]]:
    for name, job_id, step in steps(workflows):
        if "run" in step:
            yield name, job_id, step["run"]


def test_exactly_the_workflows_of_the_issue_and_a_readme(workflows: Workflows) -> None:
    assert set(workflows) == EXPECTED
    readme = (WORKFLOWS / "README.md").read_text()
    for name in EXPECTED:
        assert f"`{name}`" in readme, f"README.md does not describe {name}"


def test_top_level_permissions_are_empty(workflows: Workflows) -> None:
    for name, wf in workflows.items():
        assert wf.get("permissions") == {}, f"{name}: top-level permissions must be {{}}"


def test_every_job_has_a_timeout_and_its_own_permissions(workflows: Workflows) -> None:
    for name, job_id, job in jobs(workflows):
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int), f"{name}: {job_id}: no timeout-minutes"
        assert 0 < timeout <= 90, f"{name}: {job_id}: timeout-minutes {timeout}"
        assert isinstance(job.get("permissions"), dict), f"{name}: {job_id}: no permissions"


def test_every_action_is_pinned_to_a_commit_with_its_version(workflows: Workflows) -> None:
    versions: dict[str, str] = {}
    seen = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = USES.match(line)
            if not match:
                continue
            seen += 1
            ref, rest = match["ref"], match["rest"]
            where = f"{path.name}:{number}"
            assert PINNED.match(ref), f"{where}: {ref} is not pinned to a 40-hex commit"
            assert VERSION_COMMENT.match(rest), f"{where}: {ref} needs a '# vX.Y.Z' comment"
            version = rest.strip().lstrip("#").strip()
            # One commit is one version everywhere it is used.
            assert versions.setdefault(ref, version) == version, f"{where}: {ref} is {version}"
    assert seen > 20


def test_one_version_of_each_action(workflows: Workflows) -> None:
    pins: dict[str, set[str]] = {}
    for _, _, step in steps(workflows):
        if "uses" in step:
            action, _, sha = step["uses"].partition("@")
            pins.setdefault(action, set()).add(sha)
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


def test_nothing_says_latest() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert "latest" not in line.lower(), f"{path.name}:{number}: {line.strip()}"


def test_checkouts_keep_no_credentials(workflows: Workflows) -> None:
    for name, job_id, step in steps(workflows):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {job_id}"


def test_no_expression_is_expanded_inside_a_script(workflows: Workflows) -> None:
    """Values reach scripts through env:, so no input can become shell code."""
    for name, job_id, script in scripts(workflows):
        assert "${{" not in script, f"{name}: {job_id}: pass the value through env:"


def test_id_token_only_where_workload_identity_is_used(workflows: Workflows) -> None:
    for name, job_id, job in jobs(workflows):
        uses_wif = any(
            str(s.get("uses", "")).startswith("google-github-actions/auth@")
            for s in job.get("steps", [])
        )
        has_id_token = job["permissions"].get("id-token") == "write"
        assert uses_wif == has_id_token, f"{name}: {job_id}: id-token: write iff WIF is used"


def test_workload_identity_never_uses_keys(workflows: Workflows) -> None:
    for name, job_id, step in steps(workflows):
        if str(step.get("uses", "")).startswith("google-github-actions/auth@"):
            given = step.get("with", {})
            assert "credentials_json" not in given, f"{name}: {job_id}: no JSON keys"
            assert given.get("workload_identity_provider") == "${{ vars.WIF_PROVIDER }}"
            assert str(given.get("service_account", "")).startswith("${{ vars.")


def test_write_scopes_only_where_they_are_used(workflows: Workflows) -> None:
    for name, job_id, job in jobs(workflows):
        perms = job["permissions"]
        text = "\n".join(s.get("run", "") for s in job.get("steps", []))
        if perms.get("pull-requests") == "write":
            # PR comments: the plan comment and the lock claims it carries, or the
            # bench's ratio table (bench.yml).
            assert any(c in text for c in ("pr-comment", "envctl.ci lock", "-m bench comment")), (
                f"{name}: {job_id}"
            )
            assert "--pr" in text, f"{name}: {job_id}"
        if perms.get("deployments") == "write":
            assert "envctl.ci deployment" in text, f"{name}: {job_id}"
        if perms.get("issues") == "write":
            assert "--sync" in text, f"{name}: {job_id}"
        assert perms.get("contents") in {None, "read"}, f"{name}: {job_id}: contents: write"
        assert "write-all" not in str(perms)


def test_images_are_pushed_only_by_the_tested_publisher(workflows: Workflows) -> None:
    """envctl.ci publish pushes REGISTRY/SERVICE:<full commit SHA>, once; nothing else pushes."""
    for name, job_id, script in scripts(workflows):
        for argv in commands(script):
            assert argv[:2] not in (["docker", "push"], ["docker", "tag"]), f"{name}: {job_id}"
            assert argv[:2] != ["crane", "copy"], f"{name}: {job_id}: copy with envctl.ci"
    build = workflows["build.yml"]["jobs"]["images"]
    runs = [s.get("run", "") for s in build["steps"]]
    assert any("python -m envctl.ci publish" in r for r in runs)
    assert any("python -m harness.images build" in r for r in runs)
    env = next(s["env"] for s in build["steps"] if "harness.images build" in s.get("run", ""))
    assert env["DOCKER_DEFAULT_PLATFORM"] == "linux/amd64"
    assert env["BUILDX_NO_DEFAULT_ATTESTATIONS"] == "1"  # provenance off


def test_path_filters(workflows: Workflows) -> None:
    assert "environments/**" in workflows["plan.yml"]["on"]["pull_request"]["paths"]
    assert "modules/**" in workflows["plan.yml"]["on"]["pull_request"]["paths"]
    assert set(workflows["deploy.yml"]["on"]["push"]["paths"]) == {"environments/**", "modules/**"}
    assert "services/**" in workflows["build.yml"]["on"]["push"]["paths"]
    assert "pipelines/**" in workflows["build.yml"]["on"]["push"]["paths"]
    bench_paths = set(workflows["bench.yml"]["on"]["pull_request"]["paths"])
    assert {"services/**", "pipelines/**", "bench/**"} <= bench_paths


def test_the_bench_gates_on_compare_against_the_committed_baseline(
    workflows: Workflows,
) -> None:
    steps = workflows["bench.yml"]["jobs"]["bench"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any("-m bench run --profile quick" in r for r in runs)
    compare = next(s for s in steps if "-m bench compare" in s.get("run", ""))
    # No continue-on-error: compare's exit 1 (a gated ratio worse by > 25 %) fails the job.
    assert "continue-on-error" not in compare
    assert "--threshold 0.25" in compare["run"]
    assert "--baseline" not in compare["run"], "the committed baseline, by default"


def test_apply_only_inside_a_github_environment(workflows: Workflows) -> None:
    appliers = []
    for name, job_id, job in jobs(workflows):
        runs = [argv for s in job.get("steps", []) for argv in commands(s.get("run", ""))]
        applies = any(a[:1] == ["tofu"] and "apply" in a for a in runs) or any(
            "envctl.ci" in a and "rollout" in a for a in runs
        )
        if applies:
            appliers.append((name, job_id))
            assert job.get("environment", {}).get("name") == "${{ matrix.environment }}"
    assert appliers == [("deploy.yml", "deploy")]


def test_deploy_is_one_environment_at_a_time_in_promotion_order(
    workflows: Workflows,
) -> None:
    wf = workflows["deploy.yml"]
    deploy = wf["jobs"]["deploy"]
    assert "concurrency" not in wf  # a workflow-wide group would queue unrelated envs
    assert deploy["concurrency"] == {
        "group": "deploy-${{ matrix.environment }}",
        "cancel-in-progress": False,
    }
    assert deploy["strategy"]["max-parallel"] == 1
    assert deploy["strategy"]["fail-fast"] is True
    assert deploy["strategy"]["matrix"]["environment"] == (
        "${{ fromJSON(needs.changes.outputs.environments) }}"
    )
    groups = [
        job.get("concurrency", {}).get("group")
        for _, _, job in jobs(workflows)
        if "deploy-" in str(job.get("concurrency", {}).get("group"))
    ]
    assert groups == ["deploy-${{ matrix.environment }}"]


def test_prod_is_deployable_only_through_its_environment(workflows: Workflows) -> None:
    """Every cloud environment, prod included, is a value of the deploy matrix (and so a
    GitHub Environment name); the manual trigger offers exactly those."""
    cloud = cloud_environments(ROOT)
    assert "prod" in cloud
    dispatch = workflows["deploy.yml"]["on"]["workflow_dispatch"]["inputs"]["environment"]
    assert dispatch["options"] == cloud
    assert (
        workflows["rollback.yml"]["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
        == cloud
    )


def test_deploy_refuses_unreviewed_plans_and_frozen_windows(workflows: Workflows) -> None:
    steps = workflows["deploy.yml"]["jobs"]["deploy"]["steps"]
    runs = [s.get("run", "") for s in steps]
    order = [
        next(i for i, r in enumerate(runs) if marker in r)
        for marker in (
            "envctl.ci gate",
            "envctl.ci plan-check",
            "apply -input=false",
            "envctl.ci smoke",
            "envctl.ci canary",
            "envctl.ci record-tag",
            "envctl.ci deployment",
        )
    ]
    assert order == sorted(order)
    # The comparison is never skipped: not for a push, not for workflow_dispatch.
    check = next(s for s in steps if "envctl.ci plan-check" in s.get("run", ""))
    assert "if" not in check


def test_a_fresh_plan_waits_for_a_person_in_the_fresh_plan_environment(
    workflows: Workflows,
) -> None:
    deploy = workflows["deploy.yml"]["jobs"]
    assert deploy["fresh-plan"]["environment"]["name"] == "fresh-plan"
    assert deploy["fresh-plan"]["if"] == "needs.fresh-plans.outputs.any == 'true'"
    assert set(deploy["deploy"]["needs"]) >= {"fresh-plans", "fresh-plan"}
    # The deploy goes on only after an approval, or when nothing needed one.
    assert (
        "needs.fresh-plan.result == 'success' || needs.fresh-plan.result == 'skipped'"
        in (deploy["deploy"]["if"])
    )
    # The plan judged fresh or reviewed is made with the read-only plan identity.
    auth = next(
        s for s in deploy["plan"]["steps"] if "google-github-actions/auth" in s.get("uses", "")
    )
    assert auth["with"]["service_account"] == "${{ vars.PLAN_SA }}"
    runs = [s.get("run", "") for s in deploy["plan"]["steps"]]
    assert any("envctl.ci plan-verdict" in r for r in runs)
    # The fresh-plan environment holds no secrets: nothing in its job asks for one.
    assert "secrets." not in str(deploy["fresh-plan"])


def test_every_plan_on_a_pr_takes_the_environment_lock_first(workflows: Workflows) -> None:
    plan = workflows["plan.yml"]["jobs"]
    runs = [s.get("run", "") for s in plan["plan"]["steps"]]
    lock = next(i for i, r in enumerate(runs) if "python -m envctl.ci lock " in r)
    tofu = next(i for i, r in enumerate(runs) if "tofu -chdir" in r and " plan " in r)
    assert lock < tofu
    release = [s.get("run", "") for s in plan["changes"]["steps"]]
    assert any("envctl.ci lock-release" in r for r in release)


# --- every envctl and envctl.ci call is a real command with real flags ----------------


class _Refused(Exception):
    pass


def _parses(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    def refuse(message: str) -> Any:
        raise _Refused(message)

    # argparse reports through parser.error on the parser that failed (a subparser too).
    parsers = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    saved = [(p, p.error) for p in parsers]
    try:
        for p in parsers:
            p.error = refuse  # type: ignore[method-assign]
        parser.parse_args(argv)
    finally:
        for p, error in saved:
            p.error = error  # type: ignore[method-assign]


_SHELL_VARIABLE = re.compile(r"^\$\{?\w+\}?$")


def _calls(workflows: Workflows, finder: Any) -> list[tuple[str, str, list[str]]]:
    # A value only known at run time ("${EXITCODE}") stands in as "0": valid for every
    # type the parsers use (int, path, string), so only names of commands and flags count.
    return [
        (name, job_id, ["0" if _SHELL_VARIABLE.match(a) else a for a in argv])
        for name, job_id, script in scripts(workflows)
        for argv in finder(script)
    ]


def test_every_envctl_call_exists(workflows: Workflows) -> None:
    parser = envctl.cli._parser()
    found = _calls(workflows, envctl_calls)
    for name, job_id, argv in found:
        try:
            _parses(parser, argv)
        except _Refused as exc:
            pytest.fail(f"{name}: {job_id}: envctl {' '.join(argv)}: {exc}")
    used = {argv[0] for _, _, argv in found}
    assert {
        "set-image",
        "promote",
        "rollback",
        "diff",
        "render",
        "history",
        "validate",
        "record",
    } <= used


def test_every_envctl_ci_call_exists(workflows: Workflows) -> None:
    parser = ci_parser()
    found = _calls(workflows, envctl_ci_calls)
    for name, job_id, argv in found:
        try:
            _parses(parser, argv)
        except _Refused as exc:
            pytest.fail(f"{name}: {job_id}: python -m envctl.ci {' '.join(argv)}: {exc}")
    used = {argv[0] for _, _, argv in found}
    assert {
        "changed",
        "gate",
        "smoke",
        "plan-check",
        "pr-comment",
        "drift",
        "rollout",
        "publish",
        "copy-images",
        "reviewed-run",
        "lock",
        "lock-release",
        "plan-verdict",
        "fresh-plans",
        "canary",
        "record-tag",
        "deployment",
        "failed",
    } <= used


def test_the_call_finder_is_not_fooled() -> None:
    script = (
        'envctl diff "${ENV}" --base "${SHA}" --json > out/diff.json\n'
        "echo envctl is great\n"
        ".venv/bin/envctl validate && envctl render dev --backend | tee x\n"
        "python -m envctl.ci smoke dev --url \\\n  https://x 2>&1\n"
    )
    assert list(envctl_calls(script)) == [
        ["diff", "${ENV}", "--base", "${SHA}", "--json"],
        ["validate"],
        ["render", "dev", "--backend"],
    ]
    assert list(envctl_ci_calls(script)) == [["smoke", "dev", "--url", "https://x"]]
    with pytest.raises(_Refused, match="unrecognized arguments: --force"):
        _parses(envctl.cli._parser(), ["promote", "dev", "staging", "--force"])
    with pytest.raises(_Refused, match="invalid choice"):
        _parses(envctl.cli._parser(), ["deploy", "dev"])


def test_workflows_are_documented_next_to_them() -> None:
    assert Path(WORKFLOWS / "README.md").is_file()


# --- the deploy record: written by the release App, read with every tag -----------------

# Commands that decide from the deploy records (refs/tags/deploy/**).
READS_RECORDS = {"promote", "rollback", "record", "validate", "history"}
CI_READS_RECORDS = {"gate", "drift", "failed"}


def test_every_job_that_reads_deploy_records_fetches_them(workflows: Workflows) -> None:
    """A checkout without the tags sees no record: envctl would refuse (or call drift
    pending) for the wrong reason. Every job that decides from records fetches them."""
    checked = 0
    for name, job_id, job in jobs(workflows):
        runs = [s["run"] for s in job.get("steps", []) if "run" in s]
        reads = any(argv[:1] and argv[0] in READS_RECORDS for r in runs for argv in envctl_calls(r))
        reads |= any(
            argv[:1] and argv[0] in CI_READS_RECORDS for r in runs for argv in envctl_ci_calls(r)
        )
        if not reads:
            continue
        checked += 1
        checkouts = [
            s.get("with") or {}
            for s in job.get("steps", [])
            if str(s.get("uses", "")).startswith("actions/checkout@")
        ]
        assert checkouts, f"{name}: {job_id}: reads deploy records without a checkout"
        for options in checkouts:
            assert options.get("fetch-depth") == 0, f"{name}: {job_id}: fetch-depth: 0"
            assert options.get("fetch-tags") is True, f"{name}: {job_id}: fetch-tags: true"
    assert checked >= 6  # deploy (2 jobs), promote, rollback, drift, ci's validate


def test_records_are_pushed_only_by_the_deploy_job_with_the_release_app(
    workflows: Workflows,
) -> None:
    writers = [
        (name, job_id)
        for name, job_id, script in scripts(workflows)
        if any(argv[:1] == ["record"] for argv in envctl_calls(script))
    ]
    assert writers == [("deploy.yml", "deploy")]
    deploy = workflows["deploy.yml"]["jobs"]["deploy"]["steps"]
    [token] = [s for s in deploy if s.get("id") == "release-token"]
    assert str(token["uses"]).startswith("actions/create-github-app-token@")
    assert token["with"]["app-id"] == "${{ vars.RELEASE_APP_ID }}"
    [push] = [s for s in deploy if "envctl record" in s.get("run", "")]
    assert push["env"]["TOKEN"] == "${{ steps.release-token.outputs.token }}"
    assert 'git push "https://x-access-token:${TOKEN}@github.com/' in push["run"]
