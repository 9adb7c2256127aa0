"""merge_stops decides exactly as the pair-comparing algorithm did.

The step indexes stops instead of comparing every pair of one name; these
tests hold it to the old decisions (stops_reference.reference_merge) on the
repository's feeds, on random feeds full of edge cases, and on the shapes that
made the old step slow, at sizes the quadratic oracle can afford. Timing lives
in bench/bench/stops_scaling.py and its guard test, not here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from continuous_gtfs import PipelineContext, StepResult
from continuous_gtfs.pipelines import extract_zip

from testkit.scripts import load_script


def _sibling(name: str) -> ModuleType:
    """A module next to this one (the tests run with --import-mode=importlib,
    which puts no test folder on sys.path)."""
    return load_script(Path(__file__).with_name(f"{name}.py"), f"metro_tests_{name}")


ref = _sibling("stops_reference")
end_to_end = _sibling("test_end_to_end")
ANTIMERIDIAN, EQUATOR, MONTREAL = ref.ANTIMERIDIAN, ref.EQUATOR, ref.MONTREAL
NEAR_POLE, POLE, M_PER_DEG_LAT = ref.NEAR_POLE, ref.POLE, ref.M_PER_DEG_LAT

RunStep = Callable[..., tuple[PipelineContext, StepResult]]


@pytest.fixture(scope="module")
def stops_merge(settings: ModuleType) -> ModuleType:
    return sys.modules[f"{settings.__name__}.stops_merge"]


def check_against_reference(
    run_step: RunStep,
    stops_merge: ModuleType,
    settings: ModuleType,
    tables: dict[str, pl.DataFrame],
) -> dict[str, str | None]:
    """Run the step; assert its merges and counts are the reference's; return its mapping."""
    expected, kept_distinct = ref.reference_merge(stops_merge, tables, settings.MERGE_DISTANCE_M)
    ctx, result = run_step("merge_stops", **tables)
    assert result.status == "success", result.error
    mapping: dict[str, str | None] = ctx.get_id_mappings("stops.txt", "stop_id")
    assert mapping == expected
    (finding,) = result.findings
    assert finding["context"]["merged"] == str(len(expected))
    assert finding["context"]["survivors"] == str(len(set(expected.values())))
    assert finding["context"]["kept_distinct"] == str(kept_distinct)
    merged = set(expected)
    assert ctx.output["stops.txt"]["stop_id"].to_list() == [
        s for s in tables["stops.txt"]["stop_id"].to_list() if s not in merged
    ]
    return mapping


def generated_feeds(generate_feed: ModuleType) -> list[bytes]:
    full = 3 * generate_feed.MIN_FULL_ROWS + 7
    return [end_to_end.zip_of(end_to_end.FEED)] + [
        generate_feed.build_feed(rows, seed=seed, broken_hierarchy=broken)
        for rows in (2, 201, full)
        for seed in (0, 1, 7)
        for broken in (False, True)
    ]


def test_generated_and_example_feeds_merge_as_before(
    run_step: RunStep, stops_merge: ModuleType, settings: ModuleType, generate_feed: ModuleType
) -> None:
    for feed in generated_feeds(generate_feed):
        check_against_reference(run_step, stops_merge, settings, extract_zip(feed))
    # And the documented outcome of the full generated feed, spelled out.
    tables = extract_zip(generate_feed.build_feed(3 * generate_feed.MIN_FULL_ROWS + 7))
    mapping = check_against_reference(run_step, stops_merge, settings, tables)
    assert mapping == {
        "RED03X": "RED03",
        "RED07-P0X": "RED07-P0",
        "B2-05": "B1-05A",
        "GREY01-P1": "GREY01-P0",
    }
    assert len(mapping) == generate_feed.MERGED_STOPS


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("place", [MONTREAL, EQUATOR], ids=["montreal", "equator"])
def test_random_look_alike_feeds_merge_as_before(
    run_step: RunStep,
    stops_merge: ModuleType,
    settings: ModuleType,
    seed: int,
    place: tuple[float, float],
) -> None:
    check_against_reference(run_step, stops_merge, settings, ref.random_feed(seed, place))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "place", [ANTIMERIDIAN, NEAR_POLE, POLE], ids=["antimeridian", "near-pole", "pole"]
)
def test_merges_across_the_antimeridian_and_near_the_poles(
    run_step: RunStep,
    stops_merge: ModuleType,
    settings: ModuleType,
    seed: int,
    place: tuple[float, float],
) -> None:
    # The old grid in degrees missed pairs here (longitude wraps; a degree of
    # longitude shrinks to nothing at a pole). The definition is the haversine
    # distance, which has no such seams.
    check_against_reference(run_step, stops_merge, settings, ref.random_feed(seed, place))


def test_two_stops_across_the_antimeridian_merge(run_step: RunStep) -> None:
    stops = pl.DataFrame(
        {
            "stop_id": ["E", "W"],
            "stop_name": ["Date Line", "Date Line"],
            "stop_lat": ["-16.5", "-16.5"],
            "stop_lon": ["179.99995", "-179.99995"],  # ~10.7 m apart
        }
    )
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops})
    assert ctx.get_id_mappings("stops.txt", "stop_id") == {"W": "E"}


def _distance(lat1: float, lat2: float) -> float:
    frame = pl.DataFrame({"a": [lat1], "b": [lat2], "lon": [-73.6]})
    value = frame.select(ref.haversine_expr(pl.col("a"), pl.col("lon"), pl.col("b"), pl.col("lon")))
    return float(value.item())


def test_a_stop_exactly_at_the_distance_merges_and_one_float_further_does_not(
    run_step: RunStep, stops_merge: ModuleType, settings: ModuleType
) -> None:
    distance = settings.MERGE_DISTANCE_M
    lat = 45.5
    # Walk north one representable latitude at a time across the boundary.
    north = lat + distance / M_PER_DEG_LAT
    while _distance(lat, north) <= distance:
        north = math.nextafter(north, 90)
    while _distance(lat, north) > distance:
        north = math.nextafter(north, 0)
    inside, outside = north, math.nextafter(north, 90)
    assert _distance(lat, inside) <= distance < _distance(lat, outside)
    for other, merges in ((inside, True), (outside, False)):
        stops = pl.DataFrame(
            {
                "stop_id": ["A", "B"],
                "stop_name": ["Elm St", "Elm St"],
                "stop_lat": [repr(lat), repr(other)],
                "stop_lon": ["-73.6", "-73.6"],
            }
        )
        mapping = check_against_reference(run_step, stops_merge, settings, {"stops.txt": stops})
        assert mapping == ({"B": "A"} if merges else {})


def many_at_one_place(n: int, parent: Callable[[int], str] = lambda i: "") -> pl.DataFrame:
    """n stops named "c" at 45,-73 (the issue's reproducer), parent_station by index."""
    return pl.DataFrame(
        {
            "stop_id": [f"CO{i}" for i in range(n)],
            "stop_name": ["c"] * n,
            "stop_lat": ["45"] * n,
            "stop_lon": ["-73"] * n,
            "location_type": ["0"] * n,
            "parent_station": [parent(i) for i in range(n)],
        }
    )


def served(stop_ids: list[str], route: Callable[[int], str]) -> dict[str, pl.DataFrame]:
    """stop_times with one trip per stop, and trips on route(i)."""
    return {
        "stop_times.txt": pl.DataFrame(
            {
                "trip_id": [f"T{i}" for i in range(len(stop_ids))],
                "stop_id": stop_ids,
                "stop_sequence": ["1"] * len(stop_ids),
            }
        ),
        "trips.txt": pl.DataFrame(
            {
                "route_id": [route(i) for i in range(len(stop_ids))],
                "service_id": ["S"] * len(stop_ids),
                "trip_id": [f"T{i}" for i in range(len(stop_ids))],
            }
        ),
    }


N = 600  # big enough for many cells' worth of work, small enough for the oracle


def test_copies_of_one_stop_all_merge_into_the_first(
    run_step: RunStep, stops_merge: ModuleType, settings: ModuleType
) -> None:
    mapping = check_against_reference(
        run_step, stops_merge, settings, {"stops.txt": many_at_one_place(N)}
    )
    assert set(mapping.values()) == {"CO0"}
    assert len(mapping) == N - 1


def test_a_parent_station_chain_at_one_place_merges_nothing(
    run_step: RunStep, stops_merge: ModuleType, settings: ModuleType
) -> None:
    chain = many_at_one_place(N, lambda i: f"CO{i - 1}" if i else "")
    assert check_against_reference(run_step, stops_merge, settings, {"stops.txt": chain}) == {}
    cycle = many_at_one_place(N, lambda i: f"CO{(i - 1) % N}")
    assert check_against_reference(run_step, stops_merge, settings, {"stops.txt": cycle}) == {}


@pytest.mark.parametrize(
    "route",
    [lambda i: "R", lambda i: f"R{i}", lambda i: f"R{i % 3}"],
    ids=["one-route", "disjoint-routes", "three-routes"],
)
@pytest.mark.parametrize("with_parent", [False, True], ids=["parentless", "one-station"])
def test_served_copies_at_one_place(
    run_step: RunStep,
    stops_merge: ModuleType,
    settings: ModuleType,
    route: Callable[[int], str],
    with_parent: bool,
) -> None:
    stops = many_at_one_place(N, lambda i: "STA" if with_parent else "")
    station = pl.DataFrame(
        {"stop_id": ["STA"], "stop_name": ["Sta"], "stop_lat": ["45"], "stop_lon": ["-73"]},
    ).with_columns(location_type=pl.lit("1"), parent_station=pl.lit(""))
    stops = pl.concat([station, stops])
    # Every other copy served: served ones may block each other, unserved ones join anyone.
    tables = {"stops.txt": stops, **served([f"CO{i}" for i in range(0, N, 2)], route)}
    check_against_reference(run_step, stops_merge, settings, tables)
    without_routes = {k: v for k, v in tables.items() if k != "trips.txt"}
    check_against_reference(run_step, stops_merge, settings, without_routes)


def test_jittered_copies_spread_over_many_cells(
    run_step: RunStep, stops_merge: ModuleType, settings: ModuleType
) -> None:
    # 600 copies on a 10 x 60 lattice 7 m apart: most pairs are near, none identical.
    rows = [(i, j) for i in range(10) for j in range(60)]
    stops = pl.DataFrame(
        {
            "stop_id": [f"J{k:04d}" for k in range(len(rows))][::-1],
            "stop_name": ["c"] * len(rows),
            "stop_lat": [repr(45 + 7 * i / M_PER_DEG_LAT) for i, _ in rows],
            "stop_lon": [repr(-73 + 7 * j / (M_PER_DEG_LAT * 0.7071)) for _, j in rows],
        }
    )
    tables = {"stops.txt": stops, **served(stops["stop_id"].to_list()[::5], lambda i: "R")}
    check_against_reference(run_step, stops_merge, settings, tables)
