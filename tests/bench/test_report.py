"""The result folder: report.json, report.md and charts from measured data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench import report
from bench.cli import BASELINE
from bench.histogram import Histogram
from bench.recorder import Recorder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _warm_recorder(folder: Path) -> Recorder:
    rng = random.Random(3)
    r = Recorder()
    r.start(1000.0, warmup_s=2.0)
    for i in range(600):
        t = 1000.0 + i / 60
        r.record("GetDag", "grpc", t, int(rng.lognormvariate(7.4, 0.3)))
        r.record("/api/dag", "http", t, int(rng.lognormvariate(8.2, 0.3)))
    r.record("GetDag", "grpc", 1005.0, 3, "UNAVAILABLE")
    r.stop(1010.0)
    r.dump(folder / "raw" / "warm")
    return r


def _report(folder: Path) -> dict[str, object]:
    warm = _warm_recorder(folder)
    rng = random.Random(4)
    floor = {
        name: Histogram.of(int(rng.lognormvariate(mu, 0.2)) for _ in range(500))
        for name, mu in (
            ("health_check", 6.1),
            ("get_dag", 6.2),
            ("get_dag_paced", 7.2),
            ("console_dag", 7.4),
        )
    }
    # Locust's final stats entry (locust.json) for the same window.
    stats = [
        {
            "name": "GetDag",
            "method": "grpc",
            "num_requests": 501,
            "num_failures": 1,
            "total_response_time": 501.0,
            "max_response_time": 3.2,
        }
    ]
    samples = [
        {
            "python_start_s": 0.25,
            "serving_s": 0.6,
            "first_rpc_us": 4000,
            "second_rpc_us": 700,
            "console_start_s": 0.7,
            "console_first_us": 9000,
            "console_second_us": 2500,
        },
        {
            "python_start_s": 0.27,
            "serving_s": 0.5,
            "first_rpc_us": 2000,
            "second_rpc_us": 600,
            "console_start_s": 0.6,
            "console_first_us": 8000,
            "console_second_us": 2400,
        },
    ]
    result = report.assemble(
        meta={
            "kind": "bench-report",
            "created": "2026-01-01T00:00:00+00:00",
            "target": "test",
            "commit": "a" * 40,
            "tag": "a" * 40,
            "dirty": False,
        },
        machine={
            "cpu_model": "test CPU",
            "usable_cpus": 2,
            "logical_cpus": 2,
            "memory_bytes": 2**31,
            "os": "Linux",
            "python": "3.13",
            "docker_server": None,
            "load_average_1_5_15": [0.1, 0.1, 0.1],
            "packages": {"grpcio": "1", "continuous-gtfs": "0.1"},
        },
        images={"pipeline": {"ref": "p:1", "id": "sha256:1", "size_bytes": 500_000_000}},
        locust_version="2.47.0",
        parameters={"load": {"users": 4, "warmup_s": 2}},
        cold_samples=samples,
        warm=report.warm_section(warm, stats),
        floor=floor,
        calibration=None,
        large_feed={
            "rows": 1000,
            "feed_bytes": 10_000,
            "uncompressed_bytes": 50_000,
            "repeats": 1,
            "library_s": 1.0,
            "grpc_s": 1.2,
            "console_s": 1.5,
        },
    )
    report.write(folder, result, floor)
    return result


def test_a_report_folder_has_json_markdown_and_charts(tmp_path: Path) -> None:
    result = _report(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data == json.loads(json.dumps(result))
    get_dag = data["warm"]["rpcs"]["GetDag"]
    # Locust's count for throughput, our histogram for latency, codes for errors.
    assert get_dag["rps"] == round(501 / 8, 2)  # the 8 s window after warm-up
    assert get_dag["locust"]["failures"] == 1
    assert get_dag["error_codes"] == {"UNAVAILABLE": 1}
    assert 1000 < get_dag["latency_us"]["p50"] < 2500
    assert get_dag["warmup_calls"] > 0
    assert data["ratios"]["large_feed.console_over_library"]["value"] == 1.5

    md = (tmp_path / "report.md").read_text()
    assert "| `GetDag` | grpc |" in md
    assert "UNAVAILABLE ×1" in md
    for heading in ("## Ratios", "## Cold (2 samples", "## Warm", "## Floor", "## Large feed"):
        assert heading in md
    for png in (report.CDF_PNG, report.TIMELINE_PNG):
        assert (tmp_path / png).read_bytes().startswith(PNG_MAGIC)
        assert f"]({png})" in md


def test_render_rebuilds_markdown_and_charts_from_the_folder(tmp_path: Path) -> None:
    _report(tmp_path)
    (tmp_path / "report.md").unlink()
    (tmp_path / report.CDF_PNG).unlink()
    written = report.render(tmp_path)
    assert all(p.exists() for p in written)


def test_a_report_without_warm_or_cold_data_still_renders(tmp_path: Path) -> None:
    result = report.assemble(
        meta={
            "kind": "bench-report",
            "created": "x",
            "target": "t",
            "commit": "c",
            "tag": "t",
            "dirty": True,
        },
        machine={
            "cpu_model": "c",
            "usable_cpus": 1,
            "logical_cpus": 1,
            "memory_bytes": 1,
            "os": "o",
            "python": "p",
            "docker_server": None,
            "load_average_1_5_15": [0, 0, 0],
            "packages": {},
        },
        images=None,
        locust_version="2.47.0",
        parameters={},
        cold_samples=None,
        warm=None,
        floor=None,
        calibration=None,
        large_feed=None,
    )
    report.write(tmp_path, result, None)
    assert (tmp_path / report.TIMELINE_PNG).exists()


def test_the_committed_baseline_is_a_complete_report() -> None:
    baseline = report.load(BASELINE)
    gated = [k for k, v in baseline["ratios"].items() if v["gated"]]
    for prefix in ("cold.", "warm.", "floor.", "large_feed."):
        assert any(k.startswith(prefix) for k in gated), prefix
    assert baseline["images"]["pipeline"]["size_bytes"] > 0
    assert baseline["large_feed"]["rows"] >= 1_000_000
    for name in ("report.md", report.CDF_PNG, report.TIMELINE_PNG):
        assert (BASELINE / name).exists()


def test_hist_command_prints_percentiles_of_a_stock_locust_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import cli

    _warm_recorder(tmp_path)
    assert cli.main(["hist", str(tmp_path / "raw" / "warm")]) == 0
    out = capsys.readouterr().out
    assert "GetDag" in out
    assert "UNAVAILABLE x1" in out
    assert cli.main(["hist", str(tmp_path / "empty")]) == 2


def test_render_can_derive_the_ratios_again(tmp_path: Path) -> None:
    expected = _report(tmp_path)["ratios"]
    data = json.loads((tmp_path / "report.json").read_text())
    data["ratios"] = {}
    (tmp_path / "report.json").write_text(json.dumps(data))
    report.render(tmp_path, recompute=True)
    assert report.load(tmp_path)["ratios"] == expected
