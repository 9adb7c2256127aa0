"""Policy rules (envctl/policy.py): each has a failing example whose message names the
file, the service and the field; the committed files pass all of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.errors import EnvctlError, Problem
from envctl.load import load_environment
from envctl.policy import RULES

Edit = tuple[Any, ...]
COMMIT = "services.pipeline.image.commit"

CASES: list[tuple[str, str, str, list[Edit], str, str]] = [
    # rule, case id, environment, edits, field, words in the message
    ("commit-sha", "short", "dev", [("put", COMMIT, "a625406")], COMMIT, "not a full 40-hex"),
    (
        "commit-sha",
        "upper-case",
        "dev",
        [("put", COMMIT, "A625406F6977D45C1391B078F4D3656E0B75BFCB")],
        COMMIT,
        "lower-case",
    ),
    (
        "commit-sha",
        "checkout-in-cloud",
        "dev",
        [("put", COMMIT, "checkout")],
        COMMIT,
        "docker platform only",
    ),
    (
        "digest-pinned",
        "missing",
        "staging",
        [("drop", "services.console.image.digest")],
        "services.console.image.digest",
        "pins the image digest",
    ),
    (
        "no-latest",
        "env-tag",
        "dev",
        [("put", "services.pipeline.env.BASE_IMAGE", "python:latest")],
        "services.pipeline.env.BASE_IMAGE",
        "latest",
    ),
    ("no-latest", "commit", "local", [("put", COMMIT, "latest")], COMMIT, "latest"),
    (
        "internal-not-public",
        "all-users",
        "prod",
        [("put", "services.pipeline.invokers", ["allUsers"])],
        "services.pipeline.invokers[0]",
        "makes an internal service public",
    ),
    (
        "internal-not-public",
        "ingress-all",
        "prod",
        [("put", "services.pipeline.ingress", "all")],
        "services.pipeline.ingress",
        "console call",
    ),
    (
        "secrets-by-reference",
        "by-name",
        "dev",
        [("put", "services.console.env.DB_PASSWORD", "hunter2")],
        "services.console.env.DB_PASSWORD",
        "Secret Manager",
    ),
    (
        "secrets-by-reference",
        "pem",
        "dev",
        [("put", "services.console.env.TLS", "-----BEGIN RSA PRIVATE KEY-----\nMIIB")],
        "services.console.env.TLS",
        "PEM private key",
    ),
    (
        "secrets-by-reference",
        "url-password",
        "local",
        [("put", "services.console.env.DATABASE_URL", "postgres://app:s3cret@db/app")],
        "services.console.env.DATABASE_URL",
        "password inside a URL",
    ),
    (
        "canary-required",
        "prod-without-canary",
        "prod",
        [("drop", "verification")],
        "verification",
        "declares verification.canary",
    ),
    (
        "canary-tolerance",
        "same-as-default",
        "staging",
        [("put", "verification.canary.rows.files", {"stop_times.txt": 0})],
        'verification.canary.rows.files["stop_times.txt"]',
        "equals default_percent",
    ),
    (
        "warm-instance",
        "prod-pipeline",
        "prod",
        [("put", "services.pipeline.scaling.min_instances", 0)],
        "services.pipeline.scaling.min_instances",
        "warm instance",
    ),
    (
        "scaling-range",
        "min-above-max",
        "dev",
        [("put", "services.console.scaling.min_instances", 3)],
        "services.console.scaling.min_instances",
        "above max_instances",
    ),
    (
        "calls-exist",
        "unknown",
        "dev",
        [("put", "services.console.calls", ["pipeline", "feeds"])],
        "services.console.calls[1]",
        "not a service of dev",
    ),
    (
        "calls-exist",
        "itself",
        "local",
        [("put", "services.console.calls", ["pipeline", "console"])],
        "services.console.calls[1]",
        "does not call itself",
    ),
    (
        "internal-callee-needs-vpc",
        "no-vpc",
        "staging",
        [("drop", "services.console.vpc")],
        "services.console.vpc",
        "vpc.egress: all-traffic",
    ),
    (
        "internal-callee-needs-vpc",
        "private-ranges",
        "staging",
        [("put", "services.console.vpc.egress", "private-ranges-only")],
        "services.console.vpc.egress",
        "all-traffic",
    ),
    (
        "reserved-env",
        "port",
        "dev",
        [("put", "services.pipeline.env.PORT", "9000")],
        "services.pipeline.env.PORT",
        "reserved",
    ),
    (
        "reserved-env",
        "injected-address",
        "local",
        [("put", "services.console.env.PIPELINE_ADDR", "10.0.0.5:443")],
        "services.console.env.PIPELINE_ADDR",
        "because it calls pipeline",
    ),
    (
        "reserved-env",
        "project",
        "dev",
        [("put", "services.console.env.GOOGLE_CLOUD_PROJECT", "other-project")],
        "services.console.env.GOOGLE_CLOUD_PROJECT",
        "the platform sets it",
    ),
    (
        "reserved-env",
        "token-audience",
        "prod",
        [("put", "services.pipeline.env.PIPELINE_TOKEN_AUDIENCE", "https://x.run.app")],
        "services.pipeline.env.PIPELINE_TOKEN_AUDIENCE",
        "because console calls it",
    ),
    (
        "reserved-env",
        "env-and-secret",
        "dev",
        [
            ("put", "services.console.env.SESSION_KEY_ID", "a"),
            (
                "put",
                "services.console.secrets",
                {"SESSION_KEY_ID": {"secret": "k", "version": "2"}},
            ),
        ],
        "services.console.env.SESSION_KEY_ID",
        "both env and secrets",
    ),
    (
        "local-ports",
        "shared",
        "local",
        [("put", "services.pipeline.port", 8080)],
        "services.console.port",
        "also pipeline's",
    ),
    (
        "rollout-revision",
        "other-service",
        "prod",
        [
            (
                "put",
                "services.console.rollout",
                {"canary_percent": 10, "stable_revision": "pipeline-00002-abc"},
            )
        ],
        "services.console.rollout.stable_revision",
        "not a revision of console",
    ),
    (
        "run-store",
        "missing",
        "staging",
        [("drop", "services.pipeline.storage")],
        "services.pipeline",
        "declares no storage",
    ),
    (
        "run-store",
        "cloud-without-database",
        "dev",
        [("drop", "services.pipeline.storage.database")],
        "services.pipeline.storage",
        "storage.database is missing",
    ),
    (
        "run-store",
        "cloud-without-bucket",
        "prod",
        [("drop", "services.pipeline.storage.bucket")],
        "services.pipeline.storage",
        "storage.bucket is missing",
    ),
    (
        "run-store",
        "database-on-docker",
        "local",
        [
            (
                "put",
                "services.pipeline.storage.database",
                {
                    "tier": "db-f1-micro",
                    "availability": "zonal",
                    "disk_gb": 10,
                    "backups": False,
                    "point_in_time_recovery": False,
                },
            )
        ],
        "services.pipeline.storage.database",
        "cloudrun only",
    ),
    (
        "run-store",
        "bucket-on-docker",
        "local",
        [("put", "services.pipeline.storage.bucket", {"lifecycle_days": 30})],
        "services.pipeline.storage.bucket",
        "a SQLite file and a folder",
    ),
    (
        "run-store",
        "database-without-vpc",
        "dev",
        [("drop", "services.pipeline.vpc")],
        "services.pipeline.storage.database",
        "Direct VPC egress",
    ),
    (
        "retention-bounded",
        "unlimited",
        "local",
        [
            ("put", "services.pipeline.storage.retention.days", 0),
            ("put", "services.pipeline.storage.retention.runs", 0),
        ],
        "services.pipeline.storage.retention",
        "grows without end",
    ),
    (
        "bucket-outlives-rows",
        "lifecycle-equal-to-retention",
        "prod",
        [("put", "services.pipeline.storage.bucket.lifecycle_days", 90)],
        "services.pipeline.storage.bucket.lifecycle_days",
        "set it above 90",
    ),
    (
        "bucket-outlives-rows",
        "lifecycle-without-age-limit",
        "staging",
        [("put", "services.pipeline.storage.retention.days", 0)],
        "services.pipeline.storage.bucket.lifecycle_days",
        "no age limit",
    ),
    (
        "production-storage",
        "no-backups",
        "prod",
        [
            ("put", "services.pipeline.storage.database.backups", False),
            ("put", "services.pipeline.storage.database.point_in_time_recovery", False),
        ],
        "services.pipeline.storage.database.backups",
        "keeps backups",
    ),
    (
        "production-storage",
        "no-point-in-time-recovery",
        "prod",
        [("put", "services.pipeline.storage.database.point_in_time_recovery", False)],
        "services.pipeline.storage.database.point_in_time_recovery",
        "point-in-time recovery",
    ),
    (
        "production-storage",
        "no-deletion-protection",
        "prod",
        [("put", "deletion_protection", False)],
        "deletion_protection",
        "deletion_protection must be true",
    ),
    (
        "pitr-needs-backups",
        "staging",
        "staging",
        [("put", "services.pipeline.storage.database.backups", False)],
        "services.pipeline.storage.database.point_in_time_recovery",
        "starts from a backup",
    ),
    (
        "reserved-env",
        "database-url",
        "dev",
        [("put", "services.pipeline.env.PIPELINE_DATABASE_URL", "sqlite:////tmp/runs.db")],
        "services.pipeline.env.PIPELINE_DATABASE_URL",
        "the run store's Cloud SQL database",
    ),
    (
        "reserved-env",
        "database-url-on-docker",
        "local",
        [("put", "services.pipeline.env.PIPELINE_DATABASE_URL", "sqlite:////tmp/runs.db")],
        "services.pipeline.env.PIPELINE_DATABASE_URL",
        "leaves it unset",
    ),
    (
        "reserved-env",
        "retention",
        "prod",
        [("put", "services.pipeline.env.PIPELINE_RETENTION_DAYS", "365")],
        "services.pipeline.env.PIPELINE_RETENTION_DAYS",
        "from storage.retention.days",
    ),
    (
        "registry-in-project",
        "other-project",
        "prod",
        [("put", "registry", "europe-west1-docker.pkg.dev/gtfs-gitops-dev/services")],
        "registry",
        "own project",
    ),
    (
        "registry-in-project",
        "other-region",
        "prod",
        [("put", "registry", "us-central1-docker.pkg.dev/gtfs-gitops-prod/services")],
        "registry",
        "runs in 'europe-west1'",
    ),
    (
        "freeze-windows",
        "one-off-backwards",
        "prod",
        [("put", "freeze.0.end", "2026-12-01T00:00:00Z")],
        "freeze[0].end",
        "ends before",
    ),
    (
        "freeze-windows",
        "weekly-backwards",
        "prod",
        [("put", "freeze.1.until", "09:00")],
        "freeze[1].until",
        "ends before",
    ),
    (
        "freeze-windows",
        "not-a-date",
        "prod",
        [("put", "freeze.0.start", "2026-02-30T00:00:00Z")],
        "freeze[0].start",
        "not a real date",
    ),
    (
        "override-expiry",
        "beyond-24-hours",
        "prod",
        [("put", "override", {"reason": "r", "by": "ops", "expires": "2030-01-01T00:00:00Z"})],
        "override.expires",
        "an override lasts at most 24 hours",
    ),
    (
        "override-expiry",
        "not-a-date",
        "prod",
        [("put", "override", {"reason": "r", "by": "ops", "expires": "2026-02-30T00:00:00Z"})],
        "override.expires",
        "not a real date",
    ),
    (
        "promotion-soak",
        "beyond-30-days",
        "prod",
        [("put", "promotion.soak", "90d")],
        "promotion.soak",
        "not between 1m and 30d",
    ),
    (
        "telemetry-export",
        "gcp-locally",
        "local",
        [("put", "telemetry.export", "gcp")],
        "telemetry.export",
        "docker exports to none or otlp",
    ),
    (
        "telemetry-export",
        "otlp-in-the-cloud",
        "dev",
        [("put", "telemetry.export", "otlp")],
        "telemetry.export",
        "only make up starts one",
    ),
    (
        "telemetry-export",
        "no-thresholds",
        "staging",
        [("drop", "telemetry.thresholds")],
        "telemetry",
        "telemetry.thresholds",
    ),
    (
        "telemetry-export",
        "channels-locally",
        "local",
        [("put", "telemetry.notification_channels", [{"email": "a@example.org"}])],
        "telemetry.notification_channels",
        "docker has no alert policies",
    ),
    (
        "trace-sampling",
        "prod-traces-everything",
        "prod",
        [("put", "telemetry.trace_sampling", 1.0)],
        "telemetry.trace_sampling",
        "polls GetDag",
    ),
    (
        "alerts-reach-someone",
        "nobody",
        "prod",
        [("put", "telemetry.notification_channels", [])],
        "telemetry.notification_channels",
        "at least one channel",
    ),
    (
        "promotion-chain",
        "unknown-source",
        "staging",
        [("put", "promotion.from", "qa")],
        "promotion.from",
        "no environments/qa.yaml",
    ),
    (
        "promotion-chain",
        "itself",
        "staging",
        [("put", "promotion.from", "staging")],
        "promotion.from",
        "itself",
    ),
]


def test_every_rule_has_a_failing_example() -> None:
    assert {case[0] for case in CASES} | {"promotion-chain"} == set(RULES)


@pytest.mark.parametrize(
    ("rule", "env", "edits", "field", "words"),
    [(c[0], *c[2:]) for c in CASES],
    ids=[f"{c[0]}:{c[1]}" for c in CASES],
)
def test_policy_rule_fails_naming_file_service_and_field(
    repo_root: Path,
    broken: Callable[..., list[Problem]],
    rule: str,
    env: str,
    edits: list[Edit],
    field: str,
    words: str,
) -> None:
    found = broken(repo_root, env, *edits)
    matching = [p for p in found if p.rule == rule and p.field == field]
    assert matching, f"expected {rule} at {field}; got {[f'{p.rule} {p}' for p in found]}"
    problem = matching[0]
    assert words in problem.message
    text = str(problem)
    assert text.startswith(f"environments/{env}.yaml:{problem.line}: {field}: ")
    if field.startswith("services."):
        assert f"{field.split('.')[1]}:" in problem.message  # names the service
    assert "\n" not in text


def test_switches_and_mounted_files_are_not_secrets(
    repo_root: Path, broken: Callable[..., list[Problem]]
) -> None:
    assert not broken(
        repo_root,
        "dev",
        ("put", "services.console.env.CONSOLE_REQUIRE_TOKEN", "true"),
        ("put", "services.console.env.GOOGLE_CREDENTIALS", "/var/run/secrets/key.json"),
    )


def test_promotion_chain_cycle_is_refused(env_repo: Path, run_git: Callable[..., str]) -> None:
    local = env_repo / "environments" / "local.yaml"
    text = local.read_text().replace(
        "freeze: []", "promotion:\n  from: prod\n  approval_required: false\nfreeze: []"
    )
    local.write_text(text)
    run_git(env_repo, "commit", "--quiet", "-am", "make a cycle")
    with pytest.raises(EnvctlError) as caught:
        load_environment(env_repo, "dev")
    (problem,) = caught.value.problems
    assert problem.rule == "promotion-chain"
    assert problem.field == "promotion.from"
    assert "cycle: dev <- local <- prod <- staging <- dev" in problem.message
