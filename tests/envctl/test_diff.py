"""`envctl diff`: what a change does, in words, for a PR comment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envctl.diff import describe
from envctl.load import load_environment

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)
EditEnv = Callable[..., str]  # the `edit_env` fixture (conftest.py)


def test_diff_names_images_scaling_ingress_iam_and_secrets(
    env_repo: Path, cli: Cli, edit_env: EditEnv
) -> None:
    text = edit_env(
        env_repo,
        "staging",
        ("put", "services.pipeline.image.commit", "a625406f6977d45c1391b078f4d3656e0b75bfcb"),
        ("put", "services.pipeline.image.digest", "sha256:" + "4" * 64),
        ("put", "services.pipeline.scaling.min_instances", 1),
        ("put", "services.console.ingress", "internal-and-cloud-load-balancing"),
        ("put", "services.console.invokers", ["group:gtfs-oncall@example.org"]),
        (
            "put",
            "services.console.secrets",
            {"SESSION_KEY": {"secret": "console-session", "version": "2"}},
        ),
        ("put", "services.console.env.CONSOLE_TITLE", "Staging"),
    )
    (env_repo / "environments" / "staging.yaml").write_text(text)
    result = cli("--repo", env_repo, "diff", "staging")
    assert result.status == 0, result.err
    out = result.out
    assert (
        "- pipeline: image 6b1f53303a73 → a625406f6977 (digest sha256:3946ca64ff78… → sha256:444444444444…)"
        in out
    )
    assert "- pipeline: scaling.min_instances: 0 → 1" in out
    assert "- console: ingress: all → internal-and-cloud-load-balancing" in out
    assert "- console: group:gtfs-oncall@example.org may now invoke it (roles/run.invoker)" in out
    assert "- console: group:gtfs-operations@example.org may no longer invoke it" in out
    assert "- console: secrets.SESSION_KEY: set to {secret: console-session, version: 2}" in out
    assert "- console: env.CONSOLE_TITLE: set to Staging" in out
    headings = [line for line in out.splitlines() if line.startswith("**")]
    assert headings == [
        "**images**",
        "**scaling**",
        "**ingress**",
        "**iam**",
        "**secrets**",
        "**env**",
    ]

    as_json = json.loads(cli("--repo", env_repo, "--json", "diff", "staging").out)
    assert {c["category"] for c in as_json["changes"]} == {
        "images",
        "scaling",
        "ingress",
        "iam",
        "secrets",
        "env",
    }


def test_diff_against_an_unchanged_file_says_so(env_repo: Path, cli: Cli) -> None:
    result = cli("--repo", env_repo, "diff", "prod")
    assert result.out == "No changes to prod (compared with HEAD).\n"


def test_diff_refuses_an_invalid_change(env_repo: Path, cli: Cli, edit_env: EditEnv) -> None:
    text = edit_env(env_repo, "prod", ("put", "services.pipeline.scaling.min_instances", 0))
    (env_repo / "environments" / "prod.yaml").write_text(text)
    result = cli("--repo", env_repo, "diff", "prod")
    assert result.status == 1
    assert "services.pipeline.scaling.min_instances" in result.err


def test_diff_of_new_calls_explains_the_access(repo_root: Path) -> None:
    dev = load_environment(repo_root, "dev").data
    before = json.loads(json.dumps(dev))
    before["services"]["console"]["calls"] = []
    texts = [c.text for c in describe(before, dev)]
    assert texts == ["console: now calls pipeline (gets roles/run.invoker on it and its address)"]


def test_diff_against_an_unknown_base(env_repo: Path, cli: Cli) -> None:
    result = cli("--repo", env_repo, "diff", "prod", "--base", "no-such-branch")
    assert result.status == 1
    assert result.err == "--base 'no-such-branch' is not a commit of this repository\n"


def test_diff_names_each_telemetry_setting_that_changed(
    env_repo: Path, cli: Cli, edit_env: EditEnv
) -> None:
    text = edit_env(
        env_repo,
        "prod",
        ("put", "telemetry.trace_sampling", 0.1),
        ("put", "telemetry.thresholds.p95_seconds", 0.5),
    )
    (env_repo / "environments" / "prod.yaml").write_text(text)
    result = cli("--repo", env_repo, "diff", "prod")
    assert result.status == 0, result.err
    assert "- telemetry.trace_sampling: 0.05 → 0.1" in result.out
    assert "- telemetry.thresholds.p95_seconds: 1.0 → 0.5" in result.out
    assert "error_ratio" not in result.out  # unchanged settings are not repeated
