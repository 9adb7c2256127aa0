"""The PromQL that the dashboard, the alert policies and the deploy's metrics check share
(envctl/monitoring.py): one environment's series, one revision's when asked, interactive
requests only for latency."""

from __future__ import annotations

from pathlib import Path

from envctl import monitoring
from envctl.load import load_environment
from envctl.render import render

PROD = monitoring.Scope("prod", "console")
REVISION = monitoring.Scope("prod", "pipeline", "pipeline-00017-xyz")


def test_every_query_reads_one_environments_service() -> None:
    for query in (
        monitoring.requests(PROD, "5m"),
        monitoring.error_ratio(PROD, "5m"),
        monitoring.latency(PROD, "5m"),
        monitoring.failed_runs(monitoring.Scope("prod", "pipeline"), "1h"),
    ):
        assert 'namespace="prod"' in query
        assert "instance=~" not in query  # every revision: the alerts' view


def test_a_revision_scope_selects_its_instances_only() -> None:
    for query in (
        monitoring.requests(REVISION, "10m"),
        monitoring.error_ratio(REVISION, "10m"),
        monitoring.latency(REVISION, "10m"),
    ):
        assert 'instance=~"pipeline-00017-xyz-.*"' in query
        assert "[10m]" in query


def test_latency_leaves_out_uploads_downloads_and_probes() -> None:
    console = monitoring.latency(PROD, "5m")
    assert '"http.request.method"="GET"' in console  # POST /api/runs is an upload
    assert "output|/healthz|/readyz" in console
    pipeline = monitoring.latency(REVISION, "5m")
    assert '"rpc.method"!~"RunPipeline|DownloadOutput"' in pipeline
    assert '"rpc.service"="pipeline.v1.PipelineService"' in pipeline  # not gRPC health


def test_the_error_ratio_counts_requests_with_an_error_type() -> None:
    query = monitoring.error_ratio(PROD, "5m")
    failed, every = query.split(" / ")
    assert '"error.type"!=""' in failed
    assert "error.type" not in every


def test_render_hands_the_same_queries_and_the_files_thresholds_to_the_module(
    repo_root: Path,
) -> None:
    prod = load_environment(repo_root, "prod")
    rendered = render(prod)["monitoring"]
    assert rendered["thresholds"] == {
        "error_ratio": 0.01,
        "p95_seconds": 1.0,
        "failed_runs_per_hour": 3,
    }
    assert rendered["notification_emails"] == ["gtfs-operations@example.org"]
    console = rendered["queries"]["services"]["console"]
    assert console["p95"] == monitoring.latency(PROD, "5m")
    assert console["error_ratio"] == monitoring.error_ratio(PROD, "5m")
