"""remove_unused_stops keeps what the level-by-level closure kept, and
merge_stops' distance is the vectorised one bit for bit."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from continuous_gtfs import PipelineContext, StepResult
from continuous_gtfs.pipelines import extract_zip

from testkit.scripts import load_script

RunStep = Callable[..., tuple[PipelineContext, StepResult]]


ref = load_script(Path(__file__).with_name("stops_reference.py"), "metro_tests_stops_reference")


def check_kept(run_step: RunStep, tables: dict[str, pl.DataFrame]) -> set[str]:
    used = tables["stop_times.txt"]["stop_id"].drop_nulls().to_list()
    stops = tables["stops.txt"].with_columns(
        pl.col("location_type").replace("", None), pl.col("parent_station").replace("", None)
    )
    expected = ref.reference_kept(stops, used)
    ctx, result = run_step("remove_unused_stops", **tables)
    assert result.status == "success", result.error
    kept = set(ctx.output["stops.txt"]["stop_id"].to_list())
    assert kept == expected
    return kept


@pytest.mark.parametrize("seed", range(8))
def test_random_hierarchies_keep_what_they_kept(run_step: RunStep, seed: int) -> None:
    check_kept(run_step, ref.random_feed(seed, ref.MONTREAL))


def test_generated_feeds_keep_what_they_kept(run_step: RunStep, generate_feed: ModuleType) -> None:
    for seed in (0, 3):
        for broken in (False, True):
            feed = generate_feed.build_feed(
                3 * generate_feed.MIN_FULL_ROWS, seed=seed, broken_hierarchy=broken
            )
            check_kept(run_step, extract_zip(feed))


@pytest.mark.parametrize("shape", ["chain", "cycle"])
def test_a_served_stop_at_the_bottom_of_a_deep_chain_keeps_the_chain(
    run_step: RunStep, shape: str
) -> None:
    n = 2_000
    parent = [f"C{i - 1}" if i else ("" if shape == "chain" else f"C{n - 1}") for i in range(n)]
    # Entrances hang off every tenth link: kept with it.
    tables = {
        "stops.txt": pl.DataFrame(
            {
                "stop_id": [f"C{i}" for i in range(n)] + [f"E{i}" for i in range(0, n, 10)],
                "location_type": ["0"] * n + ["2"] * (n // 10),
                "parent_station": parent + [f"C{i}" for i in range(0, n, 10)],
            }
        ),
        "stop_times.txt": pl.DataFrame(
            {"trip_id": ["T"], "stop_id": ["C1000"], "stop_sequence": ["1"]}
        ),
    }
    kept = check_kept(run_step, tables)
    assert len(kept) == (1001 + 101 if shape == "chain" else n + n // 10)


def test_the_distance_is_the_vectorised_expression_bit_for_bit(settings: ModuleType) -> None:
    haversine_m = sys.modules[f"{settings.__name__}.stops_merge"].haversine_m
    rng = random.Random(5)
    rows = []
    for _ in range(200_000):
        lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        spread = rng.choice([1e-6, 3e-4, 1e-2, 90.0])
        rows.append(
            (lat, lon, lat + rng.uniform(-spread, spread), lon + rng.uniform(-spread, spread))
        )
    rows += [(45.5, -73.6, -45.5, 106.4), (0.0, 0.0, 0.0, 180.0), (90.0, 0.0, -90.0, 0.0)]
    frame = pl.DataFrame(rows, schema=["a", "b", "c", "d"], orient="row")
    vectorised = frame.select(
        ref.haversine_expr(pl.col("a"), pl.col("b"), pl.col("c"), pl.col("d"))
    ).to_series()
    mismatches = [
        (row, v)
        for row, v in zip(rows, vectorised.to_list(), strict=True)
        if haversine_m(*row) != v
    ]
    assert mismatches == []
