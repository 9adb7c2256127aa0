"""Benching a deployed environment: its scaling from the real environment files,
and the scale-to-zero wait against a local HTTP server that answers as Cloud
Monitoring's timeSeries.list does (no cloud calls)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bench import cloud
from bench.cli import REPO


def test_a_cloud_environment_gives_each_service_its_concurrency_and_scaling() -> None:
    dev = cloud.environment_services("dev", REPO)
    assert (dev.project, dev.region) == ("gtfs-gitops-dev", "europe-west1")
    pipeline = dev.services["pipeline"]
    assert (pipeline.concurrency, pipeline.min_instances, pipeline.max_instances) == (4, 0, 2)
    assert dev.services["console"].concurrency == 40
    assert cloud.require_scale_to_zero(dev, "pipeline") is pipeline


def test_a_service_kept_warm_has_no_cold_start_to_wait_for() -> None:
    prod = cloud.environment_services("prod", REPO)
    with pytest.raises(cloud.CloudTargetError, match="min_instances 1"):
        cloud.require_scale_to_zero(prod, "pipeline")
    with pytest.raises(cloud.CloudTargetError, match="no service 'worker'"):
        cloud.require_scale_to_zero(prod, "worker")


def test_local_and_unknown_environments_are_refused() -> None:
    with pytest.raises(cloud.CloudTargetError, match="not Cloud Run"):
        cloud.environment_services("local", REPO)
    with pytest.raises(cloud.CloudTargetError, match="environment nowhere"):
        cloud.environment_services("nowhere", REPO)


def _series(revision: str, state: str, points: list[tuple[str, int]]) -> dict[str, Any]:
    # The shape timeSeries.list returns for run.googleapis.com/container/instance_count.
    return {
        "metric": {"type": cloud.INSTANCE_COUNT, "labels": {"state": state}},
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": "pipeline", "revision_name": revision},
        },
        "metricKind": "GAUGE",
        "valueType": "INT64",
        "points": [
            {
                "interval": {"startTime": end, "endTime": end},
                "value": {"int64Value": str(count)},
            }
            for end, count in points
        ],
    }


class Monitoring:
    """A local stand-in answering each GET with the next recorded body (or status)."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                owner.requests.append(
                    (url.path, urllib.parse.parse_qs(url.query), self.headers["Authorization"])
                )
                status, body = owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Monitoring:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def busy_then_idle() -> Iterator[Monitoring]:
    two_revisions = {
        "timeSeries": [
            _series("pipeline-00007", "active", [("2026-01-01T10:00:00Z", 3),
                                                 ("2026-01-01T10:01:00Z", 1)]),
            _series("pipeline-00006", "idle", [("2026-01-01T10:01:00Z", 1)]),
        ]
    }  # fmt: skip
    one_idle = {"timeSeries": [_series("pipeline-00007", "idle", [("2026-01-01T10:02:00Z", 1)])]}
    zero = {"timeSeries": [_series("pipeline-00007", "idle", [("2026-01-01T10:03:00Z", 0)])]}
    with Monitoring([(200, two_revisions), (200, one_idle), (200, zero)]) as server:
        yield server


def test_instances_are_the_newest_point_of_every_revision_and_state(
    busy_then_idle: Monitoring,
) -> None:
    client = cloud.MonitoringClient(
        "gtfs-gitops-dev", lambda: "tok", base_url=busy_then_idle.url, clock=lambda: 1_767_261_780
    )
    assert client.instances("pipeline") == 2
    path, query, auth = busy_then_idle.requests[0]
    assert path == "/v3/projects/gtfs-gitops-dev/timeSeries"
    assert auth == "Bearer tok"
    assert 'resource.labels.service_name = "pipeline"' in query["filter"][0]
    assert cloud.INSTANCE_COUNT in query["filter"][0]
    assert query["interval.endTime"] == ["2026-01-01T10:03:00Z"]
    assert query["interval.startTime"] == ["2026-01-01T10:00:00Z"]


def test_the_wait_ends_at_zero_instances(busy_then_idle: Monitoring) -> None:
    client = cloud.MonitoringClient("p", lambda: "tok", base_url=busy_then_idle.url)
    said: list[str] = []
    wait = cloud.wait_for_zero(
        lambda: client.instances("pipeline"), max_wait_s=10, poll_s=0.01, say=said.append
    )
    assert wait.reached_zero
    assert wait.last_count == 0
    assert len(busy_then_idle.requests) == 3
    assert len(said) == 2


def test_no_series_in_the_window_means_scaled_to_zero_long_ago() -> None:
    with Monitoring([(200, {})]) as server:
        client = cloud.MonitoringClient("p", lambda: "tok", base_url=server.url)
        assert client.instances("pipeline") == 0


def test_a_wait_that_times_out_says_the_sample_is_not_cold() -> None:
    busy = {"timeSeries": [_series("pipeline-00007", "active", [("2026-01-01T10:00:00Z", 2)])]}
    with Monitoring([(200, busy)]) as server:
        client = cloud.MonitoringClient("p", lambda: "tok", base_url=server.url)
        wait = cloud.wait_for_zero(lambda: client.instances("pipeline"), max_wait_s=0.05,
                                   poll_s=0.02)  # fmt: skip
        sample = cloud.cold_sample(lambda: wait, lambda: (900_000, 4_000))
    assert not sample.reached_zero
    assert sample.instances_before == 2
    section = cloud.cold_section("pipeline", [sample], 0.05)
    assert section["cold_first_us_median"] is None, "no sample followed zero instances"
    assert "timed out: not a cold start" in "\n".join(cloud.cold_markdown(section))


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [(403, {"error": {"message": "denied"}}, "403"), (200, "not json", "not JSON")],
)
def test_monitoring_failures_are_errors_not_zero(status: int, body: Any, says: str) -> None:
    with Monitoring([(status, body)]) as server:
        client = cloud.MonitoringClient("p", lambda: "tok", base_url=server.url)
        with pytest.raises(cloud.CloudTargetError, match=says):
            client.instances("pipeline")
