"""``python -m envctl.ci deployment``: a deploy record (a real annotated tag in a real git
repository) mirrored to GitHub Deployments through a loopback fake of the REST API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envctl.ci.__main__ import main

from .conftest import FakeServer, Route, git, write_record
from .fake_github import REPO, FakeGitHub

Start = Callable[[Route], FakeServer]
TAG = "deploy/staging/20260610T100000Z"
RUN = "https://github.com/transit/gitops/actions/runs/77"


@pytest.fixture
def fake(http_server: Start, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", http_server(fake.route).url)
    return fake


@pytest.fixture
def recorded(env_repo: Path) -> str:
    write_record(env_repo, "staging", TAG.rsplit("/", 1)[1], "succeeded")
    return git(env_repo, "rev-parse", "HEAD").strip()


def mirror(repo: Path, *extra: str) -> int:
    args = ["deployment", "staging", "--record-tag", TAG, "--repo", str(repo), *extra]
    return main(args)


def test_a_record_becomes_a_deployment_at_its_commit_with_a_status(
    env_repo: Path, recorded: str, fake: FakeGitHub
) -> None:
    assert mirror(env_repo, "--result", "succeeded", "--run-url", RUN) == 0
    (made,) = fake.deployments
    assert made["sha"] == recorded
    assert made["environment"] == "staging"
    assert made["payload"] == {"record_tag": TAG}
    assert made["auto_merge"] is False
    assert made["required_contexts"] == []
    assert made["production_environment"] is False
    (status,) = fake.statuses[made["id"]]
    assert status["state"] == "success"
    assert status["log_url"] == RUN


def test_running_it_again_adds_nothing(env_repo: Path, recorded: str, fake: FakeGitHub) -> None:
    assert mirror(env_repo, "--result", "succeeded", "--run-url", RUN) == 0
    assert mirror(env_repo, "--result", "succeeded", "--run-url", RUN) == 0
    assert len(fake.deployments) == 1
    assert len(fake.statuses[fake.deployments[0]["id"]]) == 1


def test_a_failed_record_is_a_failure_status(
    env_repo: Path, recorded: str, fake: FakeGitHub
) -> None:
    assert mirror(env_repo, "--result", "failed") == 0
    (status,) = fake.statuses[fake.deployments[0]["id"]]
    assert status["state"] == "failure"
    assert "log_url" not in status


def test_another_record_of_the_same_commit_is_its_own_deployment(
    env_repo: Path, recorded: str, fake: FakeGitHub
) -> None:
    assert mirror(env_repo, "--result", "failed") == 0
    git(env_repo, "tag", "-a", "deploy/staging/20260610T110000Z", "-m", "{}")
    args = ["deployment", "staging", "--record-tag", "deploy/staging/20260610T110000Z"]
    assert main([*args, "--result", "succeeded", "--repo", str(env_repo)]) == 0
    assert [d["payload"]["record_tag"] for d in fake.deployments] == [
        TAG,
        "deploy/staging/20260610T110000Z",
    ]


def test_a_missing_tag_or_another_environment_s_tag_is_refused(
    env_repo: Path, fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mirror(env_repo, "--result", "succeeded") == 1
    assert f"{TAG}: no such tag" in capsys.readouterr().err
    args = ["deployment", "prod", "--record-tag", TAG, "--result", "succeeded"]
    assert main([*args, "--repo", str(env_repo)]) == 1
    assert "is not a deploy record of prod" in capsys.readouterr().err
    assert fake.deployments == []


def test_a_github_error_is_one_line(
    env_repo: Path,
    recorded: str,
    http_server: Start,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = http_server(
        lambda method, path, body: (403, {"message": "Resource not accessible by integration"})
    )
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    assert mirror(env_repo, "--result", "succeeded") == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err
    assert "Resource not accessible" in err


def test_record_tag_finds_this_deploy_s_record_on_head(
    env_repo: Path, recorded: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    later = "deploy/staging/20260610T120000Z"
    write_record(env_repo, "staging", later.rsplit("/", 1)[1], "failed")
    write_record(env_repo, "prod", "20260610T130000Z", "succeeded")
    assert main(["record-tag", "staging", "--repo", str(env_repo)]) == 0
    assert f"tag={later}\nresult=failed\n" in out.read_text()


def test_record_tag_is_empty_when_this_commit_has_no_record(
    env_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    write_record(env_repo, "staging", TAG.rsplit("/", 1)[1], "succeeded")
    (env_repo / "x").write_text("x")
    git(env_repo, "add", "x")
    git(env_repo, "commit", "-qm", "newer")
    assert main(["record-tag", "staging", "--repo", str(env_repo)]) == 0
    assert "tag=\nresult=\n" in out.read_text()
