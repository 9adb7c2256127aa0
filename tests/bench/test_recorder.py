"""The per-process recorder: warm-up window, errors, timeline, files, merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.recorder import Recorder, load_dir, merge


def test_calls_started_in_the_warm_up_are_counted_but_not_measured() -> None:
    r = Recorder()
    r.start(1000.0, warmup_s=2.0)
    r.record("GetDag", "grpc", 1000.5, 9000)  # warm-up: slow first call
    r.record("GetDag", "grpc", 1002.1, 400)
    r.record("GetDag", "grpc", 1002.2, 600)
    stats = r.methods["GetDag"]
    assert stats.warmup_calls == 1
    assert stats.histogram.count == 2
    assert stats.histogram.max == 600
    # The timeline keeps every call, warm-up included, by completion second.
    assert sorted(r.timeline["GetDag"]) == [0, 2]


def test_failures_are_counted_by_code_and_kept_out_of_latency() -> None:
    r = Recorder()
    r.start(0.0)
    r.record("GetDag", "grpc", 1.0, 300)
    r.record("GetDag", "grpc", 1.1, 5, "UNAVAILABLE")
    r.record("GetDag", "grpc", 1.2, 7, "UNAVAILABLE")
    r.record("/api/dag", "http", 1.3, 2000, "HTTP 503")
    assert r.methods["GetDag"].errors == {"UNAVAILABLE": 2}
    assert r.methods["GetDag"].histogram.count == 1
    assert r.methods["GetDag"].calls == 3
    assert r.methods["/api/dag"].kind == "http"
    assert r.timeline["GetDag"][1].errors == 2


def test_a_recorder_used_without_start_measures_everything() -> None:
    r = Recorder()
    r.record("GetStatus", "grpc", 50.0, 120)
    assert r.test_start == 50.0
    assert r.methods["GetStatus"].histogram.count == 1


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    r = Recorder()
    r.start(10.0, 1.0)
    r.record("GetDag", "grpc", 11.5, 450)
    r.record("GetDag", "grpc", 12.5, 5, "DEADLINE_EXCEEDED")
    r.stop(20.0)
    path = r.dump(tmp_path)
    assert path.name.startswith("hist-")
    again = Recorder.from_json(json.loads(path.read_text()))
    assert again.to_json() == r.to_json()
    assert again.window_seconds == pytest.approx(9.0)
    assert load_dir(tmp_path).to_json() == r.to_json()


def test_merge_adds_processes_and_aligns_their_timelines() -> None:
    a, b = Recorder(), Recorder()
    a.start(100.0, 1.0)
    b.start(101.0, 1.0)  # a worker that started a second later
    a.record("GetDag", "grpc", 101.5, 400)
    b.record("GetDag", "grpc", 102.5, 500)
    b.record("GetDag", "grpc", 102.6, 1, "UNAVAILABLE")
    a.stop(110.0)
    b.stop(111.0)
    m = merge([a, b])
    assert m.methods["GetDag"].histogram.count == 2
    assert m.methods["GetDag"].errors == {"UNAVAILABLE": 1}
    # b's second 1 is the merged timeline's second 2.
    assert sorted(m.timeline["GetDag"]) == [1, 2]
    # Both processes measured only inside [102, 110].
    assert (m.window_start, m.window_end) == (102.0, 110.0)


def test_load_dir_without_files_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="hist-"):
        load_dir(tmp_path)


def test_a_file_of_another_schema_is_refused() -> None:
    data = Recorder().to_json()
    data["schema"] = 99
    with pytest.raises(ValueError, match="schema"):
        Recorder.from_json(data)


def test_progress_counts_every_call_warm_up_and_failures_included(tmp_path: Path) -> None:
    r = Recorder()
    r.start(0.0, warmup_s=1.0)
    r.record("GetDag", "grpc", 0.5, 100)
    r.record("GetDag", "grpc", 1.5, 100)
    r.record("GetDag", "grpc", 1.6, 1, "UNAVAILABLE")
    assert r.totals() == (3, 1)
    r.write_progress(tmp_path)
    (progress,) = tmp_path.glob("progress-*.json")
    assert json.loads(progress.read_text()) == {"calls": 3, "errors": 1}
