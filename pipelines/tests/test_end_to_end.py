"""The whole pipeline through continuous-gtfs's runner, as the service runs it."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from continuous_gtfs import resolve_dag, scan_pipeline
from continuous_gtfs.pipelines import extract_zip, run_schedule_pipeline

ORDER = [
    "init",
    "update_feed_info",
    "merge_stops",
    "remove_unused_stops",
    "validate_stop_hierarchy",
]

# A tiny feed: one line through two stations, each with two platforms of one
# name (both served), plus a duplicate of station B, and an unused stop.
FEED = {
    "agency.txt": """
        agency_id,agency_name,agency_url,agency_timezone
        M,Metro,https://metro.example.org,America/Toronto
        """,
    "routes.txt": """
        route_id,agency_id,route_short_name,route_type
        L1,M,1,1
        """,
    "calendar.txt": """
        service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date
        WK,1,1,1,1,1,0,0,20250101,20251231
        """,
    "trips.txt": """
        route_id,service_id,trip_id,direction_id
        L1,WK,OUT,0
        L1,WK,BACK,1
        """,
    "stops.txt": """
        stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
        A,Alpha,45.5000,-73.6000,1,
        A-1,Alpha,45.5000,-73.6000,0,A
        A-2,Alpha,45.5000,-73.6000,0,A
        B,Bravo,45.5100,-73.6000,1,
        B-1,Bravo,45.5100,-73.6000,0,B
        B-2,Bravo,45.5100,-73.6000,0,B
        BX,Bravo,45.51001,-73.6000,1,
        BX-E,Bravo Entrance,45.5101,-73.6000,2,BX
        OLD,Old Stop,45.4000,-73.6000,,
        """,
    "stop_times.txt": """
        trip_id,arrival_time,departure_time,stop_id,stop_sequence
        OUT,08:00:00,08:00:00,A-1,1
        OUT,08:05:00,08:05:00,B-1,2
        BACK,09:00:00,09:00:00,B-2,1
        BACK,09:05:00,09:05:00,A-2,2
        """,
    "feed_info.txt": """
        feed_publisher_name,feed_publisher_url,feed_lang
        Upstream,https://upstream.example.com,fr
        """,
}


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, textwrap.dedent(text).strip() + "\n")
    return buffer.getvalue()


def test_small_feed_runs_through_every_step(pipeline_dir: Path, settings: ModuleType) -> None:
    steps = resolve_dag(scan_pipeline(pipeline_dir))
    result = run_schedule_pipeline({"schedule": extract_zip(zip_of(FEED))}, steps)

    assert result.execution_result is not None
    step_results = result.execution_result.steps
    assert [r.name for r in step_results] == ORDER
    assert [r.status for r in step_results] == ["success"] * len(ORDER)
    assert result.execution_result.success

    out = extract_zip(result.output_zip)
    assert set(out) == set(FEED)
    assert out["feed_info.txt"]["feed_publisher_name"].to_list() == [settings.PUBLISHER_NAME]
    # BX merged into B, its entrance now B's; OLD removed; the platforms untouched.
    assert out["stops.txt"]["stop_id"].to_list() == ["A", "A-1", "A-2", "B", "B-1", "B-2", "BX-E"]
    assert out["stops.txt"]["parent_station"].to_list()[-1] == "B"
    assert out["stop_times.txt"]["stop_id"].to_list() == ["A-1", "B-1", "B-2", "A-2"]
    validate = next(stage for stage in result.stages if stage.name == "validate_output")
    assert validate.metadata["errors"] == []


def test_generated_feed_succeeds_with_the_documented_counts(
    pipeline_dir: Path, generate_feed: ModuleType
) -> None:
    rows = 3 * generate_feed.MIN_FULL_ROWS + 7
    inputs = {"schedule": extract_zip(generate_feed.build_feed(rows, seed=3))}
    result = run_schedule_pipeline(inputs, resolve_dag(scan_pipeline(pipeline_dir)))

    assert result.execution_result is not None
    assert result.execution_result.success
    by_name = {r.name: r for r in result.execution_result.steps}
    (merged,) = by_name["merge_stops"].findings
    assert merged["context"]["merged"] == str(generate_feed.MERGED_STOPS)
    (removed,) = by_name["remove_unused_stops"].findings
    assert removed["context"]["removed"] == str(generate_feed.REMOVED_STOPS)
    assert result.output["stop_times.txt"].height == rows
    assert result.output_zip


def test_generated_broken_feed_fails_validation(
    pipeline_dir: Path, generate_feed: ModuleType
) -> None:
    feed = generate_feed.build_feed(generate_feed.MIN_FULL_ROWS, broken_hierarchy=True)
    result = run_schedule_pipeline(
        {"schedule": extract_zip(feed)}, resolve_dag(scan_pipeline(pipeline_dir))
    )

    assert result.execution_result is not None
    assert not result.execution_result.success
    last = result.execution_result.steps[-1]
    assert last.name == "validate_stop_hierarchy"
    assert last.status == "error"
    assert len(last.findings) == generate_feed.BROKEN_HIERARCHY_VIOLATIONS
    assert {f["context"]["rule"] for f in last.findings} == {
        "parent_must_be_station",
        "station_has_parent",
    }
    assert all(r.status == "success" for r in result.execution_result.steps[:-1])


@pytest.mark.parametrize("rows", [2, 3, 199, 201, 1_001])
def test_small_generated_feeds_are_valid(
    pipeline_dir: Path, generate_feed: ModuleType, rows: int
) -> None:
    # Below MIN_FULL_ROWS fewer stops are served; the feed must still pass.
    result = run_schedule_pipeline(
        {"schedule": extract_zip(generate_feed.build_feed(rows))},
        resolve_dag(scan_pipeline(pipeline_dir)),
    )
    assert result.execution_result is not None
    assert result.execution_result.success
    assert result.output["stop_times.txt"].height == rows
