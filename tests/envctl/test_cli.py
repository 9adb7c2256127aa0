"""The envctl command line: exit codes, --json, one stderr line per problem, `up`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)
EditEnv = Callable[..., str]  # the `edit_env` fixture (conftest.py)


def test_validate_all(cli: Cli, repo_root: Path) -> None:
    result = cli("--repo", repo_root, "validate")
    assert result.status == 0
    assert result.out.splitlines() == [
        f"environments/{n}.yaml: ok" for n in ("local", "dev", "staging", "prod")
    ]
    assert result.err == ""


def test_validate_json_reports_rule_field_and_line(
    env_repo: Path, cli: Cli, edit_env: EditEnv
) -> None:
    text = edit_env(env_repo, "prod", ("put", "services.pipeline.scaling.min_instances", 0))
    (env_repo / "environments" / "prod.yaml").write_text(text)
    result = cli("--repo", env_repo, "validate", "--json")
    assert result.status == 1
    report = json.loads(result.out)
    assert report["ok"] is False
    assert report["environments"]["dev"]["ok"] is True
    (problem,) = report["environments"]["prod"]["problems"]
    assert problem["rule"] == "warm-instance"
    assert problem["field"] == "services.pipeline.scaling.min_instances"
    assert problem["file"] == "environments/prod.yaml"
    lines = text.splitlines()
    pipeline_min = next(
        i for i, line in enumerate(lines) if line.startswith("      min_instances: 0")
    )
    assert problem["line"] == pipeline_min + 1
    assert result.err.count("\n") == 1


def test_unknown_environment(cli: Cli, repo_root: Path) -> None:
    result = cli("--repo", repo_root, "render", "qa")
    assert result.status == 1
    assert result.err == (
        "environments/qa.yaml: no such environment (known: local, dev, staging, prod)\n"
    )
    bad = cli("--repo", repo_root, "render", "../etc/passwd")
    assert bad.status == 1
    assert "not an environment name" in bad.err


def test_usage_errors_exit_2_with_one_line(cli: Cli, repo_root: Path) -> None:
    result = cli("--repo", repo_root, "set-image", "dev")
    assert result.status == 2
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("envctl: ")


def test_render_backend(cli: Cli, repo_root: Path) -> None:
    result = cli("--repo", repo_root, "render", "prod", "--backend")
    assert result.out == 'bucket = "gtfs-gitops-prod-tfstate"\nprefix = "environments/prod"\n'
    local = cli("--repo", repo_root, "render", "local", "--backend")
    assert local.status == 1
    assert "no OpenTofu state" in local.err


def test_envctl_has_no_up_command(cli: Cli, repo_root: Path) -> None:
    # Starting containers is the harness's job (harness-up); envctl never imports it.
    result = cli("--repo", repo_root, "up", "local")
    assert result.status == 2
    assert "invalid choice: 'up'" in result.err


def test_installed_command_runs_from_a_subdirectory(repo_root: Path) -> None:
    envctl = Path(sys.executable).with_name("envctl")
    result = subprocess.run(
        [str(envctl), "--json", "render", "dev"],
        cwd=repo_root / "modules",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"
    module = subprocess.run(
        [sys.executable, "-m", "envctl", "validate", "nope"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.returncode == 1
    assert "Traceback" not in module.stderr
