"""End to end: `python -m bench run` at tiny scale against the real containers.

Two cold samples, a 3-second warm phase with 2 users, short floor loops and a
small "large" feed: every phase runs, every file of the report is written and
parses. The numbers at this scale mean nothing; the plumbing is what is tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.warm import REPO
from harness import images

pytestmark = pytest.mark.docker

# Image reuse, 2 cold samples (~1-2 s each), floor ~4 s, calibration and warm
# Locust runs (~5 s and ~6 s with start-up), a 5,000-row feed three ways, a
# 300-run store beside a 40-run one (two more pipeline containers, ~5 s), two
# 1.3-second capacity steps per target (~30 s with Locust's start-ups).
RUN_TIMEOUT_S = 300


def test_runner_writes_a_complete_report(built_images: images.Build, tmp_path: Path) -> None:
    out = tmp_path / "result"
    cmd = [
        sys.executable, "-m", "bench", "run",
        "--pipeline-image", built_images.ref("pipeline"),
        "--console-image", built_images.ref("console"),
        "--cold-samples", "2",
        "--users", "2", "--console-users", "1", "--seconds", "3", "--warmup", "1",
        # Windows end on a count of calls (at most 60 s): never empty on a loaded
        # machine. RunPipeline is 1 task in 21 for the one PipelineUser: ~0.3/s.
        "--min-calls", "3", "--max-seconds", "60",
        "--floor-seconds", "1", "--floor-calls", "300", "--calibration-seconds", "2",
        "--large-rows", "5000",
        "--store-runs", "300", "--store-small-runs", "40",
        "--store-seconds", "0.5", "--store-calls", "100",
        # Two tiny capacity steps per target, an SLO loose enough to hold anywhere.
        "--capacity-steps", "2", "--capacity-start", "20", "--capacity-factor", "2",
        "--capacity-seconds", "1", "--capacity-warmup", "0.3", "--capacity-p99-calls", "1",
        "--slo-grpc-ms", "2000", "--slo-http-ms", "2000",
        "--output", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr[-5000:]
    # Progress was shown for each phase.
    for phase in (
        "cold 2/2",
        "floor (first",
        "calibration",
        "warm load",
        "second half",
        "large feed",
        "run store",
        "capacity:",
    ):
        assert phase in done.stderr, phase

    data = report.load(out)
    assert data["images"]["pipeline"]["size_bytes"] > 0
    assert data["locust_version"]
    assert data["machine"]["logical_cpus"] >= 1
    assert len(data["cold"]["samples"]) == 2
    assert all(s["serving_s"] > 0 for s in data["cold"]["samples"])
    rpcs = data["warm"]["rpcs"]
    assert {"GetDag", "GetStatus", "ListSteps", "/api/dag"} <= set(rpcs)
    assert rpcs["GetDag"]["latency_us"]["p50"] > 0
    # Locust's count of the window (reset at warm-up), the one the window ended on.
    for name in ("GetDag", "GetStatus", "ListSteps", "RunPipeline", "/api/dag", "/api/status"):
        assert rpcs[name]["locust"]["requests"] >= 3, (name, rpcs[name])
    assert set(data["floor"]) >= {"health_check", "get_dag", "console_dag", "locust_get_dag"}
    assert data["large_feed"]["rows"] == 5000
    store = data["run_store"]
    assert store["stores"]["large"]["runs"] == 300
    assert store["stores"]["large"]["deep_page"] == 15
    assert all(c["large"]["p50"] > 0 and c["small"]["p50"] > 0 for c in store["calls"].values())
    assert "run_store.GetRun.large_over_small" in data["ratios"]
    gated = {k for k, v in data["ratios"].items() if v["gated"]}
    assert {
        "floor.locust_over_plain",
        "warm.GetDag.p50_over_floor",
        "cold.serving_over_python_start",
        "large_feed.console_over_library",
    } <= gated

    cap = data["capacity"]
    assert set(cap["targets"]) == {"bare", "pipeline", "console"}
    for target in cap["targets"].values():
        assert [s["offered_rps"] for s in target["steps"]] == [20, 40]
        assert all(s["ok"] > 0 and s["holds"] for s in target["steps"]), target
        assert target["knee_rps"] == 40
    # Servers and Locust on separate CPUs when the machine has two or more.
    if data["machine"]["usable_cpus"] >= 2:
        assert "servers on CPUs" in cap["placement"]
    assert "capacity.bare_over_pipeline" in data["ratios"]
    assert list((out / "raw" / "capacity" / "bare" / "step-00").glob("cap-*.json"))

    md = (out / "report.md").read_text()
    assert "## Warm" in md
    assert "## Cold (2 samples" in md
    assert "## Run store (SQLite: 300 runs beside 40" in md
    assert "## Capacity" in md
    for png in (report.CDF_PNG, report.TIMELINE_PNG, "latency-vs-load.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert list((out / "raw" / "warm").glob("hist-*.json"))
    json.loads((out / "raw" / "floor.json").read_text())

    # A result compared with itself passes; the report re-renders from its folder.
    same = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(out), "--baseline", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    (out / "report.md").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "bench", "report", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert (out / "report.md").exists()
