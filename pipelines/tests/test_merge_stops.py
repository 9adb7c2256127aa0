"""merge_stops: duplicates merge, distinct platforms never do, references follow."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import polars as pl
import pytest
from continuous_gtfs import PipelineContext, StepResult
from continuous_gtfs.testing import gtfs_df

RunStep = Callable[..., tuple[PipelineContext, StepResult]]

LAT, LON = 45.5, -73.6
M_PER_DEG_LAT = 111_195.08  # haversine Earth radius 6,371,008.8 m


def stops_at(*rows: tuple[str, str, float, str, str]) -> pl.DataFrame:
    """stops.txt from (stop_id, stop_name, metres north of one point,
    location_type, parent_station) rows; all text, as a parsed feed is."""
    return pl.DataFrame(
        {
            "stop_id": [r[0] for r in rows],
            "stop_name": [r[1] for r in rows],
            "stop_lat": [f"{LAT + r[2] / M_PER_DEG_LAT:.8f}" for r in rows],
            "stop_lon": [f"{LON:.8f}" for _ in rows],
            "location_type": [r[3] for r in rows],
            "parent_station": [r[4] for r in rows],
        }
    )


def stop_times(*stop_ids: str, trip: str = "T1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trip_id": [trip] * len(stop_ids),
            "stop_id": list(stop_ids),
            "stop_sequence": [str(i) for i in range(1, len(stop_ids) + 1)],
        }
    )


def merged_finding(result: StepResult) -> dict[str, str]:
    (finding,) = result.findings
    assert finding["code"] == "stops_merged"
    assert finding["severity"] == "info"
    assert not finding["undeclared"]
    assert not finding["emit_errors"]
    context: dict[str, str] = finding["context"]
    return context


def stop_ids(ctx: PipelineContext) -> list[str]:
    ids: list[str] = ctx.output["stops.txt"]["stop_id"].to_list()
    return ids


def test_northbound_and_southbound_platforms_of_one_station_stay_distinct(
    run_step: RunStep,
) -> None:
    stops = gtfs_df(
        """
        stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
        STA,Central,45.5,-73.6,1,
        STA-N,Central,45.5,-73.6,0,STA
        STA-S,Central,45.5,-73.6,0,STA
        """
    )
    times = pl.concat([stop_times("STA-N", trip="NB"), stop_times("STA-S", trip="SB")])
    ctx, result = run_step("merge_stops", **{"stops.txt": stops, "stop_times.txt": times})
    assert result.status == "success"
    assert stop_ids(ctx) == ["STA", "STA-N", "STA-S"]
    assert ctx.output["stop_times.txt"].equals(times)
    context = merged_finding(result)
    assert context["merged"] == "0"
    assert context["kept_distinct"] == "1"


def test_unused_copy_of_a_platform_merges_but_served_platforms_stay_apart(
    run_step: RunStep,
) -> None:
    # P0X is an unused second listing of P0; P1 is the other direction's platform.
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("STA-P0", "Central", 0, "0", "STA"),
        ("STA-P0X", "Central", 0, "0", "STA"),
        ("STA-P1", "Central", 0, "0", "STA"),
    )
    times = pl.concat([stop_times("STA-P0", trip="NB"), stop_times("STA-P1", trip="SB")])
    ctx, result = run_step("merge_stops", **{"stops.txt": stops, "stop_times.txt": times})
    assert stop_ids(ctx) == ["STA", "STA-P0", "STA-P1"]
    assert merged_finding(result)["merged"] == "1"
    assert ctx.get_id_mappings("stops.txt", "stop_id") == {"STA-P0X": "STA-P0"}


@pytest.mark.parametrize(("factor", "merged"), [(0.0, True), (0.5, True), (1.5, False)])
def test_merges_only_within_the_distance(
    run_step: RunStep, settings: ModuleType, factor: float, merged: bool
) -> None:
    metres = settings.MERGE_DISTANCE_M * factor
    # Case, punctuation and spacing differ: the normalised names are equal.
    stops = stops_at(
        ("A", "St. Paul's  Station", 0, "0", ""),
        ("B", "st pauls station", metres, "", ""),
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops})
    assert stop_ids(ctx) == (["A"] if merged else ["A", "B"])
    assert merged_finding(result)["distance_m"] == f"{settings.MERGE_DISTANCE_M:g}"


def test_different_location_type_or_name_is_not_merged(run_step: RunStep) -> None:
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("STOP", "Central", 0, "0", ""),
        ("OTHER", "Central North", 0, "0", ""),
        ("NONAME1", "", 0, "3", ""),
        ("NONAME2", "", 0, "3", ""),
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops})
    assert stop_ids(ctx) == ["STA", "STOP", "OTHER", "NONAME1", "NONAME2"]
    assert merged_finding(result)["merged"] == "0"


def test_empty_location_type_means_zero(run_step: RunStep) -> None:
    stops = stops_at(("A", "Elm St", 0, "", ""), ("B", "Elm St", 1, "0", ""))
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops})
    assert stop_ids(ctx) == ["A"]


def test_every_reference_is_rewritten_to_the_survivor(run_step: RunStep) -> None:
    # STA-X is a second listing of station STA, with its own entrance; MAIN-X is
    # route R2's copy of route R1's stop MAIN.
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("STA-P", "Central Platform", 0, "0", "STA"),
        ("STA-X", "Central", 3, "1", ""),
        ("STA-X-E", "Central Entrance", 3, "2", "STA-X"),
        ("MAIN", "Main St", 100, "0", ""),
        ("MAIN-X", "Main St", 104, "0", ""),
    )
    trips = gtfs_df(
        """
        route_id,service_id,trip_id
        R1,S,T1
        R2,S,T2
        """
    )
    times = pl.concat(
        [stop_times("MAIN", "STA-P", trip="T1"), stop_times("MAIN-X", "STA-P", trip="T2")]
    )
    transfers = gtfs_df(
        """
        from_stop_id,to_stop_id,transfer_type
        MAIN-X,STA-P,2
        STA-P,MAIN-X,2
        """
    )
    pathways = gtfs_df(
        """
        pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional
        PW1,STA-X-E,STA-P,1,1
        """
    )
    stop_areas = gtfs_df(
        """
        area_id,stop_id
        DOWNTOWN,MAIN-X
        """
    )
    ctx, result = run_step(
        "merge_stops",
        **{
            "stops.txt": stops,
            "trips.txt": trips,
            "stop_times.txt": times,
            "transfers.txt": transfers,
            "pathways.txt": pathways,
            "stop_areas.txt": stop_areas,
        },
    )
    assert result.status == "success"
    out = ctx.output
    assert stop_ids(ctx) == ["STA", "STA-P", "STA-X-E", "MAIN"]
    assert out["stops.txt"].filter(pl.col("stop_id") == "STA-X-E")["parent_station"].item() == (
        "STA"
    )
    assert out["stop_times.txt"]["stop_id"].to_list() == ["MAIN", "STA-P", "MAIN", "STA-P"]
    assert out["transfers.txt"].rows() == [("MAIN", "STA-P", "2"), ("STA-P", "MAIN", "2")]
    assert out["pathways.txt"]["from_stop_id"].to_list() == ["STA-X-E"]
    assert out["stop_areas.txt"]["stop_id"].to_list() == ["MAIN"]
    context = merged_finding(result)
    assert context["merged"] == "2"
    assert context["survivors"] == "2"
    assert context["rewritten:stop_times.txt.stop_id"] == "1"
    assert context["rewritten:transfers.txt.from_stop_id"] == "1"
    assert context["rewritten:transfers.txt.to_stop_id"] == "1"
    assert context["rewritten:stops.txt.parent_station"] == "1"
    assert context["rewritten:stop_areas.txt.stop_id"] == "1"


def test_a_pathway_the_merge_turns_into_a_loop_is_dropped(run_step: RunStep) -> None:
    pathways_before = gtfs_df(
        """
        pathway_id,from_stop_id,to_stop_id,pathway_mode
        TO_COPY,E,EX,1
        OWN_LOOP,N,N,1
        """
    )
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("E", "Central Entrance", 0, "2", "STA"),
        ("EX", "Central Entrance", 1, "2", "STA"),
        ("N", "", 0, "3", "STA"),
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops, "pathways.txt": pathways_before})
    # The loop the merge made goes; one that was already in the feed is not ours to judge.
    assert ctx.output["pathways.txt"]["pathway_id"].to_list() == ["OWN_LOOP"]
    assert merged_finding(result)["pathway_loops_dropped"] == "1"


def test_transfers_made_identical_by_the_merge_are_deduplicated(run_step: RunStep) -> None:
    stops = stops_at(("A", "Elm St", 0, "0", ""), ("AX", "Elm St", 2, "0", ""))
    stops = pl.concat([stops, stops_at(("B", "Oak St", 500, "0", ""))])
    transfers = gtfs_df(
        """
        from_stop_id,to_stop_id,transfer_type
        A,B,0
        AX,B,0
        B,A,1
        B,A,1
        ,,1
        """
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops, "transfers.txt": transfers})
    # The pre-existing duplicate (B,A) is left alone; only the one the merge made goes.
    assert ctx.output["transfers.txt"].rows() == [
        ("A", "B", "0"),
        ("B", "A", "1"),
        ("B", "A", "1"),
        (None, None, "1"),
    ]
    assert merged_finding(result)["transfers_deduplicated"] == "1"


def test_children_of_different_stations_do_not_merge(run_step: RunStep) -> None:
    stops = stops_at(
        ("NORTH", "North Terminal", 0, "1", ""),
        ("SOUTH", "South Terminal", 5, "1", ""),
        ("NORTH-P", "Platform 1", 2, "0", "NORTH"),
        ("SOUTH-P", "Platform 1", 2, "0", "SOUTH"),
    )
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops})
    assert stop_ids(ctx) == ["NORTH", "SOUTH", "NORTH-P", "SOUTH-P"]


def test_children_merge_once_their_stations_have_merged(run_step: RunStep) -> None:
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("STA2", "Central", 2, "1", ""),
        ("STA-E", "Main Entrance", 10, "2", "STA"),
        ("STA2-E", "Main entrance", 10, "2", "STA2"),
        ("STA-P", "Central", 0, "0", "STA"),
        ("STA-P-B", "Car 1", 0, "4", "STA-P"),
        ("STA2-P", "Central", 0, "0", "STA2"),
        ("STA2-P-B", "Car 1", 0, "4", "STA2-P"),
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops})
    # Station, then entrance and platform, then the boarding area below the platform.
    assert stop_ids(ctx) == ["STA", "STA-E", "STA-P", "STA-P-B"]
    assert merged_finding(result)["merged"] == "4"


def test_a_station_merge_never_joins_its_served_platforms(run_step: RunStep) -> None:
    # Two listings of one station, each with a served platform of the same name.
    stops = stops_at(
        ("STA", "Central", 0, "1", ""),
        ("STA2", "Central", 2, "1", ""),
        ("STA-P", "Central", 0, "0", "STA"),
        ("STA2-P", "Central", 0, "0", "STA2"),
    )
    times = pl.concat([stop_times("STA-P", trip="A"), stop_times("STA2-P", trip="B")])
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops, "stop_times.txt": times})
    assert stop_ids(ctx) == ["STA", "STA-P", "STA2-P"]
    assert ctx.output["stops.txt"]["parent_station"].to_list() == ["", "STA", "STA"]
    assert ctx.output["stop_times.txt"]["stop_id"].to_list() == ["STA-P", "STA2-P"]


def test_served_stops_on_both_sides_of_a_street_stay_distinct(run_step: RunStep) -> None:
    stops = stops_at(("MAIN-E", "Main St", 0, "", ""), ("MAIN-W", "Main St", 20, "", ""))
    trips = gtfs_df("route_id,service_id,trip_id\nR1,S,EB\nR1,S,WB\n")
    times = pl.concat([stop_times("MAIN-E", trip="EB"), stop_times("MAIN-W", trip="WB")])
    ctx, result = run_step(
        "merge_stops", **{"stops.txt": stops, "trips.txt": trips, "stop_times.txt": times}
    )
    assert stop_ids(ctx) == ["MAIN-E", "MAIN-W"]
    assert merged_finding(result)["kept_distinct"] == "1"


def test_served_look_alikes_without_route_information_stay_distinct(run_step: RunStep) -> None:
    stops = stops_at(("A", "Main St", 0, "", ""), ("B", "Main St", 2, "", ""))
    times = pl.concat([stop_times("A", trip="T1"), stop_times("B", trip="T2")])
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops, "stop_times.txt": times})
    assert stop_ids(ctx) == ["A", "B"]


def test_no_chaining_beyond_the_distance(run_step: RunStep, settings: ModuleType) -> None:
    step = settings.MERGE_DISTANCE_M * 0.6
    stops = stops_at(
        ("A", "Elm St", 0, "0", ""),
        ("B", "Elm St", step, "0", ""),
        ("C", "Elm St", 2 * step, "0", ""),
    )
    ctx, _ = run_step("merge_stops", **{"stops.txt": stops})
    # B is within reach of A; C only of B, which is no longer a stop of its own.
    assert stop_ids(ctx) == ["A", "C"]


def test_works_without_optional_files_and_columns(run_step: RunStep) -> None:
    stops = gtfs_df(
        """
        stop_id,stop_name,stop_lat,stop_lon
        A,Elm St,45.5,-73.6
        B,Elm St,45.5,-73.6
        C,Oak St,45.6,-73.6
        """
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops})
    assert result.status == "success"
    assert stop_ids(ctx) == ["A", "C"]
    assert ctx.output["stops.txt"].columns == stops.columns
    assert set(ctx.output) == {"stops.txt"}


def test_stops_without_usable_coordinates_are_never_merged(run_step: RunStep) -> None:
    stops = gtfs_df(
        """
        stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
        STA,Central,45.5,-73.6,1,
        N1,Stairs,,,3,STA
        N2,Stairs,,,3,STA
        X1,Nowhere,1e300,-73.6,0,
        X2,Nowhere,1e300,-73.6,0,
        Y1,Nowhere,nan,-73.6,0,
        Y2,Nowhere,nan,-73.6,0,
        """
    )
    ctx, result = run_step("merge_stops", **{"stops.txt": stops})
    assert result.status == "success"
    assert stop_ids(ctx) == ["STA", "N1", "N2", "X1", "X2", "Y1", "Y2"]


def test_feed_without_stops_is_left_alone(run_step: RunStep) -> None:
    ctx, result = run_step("merge_stops", **{"stop_times.txt": stop_times("A")})
    assert result.status == "success"
    assert result.findings == []
    assert set(ctx.output) == {"stop_times.txt"}
