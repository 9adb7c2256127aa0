"""Ratios and `python -m bench compare`: a regression past the threshold exits non-zero."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import cli, ratios


def _ratio(value: float, gated: bool = True, kind: str = "ratio") -> dict[str, Any]:
    return {"value": value, "gated": gated, "what": "test", "kind": kind}


BASE = {
    "warm.GetDag.p50_over_floor": _ratio(4.0),
    "warm.GetDag.p99_over_floor": _ratio(9.0, gated=False),
    "floor.locust_over_plain": _ratio(1.3),
    "warm.error_rate": _ratio(0.0, kind="rate"),
}


def _statuses(verdicts: list[ratios.Verdict]) -> dict[str, str]:
    return {v.name: v.status for v in verdicts}


def test_within_threshold_passes() -> None:
    current = copy.deepcopy(BASE)
    current["warm.GetDag.p50_over_floor"]["value"] = 4.9  # +22.5 %
    verdicts = ratios.judge(BASE, current, 0.25)
    assert _statuses(verdicts)["warm.GetDag.p50_over_floor"] == "ok"
    assert not [v for v in verdicts if v.status == "regressed"]


def test_beyond_threshold_regresses() -> None:
    current = copy.deepcopy(BASE)
    current["warm.GetDag.p50_over_floor"]["value"] = 5.1  # +27.5 %
    statuses = _statuses(ratios.judge(BASE, current, 0.25))
    assert statuses["warm.GetDag.p50_over_floor"] == "regressed"
    assert statuses["floor.locust_over_plain"] == "ok"


def test_ungated_ratios_are_never_judged() -> None:
    current = copy.deepcopy(BASE)
    current["warm.GetDag.p99_over_floor"]["value"] = 90.0
    assert "warm.GetDag.p99_over_floor" not in _statuses(ratios.judge(BASE, current, 0.25))


def test_a_big_improvement_is_reported_as_such() -> None:
    current = copy.deepcopy(BASE)
    current["floor.locust_over_plain"]["value"] = 0.9
    assert _statuses(ratios.judge(BASE, current, 0.25))["floor.locust_over_plain"] == "improved"


def test_error_rate_is_judged_in_absolute_terms() -> None:
    current = copy.deepcopy(BASE)
    current["warm.error_rate"]["value"] = 0.0005  # one call in 2000: noise
    assert _statuses(ratios.judge(BASE, current, 0.25))["warm.error_rate"] == "ok"
    current["warm.error_rate"]["value"] = 0.02
    assert _statuses(ratios.judge(BASE, current, 0.25))["warm.error_rate"] == "regressed"


def test_missing_and_new_ratios_are_named_not_failed() -> None:
    current = copy.deepcopy(BASE)
    del current["floor.locust_over_plain"]
    current["large_feed.console_over_library"] = _ratio(2.0)
    statuses = _statuses(ratios.judge(BASE, current, 0.25))
    assert statuses["floor.locust_over_plain"] == "missing"
    assert statuses["large_feed.console_over_library"] == "new"


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        ratios.judge(BASE, BASE, -0.1)


def test_ratios_are_computed_from_a_report() -> None:
    report = {
        "floor": {
            "health_check": {"p50": 400},
            "get_dag": {"p50": 500},
            "get_dag_paced": {"p50": 1500},
            "console_dag": {"p50": 1500},
            "locust_get_dag": {"p50": 650},
        },
        "warm": {
            "rpcs": {
                "GetDag": {"latency_us": {"p50": 2000, "p99": 4000}, "calls": 99, "errors": 1},
                "/api/dag": {"latency_us": {"p50": 4000, "p99": 8000}, "calls": 100, "errors": 0},
            }
        },
        "cold": {
            "samples": [
                {
                    "python_start_s": 0.25,
                    "serving_s": 0.5,
                    "first_rpc_us": 5000,
                    "console_start_s": 0.75,
                    "console_first_us": 9000,
                },
                {
                    "python_start_s": 0.25,
                    "serving_s": 0.7,
                    "first_rpc_us": 3000,
                    "console_start_s": 0.75,
                    "console_first_us": 12000,
                },
            ]
        },
        "large_feed": {"rows": 1000, "library_s": 2.0, "grpc_s": 2.5, "console_s": 3.0},
    }
    got = {k: v.value for k, v in ratios.compute(report).items()}
    assert got["floor.get_dag_over_health"] == pytest.approx(1.25)
    assert got["floor.locust_over_plain"] == pytest.approx(1.3)
    assert got["floor.console_over_grpc"] == pytest.approx(3.0)
    assert got["warm.GetDag.p50_over_floor"] == pytest.approx(5.0)
    assert got["warm.locust_over_paced"] == pytest.approx(2000 / 1500)
    assert got["warm.error_rate"] == pytest.approx(1 / 199)
    assert got["cold.serving_over_python_start"] == pytest.approx(0.6 / 0.25)
    assert got["cold.first_rpc_over_plain"] == pytest.approx(8.0)
    assert got["large_feed.console_over_library"] == pytest.approx(1.5)
    assert not ratios.compute({})  # nothing measured, nothing to judge


def _write_report(folder: Path, values: dict[str, dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(
        json.dumps(
            {"schema": 1, "tag": folder.name, "created": "2026-01-01T00:00:00", "ratios": values}
        )
    )
    return folder


def test_compare_command_exits_1_on_regression_and_0_within(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = _write_report(tmp_path / "baseline", BASE)
    worse = copy.deepcopy(BASE)
    worse["floor.locust_over_plain"]["value"] = 1.3 * 1.3
    result = _write_report(tmp_path / "worse", worse)
    assert cli.main(["compare", str(result), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out
    assert "floor.locust_over_plain" in out
    # The same numbers pass with a looser threshold, and a copy of the baseline passes.
    assert (
        cli.main(["compare", str(result), "--baseline", str(baseline), "--threshold", "0.35"]) == 0
    )
    same = _write_report(tmp_path / "same", BASE)
    assert cli.main(["compare", str(same / "report.json"), "--baseline", str(baseline)]) == 0


def test_compare_command_exits_2_on_unreadable_input(tmp_path: Path) -> None:
    baseline = _write_report(tmp_path / "baseline", BASE)
    assert cli.main(["compare", str(tmp_path / "nowhere"), "--baseline", str(baseline)]) == 2


def test_parameter_differences_are_listed() -> None:
    base = {"large_rows": 1_000_000, "load": {"users": 4, "seconds": 20}}
    same = {"large_rows": 1_000_000, "load": {"users": 4, "seconds": 20}}
    assert ratios.parameter_differences(base, same) == []
    other = {"large_rows": 5000, "load": {"users": 4, "seconds": 3}, "cold_samples": 2}
    assert ratios.parameter_differences(base, other) == [
        "cold_samples: - → 2",
        "large_rows: 1000000 → 5000",
        "load.seconds: 20 → 3",
    ]
