"""What envctl renders for the pipeline on each environment is what the pipeline
reads: every rendered variable loads, and the run store it names is well formed
(Cloud SQL through the connector with IAM authentication over private IP, a bucket).

The golden renders (tests/envctl/golden, checked against envctl by its own tests)
are the contract between the two; this side proves the pipeline accepts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_server.settings import load_settings
from pipeline_server.store.blobs import parse_blob_url
from pipeline_server.store.database import cloud_sql_target, parse_url

GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "envctl" / "golden"


def rendered_env(environment: str) -> dict[str, str]:
    render = json.loads((GOLDEN / f"{environment}.json").read_text())
    env: dict[str, str] = render["services"]["pipeline"]["env"]
    # The stack fills Cloud Run URLs (url_env) at plan time; any URL will do here.
    for name in render["services"]["pipeline"].get("url_env", {}):
        env[name] = "https://pipeline-123456789.europe-west1.run.app"
    return env


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_cloud_environments_name_cloud_sql_and_a_bucket(environment: str) -> None:
    settings = load_settings(rendered_env(environment))
    target = cloud_sql_target(parse_url(settings.database_url))
    assert target.instance == f"gtfs-gitops-{environment}:europe-west1:pipeline-runs-{environment}"
    assert target.user == f"svc-pipeline@gtfs-gitops-{environment}.iam"
    assert target.ip_type == "private"
    assert target.database == "runs"
    blobs = parse_blob_url(settings.output_url)
    assert blobs.scheme == "gs"
    assert blobs.bucket == f"gtfs-gitops-{environment}-pipeline-runs"
    assert settings.retention_days > 0 or settings.retention_runs > 0


def test_local_uses_the_embedded_store() -> None:
    settings = load_settings(rendered_env("local"))
    assert settings.database_url == ""
    assert settings.output_url == ""
    assert settings.store_database_url.startswith("sqlite:///")
