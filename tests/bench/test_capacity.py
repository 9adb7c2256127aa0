"""The capacity phase: plans, steps, knees, the report section and chart, and the
open-loop generator against a real pipeline-server process (no containers).

The container run (bare grpcio server, pipeline and console images, cpusets) is
in test_runner_docker.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import capacity, capacity_report, ratios, report
from bench.histogram import Histogram
from testkit.net import free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- the plan ------------------------------------------------------------------


def test_rates_rise_by_the_factor_within_the_step_and_rate_bounds() -> None:
    plan = capacity.Plan(start_rps=100, factor=2, max_steps=10, max_rps=1000)
    assert plan.rates() == [100, 200, 400, 800]
    assert capacity.Plan(start_rps=100, factor=1.5, max_steps=3).rates() == [100, 150, 225]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("start_rps", 0, "start rate"),
        ("factor", 1.0, "factor"),
        ("max_steps", 0, "max steps"),
        ("seconds", 0, "seconds"),
        ("processes", 0, "processes"),
        ("min_achieved", 1.5, "min achieved"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_naming_the_field(
    field: str, value: float, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        capacity.Plan(**{field: value})  # type: ignore[arg-type]


def test_low_rate_steps_last_long_enough_for_a_p99_of_many_calls() -> None:
    plan = capacity.Plan(seconds=4, p99_calls=500, max_step_seconds=10)
    assert plan.window_s(50) == 10, "500 calls would take 10 s"
    assert plan.window_s(100) == 5
    assert plan.window_s(1000) == 4, "never shorter than seconds"
    assert plan.window_s(10) == 10, "never longer than max_step_seconds"


def test_users_cover_the_calls_in_flight_at_the_slo_or_are_fixed() -> None:
    plan = capacity.Plan(grpc_slo_ms=10, http_slo_ms=25)
    assert plan.users_for(10, "get_dag") == capacity.MIN_USERS
    # 1,000/s at 10 ms: 10 in flight, four times that many users.
    assert plan.users_for(1000, "get_dag") == 40
    assert plan.users_for(1000, "api_dag") == 100
    assert plan.users_for(1e6, "get_dag") == capacity.MAX_USERS
    # A Cloud Run environment's concurrency fixes them.
    assert capacity.Plan(users=4).users_for(1000, "get_dag") == 4


@pytest.mark.parametrize(
    ("text", "cpus"), [("0", {0}), ("0,2", {0, 2}), ("1-3", {1, 2, 3}), ("", set())]
)
def test_cpu_lists_read_like_taskset(text: str, cpus: set[int]) -> None:
    assert capacity.parse_cpus(text) == cpus


@pytest.mark.parametrize("bad", ["a", "1-b", "0;1"])
def test_a_bad_cpu_list_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="CPU list"):
        capacity.parse_cpus(bad)


# --- steps and knees from result files --------------------------------------------


def _file(
    latencies_us: list[int], sent: int, errors: dict[str, int], cpu_s: float, window: float = 4.0
) -> dict[str, Any]:
    return {
        "schema": 1,
        "pid": 1,
        "host": "h",
        "window_s": window,
        "sent": sent,
        "late": 0,
        "errors": errors,
        "cpu_s": cpu_s,
        "histogram": Histogram.of(latencies_us).to_json(),
    }


def _step(rate: float, p99_us: int, *, errors: int = 0, cpu: float = 0.3, lost: int = 0) -> Any:
    n = int(rate * 4)
    ok = n - errors - lost
    latencies = [p99_us // 2] * (ok - ok // 50) + [p99_us] * (ok // 50)
    return capacity.merge_step(
        rate, 8, [_file(latencies, n, {"UNAVAILABLE": errors} if errors else {}, cpu * 4)]
    )


def test_steps_merge_every_process_file() -> None:
    files = [
        _file([500] * 100, 100, {}, 1.0),
        _file([700] * 98, 100, {"UNAVAILABLE": 2}, 3.6),
    ]
    step = capacity.merge_step(50.0, 8, files)
    assert (step.sent, step.ok, step.errors) == (200, 198, {"UNAVAILABLE": 2})
    assert step.achieved_rps == pytest.approx(198 / 4)
    assert step.error_rate == pytest.approx(0.01)
    assert step.generator_cpu == [0.25, 0.9]
    assert step.generator_bound, "one process above 80 % of a core"


def test_a_step_without_result_files_is_a_failure_not_an_empty_step() -> None:
    with pytest.raises(capacity.CapacityFailed, match="no result file"):
        capacity.merge_step(100.0, 8, [])


def test_a_step_holds_only_within_the_slo_the_error_budget_and_the_offered_rate() -> None:
    plan = capacity.Plan(max_error_rate=0.001, min_achieved=0.95)
    slo = 10_000
    assert capacity.judge(_step(100, 8_000), slo, plan).holds
    slow = capacity.judge(_step(100, 12_000), slo, plan)
    assert not slow.holds
    assert "p99 12.0 ms > SLO 10 ms" in slow.why
    failing = capacity.judge(_step(100, 5_000, errors=2), slo, plan)
    assert not failing.holds
    assert "errors" in failing.why
    behind = capacity.judge(_step(100, 5_000, lost=40), slo, plan)
    assert not behind.holds
    assert "achieved" in behind.why


def test_the_knee_is_the_last_step_of_the_unbroken_run_from_the_bottom() -> None:
    plan = capacity.Plan()
    steps = [
        capacity.judge(_step(r, p99), 10_000, plan)
        for r, p99 in ((100, 2_000), (200, 4_000), (400, 15_000))
    ]
    result = capacity.TargetResult("pipeline", "get_dag", "x", 10_000, steps)
    assert result.knee_rps == 200
    assert not result.knee_is_lower_bound
    # Broken at the first step: no rate held.
    first = capacity.TargetResult("pipeline", "get_dag", "x", 10_000, steps[2:])
    assert first.knee_rps == 0


def test_a_knee_found_where_the_generator_was_saturated_is_only_a_lower_bound() -> None:
    plan = capacity.Plan()
    steps = [
        capacity.judge(_step(100, 2_000), 10_000, plan),
        capacity.judge(_step(200, 15_000, cpu=0.95), 10_000, plan),
    ]
    assert steps[1].generator_bound
    result = capacity.TargetResult("bare", "health", "x", 10_000, steps)
    assert result.knee_rps == 100
    assert result.knee_is_lower_bound
    # Never broken within the plan: also a lower bound.
    held = capacity.TargetResult("bare", "health", "x", 10_000, steps[:1])
    assert held.knee_is_lower_bound


def _section() -> dict[str, Any]:
    plan = capacity.Plan(start_rps=100, factor=2)
    results = {}
    for name, call, p99s in (
        ("bare", "health", (1_000, 2_000, 3_000, 20_000)),
        ("pipeline", "get_dag", (2_000, 4_000, 30_000)),
        ("console", "api_dag", (9_000, 40_000)),
    ):
        slo = plan.slo_us(call)
        steps = [capacity.judge(_step(100 * 2**i, p99), slo, plan) for i, p99 in enumerate(p99s)]
        results[name] = capacity.TargetResult(name, call, "x", slo, steps)
    return capacity.section(plan, results, "servers on CPUs 1, Locust on CPUs 0")


def test_the_section_has_every_step_the_knees_and_both_capacity_ratios() -> None:
    section = _section()
    assert {k: t["knee_rps"] for k, t in section["targets"].items()} == {
        "bare": 400,
        "pipeline": 200,
        "console": 100,
    }
    assert section["pipeline_over_bare"] == pytest.approx(0.5)
    assert section["console_over_pipeline"] == pytest.approx(0.5)
    step = section["targets"]["bare"]["steps"][-1]
    assert {"offered_rps", "achieved_rps", "latency_us", "errors", "generator_cpu"} <= set(step)
    # The compared ratios: higher is worse, and knees are too coarse to gate.
    computed = ratios.compute({"capacity": section})
    assert computed["capacity.bare_over_pipeline"].value == pytest.approx(2.0)
    assert computed["capacity.pipeline_over_console"].value == pytest.approx(2.0)
    assert not any(r.gated for r in computed.values())


def test_the_report_shows_the_capacity_tables_and_draws_the_chart(tmp_path: Path) -> None:
    section = _section()
    lines = "\n".join(capacity_report.markdown(section))
    assert "| pipeline GetDag | 200/s |" in lines
    assert "pipeline ÷ bare capacity **0.50**" in lines
    assert "no: p99 30.0 ms > SLO 10 ms" in lines
    path = capacity_report.chart(tmp_path, section, "abc")
    assert path.read_bytes()[:8] == PNG_MAGIC

    # A capacity-only report renders its section and chart, not the latency charts.
    data = report.assemble(
        meta={"kind": "bench-report", "created": "2026-01-01T00:00:00+00:00", "target": "t",
              "commit": "c" * 40, "tag": "t", "dirty": False},
        machine={"cpu_model": "x", "usable_cpus": 2, "logical_cpus": 2, "memory_bytes": 2**30,
                 "os": "Linux", "python": "3.13", "load_average_1_5_15": [0, 0, 0],
                 "packages": {}},
        images=None, locust_version="2", parameters={"capacity": section["plan"]},
        cold_samples=None, warm=None, floor=None, calibration=None, large_feed=None,
        capacity=section,
    )  # fmt: skip
    report.write(tmp_path / "r", data, None)
    written = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert capacity_report.CAPACITY_PNG in written
    assert report.CDF_PNG not in written
    assert "## Capacity" in (tmp_path / "r" / "report.md").read_text()


# --- the generator, against a real server ------------------------------------------


def _serving(addr: str) -> bool:
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def pipeline_addr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PIPELINE_DATA_DIR": str(tmp_path_factory.mktemp("data")),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    addr = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _serving(addr):
            assert proc.poll() is None, "pipeline-server exited"
            assert time.monotonic() < deadline, "pipeline-server not SERVING in 60 s"
            time.sleep(0.1)
        yield addr
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.parametrize("processes", [1, 2])
def test_the_generator_offers_the_rate_and_merges_every_process(
    pipeline_addr: str, tmp_path: Path, processes: int
) -> None:
    # Low enough rates to hold on a loaded 2-core machine; the plumbing is what is
    # tested: each step's calls are the rate x window, from every process.
    plan = capacity.Plan(
        start_rps=40, factor=2, max_steps=2, warmup_s=0.5, seconds=2,
        grpc_slo_ms=2000, processes=processes, users=4, p99_calls=1,
    )  # fmt: skip
    result = capacity.measure("pipeline", "get_dag", pipeline_addr, plan, tmp_path)
    assert [s.offered_rps for s in result.steps] == [40, 80]
    for step, folder in zip(result.steps, sorted(tmp_path.glob("step-*")), strict=True):
        files = list(folder.glob("cap-*.json"))
        assert len(files) == processes, "one result file per worker, none from the master"
        # Evenly spaced arrivals: the window holds rate x seconds calls (± one per user).
        assert abs(step.sent - step.offered_rps * plan.seconds) <= plan.users, step
        assert step.ok == step.sent, step
        assert not step.errors, step
        assert len(step.generator_cpu) == processes
        assert 0 < step.latency_us["p50"] < 2_000_000
        json.loads(files[0].read_text())
    assert result.knee_rps == 80


def test_a_server_that_is_not_there_is_a_step_of_errors(tmp_path: Path) -> None:
    plan = capacity.Plan(start_rps=20, max_steps=3, warmup_s=0.2, seconds=1, users=2, p99_calls=1)
    result = capacity.measure("pipeline", "get_dag", f"127.0.0.1:{free_port()}", plan, tmp_path)
    assert len(result.steps) == 1, "stepping stops at the first step that does not hold"
    step = result.steps[0]
    assert step.sent > 0
    assert step.ok == 0
    assert set(step.errors) == {"UNAVAILABLE"}
    assert "errors 100.00%" in step.why
    assert result.knee_rps == 0
