"""environments/schema.json: the committed files pass, and each rule has a failing example
whose error names the file, the field (JSON path) and the line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from envctl.errors import EnvctlError, Problem
from envctl.load import list_environments, load_environment, parse_environment

Edit = tuple[Any, ...]

SHA = "a625406f6977d45c1391b078f4d3656e0b75bfcb"


def test_schema_is_valid_draft_2020_12(repo_root: Path) -> None:
    schema = json.loads((repo_root / "environments/schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_committed_environment_is_valid(repo_root: Path) -> None:
    names = list_environments(repo_root)
    assert names == ["local", "dev", "staging", "prod"]
    for name in names:
        load_environment(repo_root, name)


CASES: list[tuple[str, str, Edit, str, str]] = [
    # id, environment, edit, field, words in the message
    ("platform-enum", "dev", ("put", "platform", "kubernetes"), "platform", "one of"),
    ("cloud-needs-project", "dev", ("drop", "project"), "project", "is required"),
    ("cloud-needs-state", "dev", ("drop", "state_bucket"), "state_bucket", "is required"),
    ("cloud-needs-promotion", "staging", ("drop", "promotion"), "promotion", "is required"),
    ("unknown-field", "dev", ("put", "owner", "team-a"), "owner", "unknown field"),
    ("region-pattern", "dev", ("put", "region", "Europe West"), "region", "GCP region"),
    (
        "registry-pattern",
        "dev",
        ("put", "registry", "docker.io/me"),
        "registry",
        "Artifact Registry",
    ),
    ("bucket-pattern", "dev", ("put", "state_bucket", "Bad Bucket"), "state_bucket", "bucket"),
    (
        "bool-type",
        "dev",
        ("put", "deletion_protection", "no"),
        "deletion_protection",
        "true or false",
    ),
    (
        "approval-type",
        "prod",
        ("put", "promotion.approval_required", "yes"),
        "promotion.approval_required",
        "true or false",
    ),
    (
        "promotion-from-name",
        "dev",
        ("put", "promotion.from", "Dev!"),
        "promotion.from",
        "environment name",
    ),
    ("services-not-empty", "dev", ("put", "services", {}), "services", "at least 1"),
    (
        "service-name",
        "dev",
        ("rename", "services.pipeline", "Pipeline"),
        "services.Pipeline",
        "service name",
    ),
    (
        "docker-needs-port",
        "local",
        ("drop", "services.pipeline.port"),
        "services.pipeline.port",
        "is required",
    ),
    (
        "cloud-has-no-port",
        "dev",
        ("put", "services.pipeline.port", 8080),
        "services.pipeline.port",
        "unknown field",
    ),
    (
        "image-needs-commit",
        "dev",
        ("drop", "services.pipeline.image.commit"),
        "services.pipeline.image.commit",
        "is required",
    ),
    (
        "digest-pattern",
        "dev",
        ("put", "services.pipeline.image.digest", "sha256:xyz"),
        "services.pipeline.image.digest",
        "64 lower-case hex",
    ),
    (
        "ingress-enum",
        "dev",
        ("put", "services.console.ingress", "public"),
        "services.console.ingress",
        "one of",
    ),
    (
        "invoker-member",
        "dev",
        ("put", "services.console.invokers", ["alice@example.org"]),
        "services.console.invokers[0]",
        "IAM member",
    ),
    (
        "invokers-unique",
        "dev",
        ("put", "services.console.invokers", ["group:a@example.org", "group:a@example.org"]),
        "services.console.invokers",
        "twice",
    ),
    (
        "min-instances",
        "dev",
        ("put", "services.pipeline.scaling.min_instances", -1),
        "services.pipeline.scaling.min_instances",
        "at least 0",
    ),
    (
        "max-instances",
        "dev",
        ("put", "services.pipeline.scaling.max_instances", 5000),
        "services.pipeline.scaling.max_instances",
        "at most 1000",
    ),
    (
        "cpu-quoted",
        "dev",
        ("put", "services.pipeline.resources.cpu", 1),
        "services.pipeline.resources.cpu",
        "quoted",
    ),
    (
        "memory-unit",
        "dev",
        ("put", "services.pipeline.resources.memory", "1GB"),
        "services.pipeline.resources.memory",
        "Mi or Gi",
    ),
    (
        "concurrency-type",
        "dev",
        ("put", "services.pipeline.concurrency", "many"),
        "services.pipeline.concurrency",
        "whole number",
    ),
    (
        "timeout-max",
        "dev",
        ("put", "services.pipeline.timeout_seconds", 7200),
        "services.pipeline.timeout_seconds",
        "at most 3600",
    ),
    (
        "grpc-needs-http2",
        "dev",
        ("put", "services.pipeline.http2", False),
        "services.pipeline.http2",
        "HTTP/2",
    ),
    (
        "grpc-startup-probe",
        "dev",
        ("put", "services.pipeline.probes.startup", {"type": "http", "path": "/readyz"}),
        "services.pipeline.probes.startup.type",
        "grpc.health",
    ),
    (
        "http-probe-needs-path",
        "dev",
        ("drop", "services.console.probes.startup.path"),
        "services.console.probes.startup.path",
        "is required",
    ),
    (
        "grpc-probe-has-no-path",
        "dev",
        ("put", "services.pipeline.probes.liveness.path", "/healthz"),
        "services.pipeline.probes.liveness.path",
        "http probes only",
    ),
    (
        "env-name",
        "dev",
        ("rename", "services.pipeline.env.PIPELINE_NAME", "pipeline_name"),
        "services.pipeline.env.pipeline_name",
        "environment variable name",
    ),
    (
        "env-value-string",
        "dev",
        ("put", "services.pipeline.env.WORKERS", 4),
        "services.pipeline.env.WORKERS",
        "a string",
    ),
    (
        "secret-needs-version",
        "dev",
        ("put", "services.console.secrets", {"SESSION_KEY": {"secret": "console-session"}}),
        "services.console.secrets.SESSION_KEY.version",
        "is required",
    ),
    (
        "secret-version-pinned",
        "dev",
        ("put", "services.console.secrets", {"SESSION_KEY": {"secret": "s", "version": "latest"}}),
        "services.console.secrets.SESSION_KEY.version",
        "pinned version number",
    ),
    (
        "secret-has-no-value",
        "dev",
        (
            "put",
            "services.console.secrets",
            {"SESSION_KEY": {"secret": "s", "version": "1", "value": "x"}},
        ),
        "services.console.secrets.SESSION_KEY.value",
        "unknown field",
    ),
    (
        "vpc-egress-enum",
        "dev",
        ("put", "services.console.vpc.egress", "none"),
        "services.console.vpc.egress",
        "one of",
    ),
    (
        "calls-unique",
        "dev",
        ("put", "services.console.calls", ["pipeline", "pipeline"]),
        "services.console.calls",
        "twice",
    ),
    (
        "rollout-percent",
        "dev",
        (
            "put",
            "services.console.rollout",
            {"canary_percent": 100, "stable_revision": "console-00001-abc"},
        ),
        "services.console.rollout.canary_percent",
        "at most 99",
    ),
    (
        "freeze-timestamp",
        "prod",
        ("put", "freeze.0.start", "tomorrow"),
        "freeze[0].start",
        "RFC 3339",
    ),
    ("freeze-day", "prod", ("put", "freeze.1.days", ["friday"]), "freeze[1].days[0]", "one of"),
    ("freeze-time", "prod", ("put", "freeze.1.until", "25:00"), "freeze[1].until", "HH:MM"),
    ("freeze-reason", "prod", ("drop", "freeze.0.reason"), "freeze[0].reason", "is required"),
]


@pytest.mark.parametrize(
    ("env", "edit", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_schema_rule_fails_with_file_field_and_line(
    repo_root: Path,
    broken: Callable[..., list[Problem]],
    env: str,
    edit: Edit,
    field: str,
    words: str,
) -> None:
    found = broken(repo_root, env, edit)
    assert found, "the edit should have been refused"
    matching = [p for p in found if p.field == field]
    assert matching, f"no problem for {field}: {[str(p) for p in found]}"
    problem = matching[0]
    assert words in problem.message
    assert problem.file == f"environments/{env}.yaml"
    assert problem.line is not None
    assert problem.line > 0
    assert str(problem).startswith(f"environments/{env}.yaml:{problem.line}: {field}: ")
    assert "\n" not in str(problem)


def test_unquoted_timestamp_is_explained(repo_root: Path) -> None:
    text = (repo_root / "environments/prod.yaml").read_text()
    text = text.replace('start: "2026-12-18T00:00:00Z"', "start: 2026-12-18T00:00:00Z")
    with pytest.raises(EnvctlError) as caught:
        parse_environment(repo_root, "prod", text)
    (problem,) = caught.value.problems
    assert problem.field == "freeze[0].start"
    assert "quotes" in problem.message
    assert problem.line == text.splitlines().index("  - start: 2026-12-18T00:00:00Z") + 1


def test_commit_checkout_is_documented_in_the_schema(repo_root: Path) -> None:
    schema = json.loads((repo_root / "environments/schema.json").read_text())
    assert "checkout" in schema["$defs"]["image"]["description"]
    assert SHA  # the placeholder SHAs in the files are full 40-hex values (policy checks it)
