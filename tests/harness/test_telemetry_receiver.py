"""The local OTLP receiver `make up` collects telemetry with (harness.telemetry).

Unit tests for the quantiles and the trace tree it shows, then both services in
containers exporting to it over OTLP exactly as environments/local.yaml renders them:
one request's trace on its page spans console → pipeline → run → steps, and the
histograms arrive with their quantiles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from envctl.load import load_environment
from envctl.platform_env import LOCAL_OTLP_ENDPOINT, service_env
from harness import containers, feeds, images
from harness.fixtures import track, untrack
from harness.telemetry import Receiver, Series, Span, tree
from harness.tree import REPO_ROOT

TIMEOUT = 60


def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 requests: 4 under 1 ms, 4 in (1, 2.5] ms, 2 in (2.5, 5] ms.
    series = Series("s", "m", "s", {}, "histogram", count=10, bounds=[0.001, 0.0025, 0.005])
    series.buckets = [4, 4, 2, 0]
    assert series.quantile(0.5) == pytest.approx(0.001 + 0.0015 * (1 / 4))
    assert series.quantile(0.95) == pytest.approx(0.0025 + 0.0025 * (1.5 / 2))
    assert Series("s", "m", "s", {}, "histogram").quantile(0.5) is None


def test_tree_orders_spans_depth_first_from_the_root() -> None:
    def span(span_id: str, parent: str, start: int) -> Span:
        return Span("svc", span_id, "t", span_id, parent, start, start + 1, False, {})

    spans = [span("root", "", 0), span("b", "root", 2), span("a", "root", 1), span("a1", "a", 3)]
    ordered = tree(sorted(spans, key=lambda s: s.start_ns))
    assert [(depth, s.name) for depth, s in ordered] == [
        (0, "root"),
        (1, "a"),
        (2, "a1"),
        (1, "b"),
    ]


def test_a_busy_port_is_an_oserror_naming_it() -> None:
    with Receiver(0, 0) as first, pytest.raises(OSError, match=f"127.0.0.1:{first.port}"):
        Receiver(first.port, 0)


@pytest.fixture(scope="module")
def receiver_stack(built_images: images.Build) -> Iterator[tuple[Receiver, containers.Stack]]:
    local = load_environment(REPO_ROOT, "local")
    with Receiver(0, 0) as receiver:
        # What local.yaml renders, pointed at this receiver's free port instead of 4317.
        def otel(service: str) -> dict[str, str]:
            rendered = service_env(local, service)
            found = {k: v for k, v in rendered.items() if k.startswith("OTEL_")}
            assert found["OTEL_EXPORTER_OTLP_ENDPOINT"] == LOCAL_OTLP_ENDPOINT
            return {
                **found,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            }

        stack_id = containers.new_stack_id()
        pipeline = track(
            containers.start_pipeline(built_images.ref("pipeline"), stack_id, env=otel("pipeline"))
        )
        try:
            console = track(
                containers.start_console(
                    built_images.ref("console"), stack_id, pipeline.addr, env=otel("console")
                )
            )
        except BaseException:
            pipeline.remove()
            untrack(pipeline)
            raise
        try:
            yield receiver, containers.Stack(stack_id, pipeline, console)
        finally:
            for box in (console, pipeline):
                box.remove()
                untrack(box)


def _wait(receiver: Receiver, path: str, found: Any) -> Any:
    import time

    deadline = time.monotonic() + TIMEOUT
    while True:
        body = httpx.get(f"{receiver.url.rstrip('/')}{path}", timeout=10).json()
        if (hit := found(body)) is not None:
            return hit
        assert time.monotonic() < deadline, f"not on {path} within {TIMEOUT}s: {body}"
        time.sleep(0.5)


@pytest.mark.docker
def test_the_page_shows_one_trace_across_both_services(
    receiver_stack: tuple[Receiver, containers.Stack],
) -> None:
    receiver, stack = receiver_stack
    response = httpx.post(
        f"{stack.console.url}/api/runs",
        files={"feed": ("feed.zip", feeds.feed(), "application/zip")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    steps = {f"step {r['step_name']}" for r in response.json()["step_results"]}

    def the_run(traces: list[list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
        for trace in traces:
            names = {s["name"] for s in trace}
            if "POST /api/runs" in names and steps <= names:
                return trace
        return None

    trace = _wait(receiver, "/api/traces", the_run)
    by_id = {s["span_id"]: s for s in trace}

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        return by_id[span["parent_span_id"]]

    rpc = "pipeline.v1.PipelineService/RunPipeline"
    server = next(s for s in trace if s["service"] == "pipeline" and s["name"] == rpc)
    client = parent(server)
    assert (client["service"], client["name"]) == ("console", rpc)
    assert (parent(client)["service"], parent(client)["name"]) == ("console", "POST /api/runs")
    run = next(s for s in trace if s["name"].startswith("run "))
    assert parent(run) == server
    assert all(parent(s) == run for s in trace if s["name"] in steps)
    # The HTML page shows the same trace.
    page = httpx.get(receiver.url, timeout=10).text
    assert server["trace_id"] in page
    assert "POST /api/runs" in page


@pytest.mark.docker
def test_the_page_shows_histograms_with_quantiles(
    receiver_stack: tuple[Receiver, containers.Stack],
) -> None:
    receiver, stack = receiver_stack
    for _ in range(5):
        assert httpx.get(f"{stack.console.url}/api/dag", timeout=TIMEOUT).status_code == 200

    def get_dag(series: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (
                s
                for s in series
                if s["service"] == "pipeline"
                and s["metric"] == "rpc.server.duration"
                and s["attributes"].get("rpc.method") == "GetDag"
                and s["count"] >= 5
            ),
            None,
        )

    point = _wait(receiver, "/api/metrics", get_dag)
    assert point["unit"] == "s"
    assert 0 < point["p95"] < 5  # seconds
    assert "rpc.server.duration" in httpx.get(f"{receiver.url}metrics", timeout=10).text
