"""The run store phase: a seeded store served by a real pipeline, and its report section.

Real parts: SQLite files made by the phase's seeding (the service's own tables and
migrations), read back through SQLAlchemy and through an in-process
`pipeline_server.server.start` on a loopback port; the report from measured
histograms. The container run is `python -m bench store` (see bench/README.md).
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from bench import floor, ratios, report, run_store
from bench.run_store import PAGE_SIZE, STEPS, Seeded
from harness.feeds import feed
from harness.grpc_client import run_requests
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer, start
from pipeline_server.settings import load_settings
from testkit.net import free_port

REPO = Path(__file__).resolve().parents[2]
# More than one insert batch, few enough to seed in about a second.
RUNS = 2_500


def _start(data_dir: Path) -> RunningServer:
    settings = load_settings({}).model_copy(
        update={
            "port": free_port(),
            "pipelines_dir": REPO / "pipelines",
            "pipeline_name": "metro_schedule",
            "data_dir": data_dir,
            "retention_runs": 0,
            "retention_days": 0,
        }
    )
    return start(settings, host="127.0.0.1")


def in_process(data_dir: Path) -> tuple[str, Callable[[], None]]:
    """run_store.Starter with a pipeline-server in this process instead of a container."""
    server = _start(data_dir)
    return f"127.0.0.1:{server.port}", lambda: server.stop(None)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return run_store.seed(tmp_path_factory.mktemp("store") / "data", RUNS, seed=7)


@pytest.fixture(scope="module")
def stub(seeded: Seeded) -> Iterator[pb_grpc.PipelineServiceStub]:
    server = _start(seeded.data_dir)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield pb_grpc.PipelineServiceStub(channel)
    finally:
        channel.close()
        server.stop(None)


def test_seed_writes_every_run_with_its_steps(seeded: Seeded) -> None:
    assert run_store.count_runs(seeded.data_dir) == (RUNS, RUNS * len(STEPS))
    assert seeded.step_rows == RUNS * len(STEPS)
    assert len(set(seeded.run_ids)) == RUNS
    # Mostly completed, a realistic share failed.
    assert 0.6 * RUNS < seeded.completed < 0.9 * RUNS
    assert seeded.seconds > 0
    assert seeded.insert_s > 0
    assert seeded.db_bytes > 0
    # Handed over to the image's user, as a mounted data dir must be.
    if os.geteuid() == 0:
        assert (seeded.data_dir / run_store.SQLITE_FILE).stat().st_uid == 10001
    # The checkpoint left everything in the main file.
    wal = seeded.data_dir / (run_store.SQLITE_FILE + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_seeding_is_deterministic(tmp_path: Path) -> None:
    a = run_store.seed(tmp_path / "a", 30, seed=3, now_us=1_800_000_000_000_000)
    b = run_store.seed(tmp_path / "b", 30, seed=3, now_us=1_800_000_000_000_000)
    assert a.run_ids == b.run_ids
    assert a.completed == b.completed


def test_get_run_returns_seeded_runs_with_their_step_results(
    seeded: Seeded, stub: pb_grpc.PipelineServiceStub
) -> None:
    statuses = set()
    for run_id in random.Random(1).sample(seeded.run_ids, 40):
        run = stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=10)
        assert run.run_id == run_id
        statuses.add(run.status)
        assert [s.step_name for s in run.step_results] == list(STEPS)
        assert run.finished_at.ToMicroseconds() > run.started_at.ToMicroseconds()
        assert run.input_size > 0
        assert len(run.input_sha256) == 64
        merge = run.step_results[2]
        if run.status == pb.RUN_STATUS_COMPLETED:
            assert not run.error
            assert run.output_size > 0
            assert all(s.status == pb.STEP_STATUS_SUCCESS for s in run.step_results)
        else:
            assert run.error.startswith("step ")
            assert any(s.status == pb.STEP_STATUS_FAILED for s in run.step_results)
        if merge.status == pb.STEP_STATUS_SUCCESS:
            assert {c.file for c in merge.row_counts} >= {"stops.txt", "stop_times.txt"}
            assert merge.findings[0].code == "stops_merged"
            assert merge.findings[0].context["distance_m"] == "25"
            assert merge.messages
        else:
            assert merge.error
            assert run.step_results[3].status == pb.STEP_STATUS_SKIPPED
    assert statuses == {pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED}


def test_the_one_output_zip_downloads(seeded: Seeded, stub: pb_grpc.PipelineServiceStub) -> None:
    run = stub.GetRun(pb.GetRunRequest(run_id=seeded.download_run_id), timeout=10)
    assert run.output_available
    data = b"".join(
        m.chunk
        for m in stub.DownloadOutput(
            pb.DownloadOutputRequest(run_id=seeded.download_run_id), timeout=10
        )
    )
    assert len(data) == run.output_size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["feed_info.txt"]
    # Every other run has no zip, and says so.
    other = stub.GetRun(pb.GetRunRequest(run_id=seeded.run_ids[0]), timeout=10)
    assert not other.output_available


def _walk(stub: pb_grpc.PipelineServiceStub) -> tuple[list[str], list[str]]:
    ids, tokens, token = [], [], ""
    while True:
        reply = stub.ListRuns(pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=token), timeout=10)
        ids += [r.run_id for r in reply.runs]
        assert all(len(r.step_results) == len(STEPS) for r in reply.runs)
        if not reply.next_page_token:
            return ids, tokens
        token = reply.next_page_token
        tokens.append(token)


def test_list_runs_pages_every_seeded_run_once_newest_first_with_stable_tokens(
    tmp_path: Path,
) -> None:
    # Its own store: this test adds a run.
    seeded = run_store.seed(tmp_path / "data", 205, seed=5)
    server = _start(seeded.data_dir)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = pb_grpc.PipelineServiceStub(channel)
        ids, tokens = _walk(stub)
        assert ids == list(reversed(seeded.run_ids))
        assert len(tokens) == 205 // PAGE_SIZE  # 10 full pages and one of 5
        assert _walk(stub) == (ids, tokens)  # the same tokens on a second walk

        walk = run_store.walk_to_deep_page(stub, seeded.runs)
        assert walk.page == 10
        assert walk.token == tokens[8]
        assert list(walk.first_page_ids) == ids[:PAGE_SIZE]
        assert list(walk.deep_page_ids) == ids[9 * PAGE_SIZE : 10 * PAGE_SIZE]

        # A new run (a real one) goes first and shifts no page a token points to.
        new = stub.RunPipeline(run_requests(feed(2000), label="new.zip"), timeout=60)
        assert new.status == pb.RUN_STATUS_COMPLETED
        first = stub.ListRuns(pb.ListRunsRequest(page_size=PAGE_SIZE), timeout=10)
        assert first.runs[0].run_id == new.run_id
        deep = stub.ListRuns(
            pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=walk.token), timeout=10
        )
        assert [r.run_id for r in deep.runs] == list(walk.deep_page_ids)
    finally:
        channel.close()
        server.stop(None)


def test_deep_page_is_250_of_10000_or_the_last_full_page() -> None:
    assert run_store.deep_page_number(10_000) == 250
    assert run_store.deep_page_number(40) == 2
    assert run_store.deep_page_number(205) == 10
    assert run_store.deep_page_number(5) == 1


def test_the_small_store_holds_the_large_ones_first_and_deep_pages() -> None:
    assert run_store.small_store_indices(10_000, 40) == [*range(5000, 5020), *range(9980, 10_000)]
    # 60 runs: page 3 is its deep page; the runs between are the large store's next ones.
    assert run_store.small_store_indices(10_000, 60) == [
        *range(5000, 5020),
        *range(9960, 10_000),
    ]
    with pytest.raises(ValueError, match="needs 40"):
        run_store.small_store_indices(10_000, 20)


def test_both_stores_answer_the_compared_pages_with_the_same_runs(tmp_path: Path) -> None:
    def pages(stub: pb_grpc.PipelineServiceStub, runs: int) -> tuple[list[pb.Run], list[pb.Run]]:
        walk = run_store.walk_to_deep_page(stub, runs)
        first = stub.ListRuns(pb.ListRunsRequest(page_size=PAGE_SIZE), timeout=10)
        deep = stub.ListRuns(
            pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=walk.token), timeout=10
        )
        return list(first.runs), list(deep.runs)

    with run_store.seeded_stores(300, 40, root=tmp_path) as stores:
        got = {}
        for name, store in stores.items():
            addr, stop = in_process(store.data_dir)
            try:
                with grpc.insecure_channel(addr) as channel:
                    got[name] = pages(pb_grpc.PipelineServiceStub(channel), store.runs)
            finally:
                stop()
        assert set(stores["small"].run_ids) <= set(stores["large"].run_ids)
    assert got["small"] == got["large"]


# --- the phase end to end in-process, and its report section ------------------------


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> run_store.StoreResult:
    root = tmp_path_factory.mktemp("phase")
    with run_store.seeded_stores(300, 40, root=root) as stores:
        bounds = floor.Bounds(max_calls=25, max_seconds=0.5)
        return run_store.measure(stores, in_process, bounds)


def test_measure_times_every_call_on_both_stores(measured: run_store.StoreResult) -> None:
    assert set(measured.hists) == set(run_store.CALLS)
    for by_store in measured.hists.values():
        assert set(by_store) == {"small", "large"}
        # Paired: both stores asked the same number of times, within the bounds.
        small, large = by_store["small"], by_store["large"]
        assert 0 < small.count == large.count <= 25
        assert small.value_at(50) > 0
        assert large.value_at(50) > 0
    assert measured.walks["large"].page == 15
    assert measured.walks["small"].page == 2


def test_report_section_numbers_ratios_and_markdown(
    measured: run_store.StoreResult, tmp_path: Path
) -> None:
    section = run_store.section(measured)
    for call in run_store.CALLS:
        entry = section["calls"][call]
        for store in ("small", "large"):
            assert {"count", "p50", "p90", "p99"} <= set(entry[store])
        expected = entry["large"]["p50"] / entry["small"]["p50"]
        assert entry["large_over_small_p50"] == pytest.approx(expected, rel=1e-3)
    assert section["stores"]["large"]["runs"] == 300
    assert section["stores"]["large"]["step_rows"] == 300 * len(STEPS)
    assert section["stores"]["large"]["seconds"] > 0

    result = report.assemble(
        meta={
            "kind": "bench-report",
            "created": "2026-01-01T00:00:00+00:00",
            "target": "in-process",
            "commit": "0" * 40,
            "tag": "t",
            "dirty": False,
        },
        machine={
            "cpu_model": "cpu",
            "usable_cpus": 2,
            "logical_cpus": 2,
            "memory_bytes": 2**30,
            "os": "Linux",
            "python": "3.13",
            "load_average_1_5_15": [0.1, 0.1, 0.1],
            "packages": {},
        },
        images=None,
        locust_version="2",
        parameters={"run_store": {"runs": 300}},
        cold_samples=None,
        warm=None,
        floor=None,
        calibration=None,
        large_feed=None,
        run_store=section,
    )
    got = result["ratios"]
    for call in run_store.CALLS:
        ratio = got[f"run_store.{call}.large_over_small"]
        assert ratio["value"] == pytest.approx(section["calls"][call]["large_over_small_p50"])
        assert ratio["gated"] == (call in ratios.RUN_STORE_GATED)

    folder = tmp_path / "result"
    report.write(folder, result, None, run_store.raw_json(measured))
    md = (folder / report.REPORT_MD).read_text()
    assert "## Run store (SQLite: 300 runs beside 40, page size 20)" in md
    assert "| ListRuns, deep page (page 15) | 300 |" in md
    assert "| ListRuns, deep page (page 2) | 40 |" in md
    assert "300 ÷ 40 p50" in md
    assert "Seeding 300 runs (1,500 step results" in md
    # No cold/warm/floor: no charts, and none are referenced.
    assert "## Charts" not in md
    assert not list(folder.glob("*.png"))
    assert (folder / "raw" / "run_store.json").exists()
    # And it renders again from the folder.
    (folder / report.REPORT_MD).unlink()
    assert report.render(folder) == [folder / report.REPORT_MD]
    assert (folder / report.REPORT_MD).read_text() == md
