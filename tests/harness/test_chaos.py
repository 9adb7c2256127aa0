"""The chaos command: its verdict rules, and its short mode against real containers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness import chaos
from harness.tree import REPO_ROOT


def test_memory_that_settles_passes_and_memory_that_keeps_growing_fails() -> None:
    settles = [(t, 100 + min(t, 30) * 2) for t in range(0, 120, 5)]  # grows, then flat
    assert chaos._growth_after_warmup(settles) < chaos.MAX_GROWTH_AFTER_WARMUP
    leaks = [(t, 100 + t * 0.5) for t in range(0, 120, 5)]  # +0.5 MiB/s throughout
    assert chaos._growth_after_warmup(leaks) > chaos.MAX_GROWTH_AFTER_WARMUP


def test_an_outcome_fails_on_loss_false_report_or_a_stall() -> None:
    assert chaos.Outcome("f", "503", recovery_s=2.0).ok
    assert not chaos.Outcome("f", "503", recovery_s=2.0, lost=["earlier-0.zip"]).ok
    assert not chaos.Outcome("f", "503", recovery_s=2.0, false=["recorded completed"]).ok
    assert not chaos.Outcome("f", "503", recovery_s=None).ok, "never recovered"
    assert not chaos.Outcome("f", "201", recovery_s=chaos.RECOVERY_S + 1).ok, "a stall"


def test_what_a_client_saw_is_named_by_status_and_error_code() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/api/runs")
    json_503 = httpx.Response(
        503, json={"error": {"code": "pipeline_unavailable"}}, request=request
    )
    assert chaos._answer(json_503) == ("503 pipeline_unavailable", False)
    done = httpx.Response(201, json={"status": "completed"}, request=request)
    assert chaos._answer(done) == ("201 run completed", True)
    plain = httpx.Response(500, text="Internal Server Error", request=request)
    assert "not the JSON error shape" in chaos._answer(plain)[0]
    assert chaos._answer(httpx.ReadError("reset"))[1] is False


@pytest.mark.docker
def test_short_mode_finds_nothing_lost_or_falsely_reported(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.chaos", "--short", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = json.loads((tmp_path / "chaos.json").read_text())
    assert [f["fault"] for f in report["faults"]] == [
        "kill -9 pipeline mid-run",
        "kill -9 pipeline mid-upload",
        "16 idle RunPipeline streams",
    ]
    assert (tmp_path / "soak.svg").read_text().startswith("<svg")
    assert "soak: ok" in done.stdout
