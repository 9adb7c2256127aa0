"""remove_unused_stops: unserved stops go, stations and their parts stay while served."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from continuous_gtfs import PipelineContext, StepResult
from continuous_gtfs.testing import gtfs_df

RunStep = Callable[..., tuple[PipelineContext, StepResult]]

# Two stations: OPEN has a served platform, CLOSED has none. Each has an
# unserved platform, an entrance, a generic node, and boarding areas.
STOPS = """
stop_id,stop_name,location_type,parent_station
OPEN,Open,1,
OPEN-P1,Open,0,OPEN
OPEN-P2,Open,0,OPEN
OPEN-E,Open Entrance,2,OPEN
OPEN-N,,3,OPEN
OPEN-P1-B,Car 1,4,OPEN-P1
OPEN-P2-B,Car 1,4,OPEN-P2
CLOSED,Closed,1,
CLOSED-P1,Closed,0,CLOSED
CLOSED-E,Closed Entrance,2,CLOSED
CLOSED-N,,3,CLOSED
BUS-USED,Elm St,,
BUS-UNUSED,Oak St,,
"""


def stop_times(*stop_ids: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trip_id": ["T1"] * len(stop_ids),
            "stop_id": list(stop_ids),
            "stop_sequence": [str(i) for i in range(1, len(stop_ids) + 1)],
        }
    )


def kept(ctx: PipelineContext) -> list[str]:
    ids: list[str] = ctx.output["stops.txt"]["stop_id"].to_list()
    return ids


def finding(result: StepResult) -> dict[str, str]:
    (only,) = result.findings
    assert only["code"] == "unused_stops_removed"
    assert only["severity"] == "info"
    assert not only["undeclared"]
    context: dict[str, str] = only["context"]
    return context


def test_station_with_a_served_platform_keeps_its_parts(run_step: RunStep) -> None:
    ctx, result = run_step(
        "remove_unused_stops",
        **{"stops.txt": gtfs_df(STOPS), "stop_times.txt": stop_times("OPEN-P1", "BUS-USED")},
    )
    assert result.status == "success"
    assert kept(ctx) == ["OPEN", "OPEN-P1", "OPEN-E", "OPEN-N", "OPEN-P1-B", "BUS-USED"]


def test_station_without_a_served_platform_goes_with_its_entrances(run_step: RunStep) -> None:
    ctx, result = run_step(
        "remove_unused_stops",
        **{"stops.txt": gtfs_df(STOPS), "stop_times.txt": stop_times("OPEN-P1")},
    )
    assert not {"CLOSED", "CLOSED-P1", "CLOSED-E", "CLOSED-N"} & set(kept(ctx))
    context = finding(result)
    # OPEN-P2, its boarding area, the closed station's four stops, both bus stops.
    assert context["removed"] == "8"
    assert context["kept"] == "5"
    assert context["removed_location_type_1"] == "1"
    assert context["removed_location_type_0"] == "4"
    assert context["removed_location_type_2"] == "1"
    assert context["removed_location_type_3"] == "1"
    assert context["removed_location_type_4"] == "1"


def test_rows_naming_a_removed_stop_are_dropped(run_step: RunStep) -> None:
    transfers = gtfs_df(
        """
        from_stop_id,to_stop_id,transfer_type
        OPEN-P1,BUS-USED,0
        OPEN-P1,BUS-UNUSED,0
        CLOSED-P1,OPEN-P1,0
        ,,0
        """
    )
    pathways = gtfs_df(
        """
        pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional
        OPEN-1,OPEN-E,OPEN-P1,1,1
        OPEN-2,OPEN-E,OPEN-P2,1,1
        CLOSED-1,CLOSED-E,CLOSED-P1,1,1
        """
    )
    ctx, result = run_step(
        "remove_unused_stops",
        **{
            "stops.txt": gtfs_df(STOPS),
            "stop_times.txt": stop_times("OPEN-P1", "BUS-USED"),
            "transfers.txt": transfers,
            "pathways.txt": pathways,
        },
    )
    # A transfer row without stop ids (route- or trip-based) is no stop reference.
    assert ctx.output["transfers.txt"].rows() == [("OPEN-P1", "BUS-USED", "0"), (None, None, "0")]
    assert ctx.output["pathways.txt"]["pathway_id"].to_list() == ["OPEN-1"]
    context = finding(result)
    assert context["dropped:transfers.txt"] == "2"
    assert context["dropped:pathways.txt"] == "2"


def test_served_stop_keeps_every_ancestor(run_step: RunStep) -> None:
    # stop_times may not name a boarding area, but if it does its platform and
    # station must not vanish from under it.
    ctx, _ = run_step(
        "remove_unused_stops",
        **{"stops.txt": gtfs_df(STOPS), "stop_times.txt": stop_times("OPEN-P2-B")},
    )
    assert {"OPEN", "OPEN-P2", "OPEN-P2-B"} <= set(kept(ctx))
    assert "OPEN-P1" not in kept(ctx)


def test_without_hierarchy_columns_only_served_stops_stay(run_step: RunStep) -> None:
    stops = gtfs_df(
        """
        stop_id,stop_name
        A,Elm St
        B,Oak St
        """
    )
    ctx, result = run_step(
        "remove_unused_stops", **{"stops.txt": stops, "stop_times.txt": stop_times("A")}
    )
    assert result.status == "success"
    assert kept(ctx) == ["A"]
    assert ctx.output["stops.txt"].columns == ["stop_id", "stop_name"]


def test_feed_without_stop_times_is_left_alone(run_step: RunStep) -> None:
    stops = gtfs_df(STOPS)
    ctx, result = run_step("remove_unused_stops", **{"stops.txt": stops})
    assert result.status == "success"
    assert ctx.output["stops.txt"].equals(stops)
    assert result.findings == []
