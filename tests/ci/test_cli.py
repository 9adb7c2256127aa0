"""``python -m envctl.ci``: exit codes, stderr lines and GitHub step outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.__main__ import main

from .conftest import FROZEN_TIME, REPO_ROOT, EditEnv, FakeServer, Route, commit_all, git
from .fake_github import REPO, FakeGitHub
from .plans import image_update, plan
from .test_smoke import EXPECT, console

Start = Callable[[Route], FakeServer]


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], dict[str, str]]:
    """Point $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY at files; return the outputs read."""
    out = tmp_path / "github_output"
    out.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))

    def read() -> dict[str, str]:
        found: dict[str, str] = {}
        lines = iter(out.read_text().splitlines())
        for line in lines:
            if "<<" in line and "=" not in line.split("<<")[0]:
                name, delimiter = line.split("<<", 1)
                found[name] = "\n".join(iter(lambda: next(lines), delimiter))
            else:
                name, _, value = line.partition("=")
                found[name] = value
        return found

    return read


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_module_runs_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "envctl.ci", "--help"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "changed --base REV" in done.stdout


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["changed"])
    assert exc.value.code == 2
    assert "envctl.ci: the following arguments are required: --base" in capsys.readouterr().err


def test_changed_sets_matrix_outputs(
    env_repo: Path, edit_env: EditEnv, outputs: Callable[[], dict[str, str]]
) -> None:
    base = git(env_repo, "rev-parse", "HEAD").strip()
    assert main(["changed", "--base", base, "--repo", str(env_repo)]) == 0
    assert outputs() == {"environments": "[]", "any": "false"}

    def scale(doc: Any) -> None:
        doc["services"]["console"]["scaling"]["max_instances"] = 7

    edit_env(env_repo, "prod", scale)
    edit_env(env_repo, "dev", scale)
    commit_all(env_repo, "dev and prod")
    assert main(["changed", "--base", base, "--repo", str(env_repo)]) == 0
    assert outputs() == {"environments": '["dev", "prod"]', "any": "true"}


def test_environments_lists_cloud_ones(
    env_repo: Path, outputs: Callable[[], dict[str, str]]
) -> None:
    assert main(["environments", "--repo", str(env_repo)]) == 0
    assert outputs()["environments"] == '["dev", "staging", "prod"]'
    assert main(["environments", "prod", "dev", "--repo", str(env_repo)]) == 0
    assert outputs()["environments"] == '["dev", "prod"]'
    assert main(["environments", "local", "--repo", str(env_repo)]) == 1


def test_registry_host(env_repo: Path, outputs: Callable[[], dict[str, str]]) -> None:
    assert main(["registry", "staging", "--repo", str(env_repo)]) == 0
    assert outputs() == {
        "registry": "europe-west1-docker.pkg.dev/gtfs-gitops-staging/services",
        "host": "europe-west1-docker.pkg.dev",
    }
    assert main(["registry", "local", "--repo", str(env_repo)]) == 1


def test_gate_refuses_with_one_line(
    env_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    outputs: Callable[[], dict[str, str]],
) -> None:
    monkeypatch.setenv("ENVCTL_NOW", FROZEN_TIME)
    assert main(["gate", "prod", "--repo", str(env_repo)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("environments/prod.yaml: freeze[0]:")
    assert outputs()["allowed"] == "false"
    assert main(["gate", "staging", "--repo", str(env_repo)]) == 0


def test_unknown_environment_is_one_line_naming_the_file(
    env_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", "qa", "--repo", str(env_repo)]) == 1
    assert capsys.readouterr().err.startswith(
        "envctl.ci: environments/qa.yaml: no such environment"
    )


def test_plan_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviewed = _write(tmp_path / "a.json", plan(image_update()))
    same = _write(tmp_path / "b.json", plan(image_update()))
    other = _write(tmp_path / "c.json", plan(image_update("registry/console@sha256:other")))
    assert main(["plan-check", str(reviewed), str(same)]) == 0
    assert main(["plan-check", str(reviewed), str(other)]) == 1
    assert "the plan changed since it was reviewed" in capsys.readouterr().err
    assert main(["plan-check", str(reviewed), str(tmp_path / "missing.json")]) == 1


def test_plan_summary_output(tmp_path: Path, outputs: Callable[[], dict[str, str]]) -> None:
    assert main(["plan-summary", str(_write(tmp_path / "p.json", plan()))]) == 0
    assert outputs()["changes"] == "false"


def test_smoke_through_the_cli_uses_the_token_variable(
    env_repo: Path,
    edit_env: EditEnv,
    http_server: Start,
    monkeypatch: pytest.MonkeyPatch,
    outputs: Callable[[], dict[str, str]],
    tmp_path: Path,
) -> None:
    def commits(doc: Any) -> None:
        for svc, sha in EXPECT.items():
            doc["services"][svc]["image"]["commit"] = sha

    edit_env(env_repo, "dev", commits)
    server = http_server(console())
    monkeypatch.setenv("SMOKE_ID_TOKEN", "tok")
    report = tmp_path / "smoke.json"
    args = ["smoke", "dev", "--url", server.url, "--report", str(report), "--repo", str(env_repo)]
    assert main(args) == 0
    assert outputs()["ok"] == "true"
    saved = json.loads(report.read_text())
    assert (saved["environment"], saved["ok"]) == ("dev", True)
    assert server.seen[0].headers["Authorization"] == "Bearer tok"
    # The same console, but prod names other commits: the check fails on /api/status.
    assert main(["smoke", "prod", "--url", server.url, "--repo", str(env_repo)]) == 1
    assert outputs()["ok"] == "false"


def test_pr_comment_posts_once_per_environment(
    tmp_path: Path, http_server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_API_URL", http_server(fake.route).url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    diff = _write(tmp_path / "d.json", {"environment": "dev", "base": "main", "changes": []})
    planned = _write(tmp_path / "p.json", plan(image_update()))
    for _ in range(2):
        args = [
            "pr-comment",
            "dev",
            "--diff",
            str(diff),
            "--plan",
            str(planned),
            "--commit",
            "a" * 40,
            "--pr",
            "12",
        ]
        assert main(args) == 0
    assert len(fake.comments[12]) == 1
    assert "No changes to dev (compared with main)." in fake.comments[12][0]["body"]


def test_drift_refuses_to_judge_a_failed_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "prod", "--exitcode", "1"]) == 1
    assert "drift unknown" in capsys.readouterr().err


def test_drift_without_sync(tmp_path: Path, outputs: Callable[[], dict[str, str]]) -> None:
    planned = _write(tmp_path / "p.json", plan(image_update()))
    # This checkout holds no deploy record of prod: the plan's changes may be a deploy
    # not applied yet, so they are pending, not drift (tests/ledger shows real drift).
    assert main(["drift", "prod", "--exitcode", "2", "--plan", str(planned)]) == 0
    assert outputs()["drift"] == "false"
    assert outputs()["pending"] == "true"
    assert main(["drift", "prod", "--exitcode", "0"]) == 0
    assert outputs()["drift"] == "false"


def test_service_url_and_smoke_failures(
    tmp_path: Path, outputs: Callable[[], dict[str, str]]
) -> None:
    tf = _write(tmp_path / "o.json", {"service_urls": {"value": {"console": "https://c.run.app"}}})
    assert main(["service-url", "--outputs", str(tf), "--service", "console"]) == 0
    assert outputs()["url"] == "https://c.run.app"
    reports = tmp_path / "reports"
    (reports / "smoke-failed-staging").mkdir(parents=True)
    _write(reports / "smoke-failed-staging" / "smoke.json", {"environment": "staging", "ok": False})
    assert main(["smoke-failures", str(reports)]) == 0
    assert outputs()["environment"] == "staging"
    assert main(["smoke-failures", str(tmp_path / "none")]) == 0
    assert outputs()["environment"] == ""


def test_multiline_outputs_cannot_inject_another_output(
    outputs: Callable[[], dict[str, str]],
) -> None:
    from envctl.ci.outputs import set_output

    set_output("body", "line one\nallowed=true")
    assert outputs() == {"body": "line one\nallowed=true"}
