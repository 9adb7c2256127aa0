"""set-image, promote, rollback and history in real temporary git repositories."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.load import load_environment

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)

NEW = "5d1a7c3e9b2f4a6c8e0d1f3a5c7e9b2d4f6a8c0e"
NEW_PIPELINE = "sha256:" + "a1" * 32
NEW_CONSOLE = "sha256:" + "c1" * 32
PROD_BEFORE = "2f22765d04931a078909145ca628d2264c852d7d"
STAGING_BEFORE = "6b1f53303a732ccc8c6aae6640399827c15250e3"
NEVER = "9999999999999999999999999999999999999999"

Git = Callable[..., str]


def commits(run_git: Git, repo: Path, path: str = "") -> list[str]:
    args = ["log", "--format=%H"] + (["--", path] if path else [])
    return run_git(repo, *args).split()


def ship_to_dev(cli: Cli, repo: Path) -> None:
    images = (f"pipeline={NEW}@{NEW_PIPELINE}", f"console={NEW}@{NEW_CONSOLE}")
    result = cli("--repo", repo, "set-image", "dev", *images)
    assert result.status == 0, result.err


_clock = iter(range(10, 60))


def record(
    cli: Cli, repo: Path, name: str, monkeypatch: pytest.MonkeyPatch, result: str = "succeeded"
) -> None:
    """What deploy.yml does after an apply: a deploy record of NAME at HEAD."""
    monkeypatch.setenv("ENVCTL_NOW", f"2026-06-10T10:{next(_clock):02d}:00Z")
    made = cli("--repo", repo, "record", name, "--result", result)
    assert made.status == 0, made.err


def test_dev_to_staging_to_prod_then_roll_back_prod(
    env_repo: Path, cli: Cli, run_git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod_file = env_repo / "environments" / "prod.yaml"
    original_prod = prod_file.read_text()
    record(cli, env_repo, "prod", monkeypatch)  # prod's seed release ran well
    ship_to_dev(cli, env_repo)
    record(cli, env_repo, "dev", monkeypatch)

    staged = cli("--repo", env_repo, "--json", "promote", "dev", "staging")
    assert staged.status == 0, staged.err
    assert json.loads(staged.out)["approval_required"] is False
    record(cli, env_repo, "staging", monkeypatch)
    shipped = cli("--repo", env_repo, "promote", "staging", "prod", "--json")
    assert shipped.status == 0, shipped.err
    outcome = json.loads(shipped.out)
    assert outcome["changed"]
    assert outcome["approval_required"] is True
    prod = load_environment(env_repo, "prod")
    assert prod.image("pipeline").commit == NEW
    assert prod.image("pipeline").digest == NEW_PIPELINE
    assert prod.image("console").digest == NEW_CONSOLE

    # One commit per promotion, naming environment, services and SHAs.
    message = run_git(env_repo, "log", "-1", "--format=%B")
    assert message.startswith(
        "prod: promote pipeline@5d1a7c3e9b2f, console@5d1a7c3e9b2f from staging"
    )
    assert f"pipeline: {NEW} {NEW_PIPELINE}" in message
    assert "Envctl-Action: promote" in message
    assert "Envctl-Source: staging" in message
    assert "release: staging@" in message
    # Only the image lines changed: comments, order and quoting are intact.
    changed = _changed_lines(original_prod, prod_file.read_text())
    assert changed == {
        "      commit: " + NEW,
        "      digest: " + NEW_PIPELINE,
        "      digest: " + NEW_CONSOLE,
    }

    record(cli, env_repo, "prod", monkeypatch, "failed")
    rolled = cli("--repo", env_repo, "rollback", "prod", "--json")
    assert rolled.status == 0, rolled.err
    assert prod_file.read_text() == original_prod  # the previous release, byte for byte
    assert len(commits(run_git, env_repo, "environments/prod.yaml")) == 3  # forward, not rewritten
    message = run_git(env_repo, "log", "-1", "--format=%B")
    promoted, seed = commits(run_git, env_repo, "environments/prod.yaml")[1:]
    assert message.startswith(f"prod: roll back to {seed[:12]} (undoes {promoted[:12]})")
    assert "restores release " in message

    history = json.loads(cli("--repo", env_repo, "--json", "history", "prod").out)["releases"]
    assert [r["result"] for r in history] == [None, "failed", "succeeded"]
    assert [r["rolled_back_by"] is not None for r in history] == [False, True, False]
    assert history[0]["restores"] == seed
    assert history[0]["images"]["pipeline"]["commit"] == PROD_BEFORE
    assert history[1]["images"]["console"] == {"commit": NEW, "digest": NEW_CONSOLE}
    assert history[0]["author"] == "Release Bot <release-bot@example.org>"

    # The undone release is skipped, so there is nothing further back to return to.
    again = cli("--repo", env_repo, "rollback", "prod")
    assert again.status == 3
    assert again.err.startswith("environments/prod.yaml: nothing to roll back to: every release")


def test_history_lists_releases_in_text(env_repo: Path, cli: Cli) -> None:
    ship_to_dev(cli, env_repo)
    result = cli("--repo", env_repo, "history", "dev")
    assert result.status == 0
    lines = result.out.splitlines()
    # One set-image call for both services is one release, plus the initial file.
    assert sum(1 for line in lines if not line.startswith(" ")) == 2
    assert lines[0].endswith(
        f"Release Bot <release-bot@example.org>  dev: set pipeline@{NEW[:12]}, console@{NEW[:12]}"
    )
    assert lines[1] == "    deployed: not deployed yet"
    assert lines[2].split() == ["console", NEW, NEW_CONSOLE]


def test_promotion_of_a_sha_the_source_never_ran_is_refused(
    env_repo: Path, cli: Cli, run_git: Git
) -> None:
    before = commits(run_git, env_repo)
    result = cli("--repo", env_repo, "promote", "staging", "prod", "--commit", NEVER)
    assert result.status == 1
    assert result.err.strip().splitlines() == [
        f"environments/staging.yaml: {NEVER!r} is not a release of staging, nor a commit on "
        "main's first-parent history (see: envctl history staging)"
    ]
    assert commits(run_git, env_repo) == before


def test_promotion_of_an_earlier_release_of_the_source(
    env_repo: Path, cli: Cli, run_git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = commits(run_git, env_repo)[-1]
    record(cli, env_repo, "staging", monkeypatch)
    ship_to_dev(cli, env_repo)
    record(cli, env_repo, "dev", monkeypatch)
    assert cli("--repo", env_repo, "promote", "dev", "staging").status == 0
    # staging now runs NEW; prod may still receive the release staging ran before.
    result = cli("--repo", env_repo, "promote", "staging", "prod", "--release", seed[:10])
    assert result.status == 0, result.err
    assert load_environment(env_repo, "prod").image("pipeline").commit == STAGING_BEFORE


def test_promotion_from_a_source_the_target_does_not_accept(env_repo: Path, cli: Cli) -> None:
    result = cli("--repo", env_repo, "promote", "dev", "prod")
    assert result.status == 1
    assert result.err == (
        "environments/prod.yaml: promotion.from: prod receives promotions from 'staging', "
        "not 'dev'\n"
    )


def test_promotion_of_working_tree_images_is_refused(env_repo: Path, cli: Cli) -> None:
    result = cli("--repo", env_repo, "promote", "local", "dev")
    assert result.status == 1
    assert result.err.startswith("environments/local.yaml: services.pipeline.image: ")
    assert "envctl set-image dev" in result.err


def test_write_on_a_dirty_tree_is_refused(env_repo: Path, cli: Cli, run_git: Git) -> None:
    staging = env_repo / "environments" / "staging.yaml"
    staging.write_text(staging.read_text() + "# a local edit\n")
    dev_before = (env_repo / "environments" / "dev.yaml").read_text()
    before = commits(run_git, env_repo)
    result = cli(
        "--repo",
        env_repo,
        "set-image",
        "dev",
        "pipeline",
        "--commit",
        NEW,
        "--digest",
        NEW_PIPELINE,
    )
    assert result.status == 1
    assert result.err == (
        "environments/staging.yaml: uncommitted changes; commit or stash them first "
        "(envctl writes exactly one commit on a clean tree)\n"
    )
    assert (env_repo / "environments" / "dev.yaml").read_text() == dev_before
    assert commits(run_git, env_repo) == before


def test_rollback_to_a_sha_prod_never_ran_is_refused(env_repo: Path, cli: Cli) -> None:
    result = cli("--repo", env_repo, "rollback", "prod", "--to", NEVER[:12])
    assert result.status == 1
    assert result.err.startswith("environments/prod.yaml: '999999999999' is not a release of prod")
    seed = cli("--repo", env_repo, "--json", "history", "prod")
    never_deployed = json.loads(seed.out)["releases"][0]["release"]
    ship_to_dev(cli, env_repo)
    named = cli("--repo", env_repo, "rollback", "dev", "--to", never_deployed)
    assert named.status == 1
    assert "not recorded as succeeded in dev (not deployed yet)" in named.err


def test_rollback_to_a_named_release(
    env_repo: Path, cli: Cli, run_git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = commits(run_git, env_repo)[-1]
    record(cli, env_repo, "prod", monkeypatch)
    ship_to_dev(cli, env_repo)
    record(cli, env_repo, "dev", monkeypatch)
    assert cli("--repo", env_repo, "promote", "dev", "staging").status == 0
    record(cli, env_repo, "staging", monkeypatch)
    assert cli("--repo", env_repo, "promote", "staging", "prod").status == 0
    record(cli, env_repo, "prod", monkeypatch)
    result = cli("--repo", env_repo, "--json", "rollback", "prod", "--to", seed)
    assert result.status == 0, result.err
    assert json.loads(result.out)["images"]["pipeline"]["commit"] == PROD_BEFORE
    same = cli("--repo", env_repo, "--json", "rollback", "prod", "--to", seed)
    assert same.status == 0
    assert json.loads(same.out)["changed"] is False


def test_set_image_refuses_an_invalid_result_and_writes_nothing(
    env_repo: Path, cli: Cli, run_git: Git
) -> None:
    before = commits(run_git, env_repo)
    short = cli(
        "--repo",
        env_repo,
        "set-image",
        "dev",
        "pipeline",
        "--commit",
        "abc1234",
        "--digest",
        NEW_PIPELINE,
    )
    assert short.status == 1
    assert "services.pipeline.image.commit: pipeline: 'abc1234' is not a full 40-hex" in short.err
    no_digest = cli("--repo", env_repo, "set-image", "dev", "pipeline", "--commit", NEW)
    assert no_digest.status == 1
    assert "services.pipeline.image.digest" in no_digest.err
    unknown = cli("--repo", env_repo, "set-image", "dev", "feeds", "--commit", NEW)
    assert unknown.status == 1
    assert "has no service 'feeds'" in unknown.err
    assert commits(run_git, env_repo) == before
    assert run_git(env_repo, "status", "--porcelain") == ""


def test_set_image_of_the_same_image_commits_nothing(
    env_repo: Path, cli: Cli, run_git: Git
) -> None:
    dev = load_environment(env_repo, "dev").image("pipeline")
    before = commits(run_git, env_repo)
    result = cli(
        "--repo",
        env_repo,
        "set-image",
        "dev",
        "pipeline",
        "--commit",
        dev.commit,
        "--digest",
        str(dev.digest),
    )
    assert result.status == 0
    assert "nothing to commit" in result.out
    assert commits(run_git, env_repo) == before


def test_freeze_blocks_promotion_but_not_rollback(
    env_repo: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(cli, env_repo, "prod", monkeypatch)
    ship_to_dev(cli, env_repo)
    record(cli, env_repo, "dev", monkeypatch)
    assert cli("--repo", env_repo, "promote", "dev", "staging").status == 0
    record(cli, env_repo, "staging", monkeypatch)
    assert cli("--repo", env_repo, "promote", "staging", "prod").status == 0
    monkeypatch.setenv("ENVCTL_NOW", "2026-12-24T12:00:00+01:00")  # the year-end freeze
    frozen = cli(
        "--repo",
        env_repo,
        "set-image",
        "prod",
        "pipeline",
        "--commit",
        NEW,
        "--digest",
        NEW_PIPELINE,
    )
    assert frozen.status == 1
    assert frozen.err.startswith(
        "environments/prod.yaml: freeze[0]: prod is frozen until 2027-01-05"
    )
    monkeypatch.setenv("ENVCTL_NOW", "2026-06-12T16:30:00Z")  # a Friday afternoon
    friday = cli("--repo", env_repo, "promote", "staging", "prod")
    assert friday.status == 1
    assert "freeze[1]" in friday.err
    assert cli("--repo", env_repo, "rollback", "prod").status == 0


def test_failed_commit_leaves_the_tree_as_it_was(env_repo: Path, cli: Cli, run_git: Git) -> None:
    hook = env_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    dev_before = (env_repo / "environments" / "dev.yaml").read_text()
    result = cli(
        "--repo",
        env_repo,
        "set-image",
        "dev",
        "pipeline",
        "--commit",
        NEW,
        "--digest",
        NEW_PIPELINE,
    )
    assert result.status == 1
    assert result.err.startswith("git commit failed: hook says no")
    assert (env_repo / "environments" / "dev.yaml").read_text() == dev_before
    assert run_git(env_repo, "status", "--porcelain") == ""
    assert not list((env_repo / "environments").glob(".*.tmp"))


def _changed_lines(before: str, after: str) -> set[str]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return {b for a, b in zip(old, new, strict=True) if a != b}
