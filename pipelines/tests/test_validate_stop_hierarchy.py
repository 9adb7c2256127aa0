"""validate_stop_hierarchy: every GTFS parent_station rule, one finding per offender."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from continuous_gtfs import PipelineContext, Step, StepResult
from continuous_gtfs.testing import gtfs_df, schedule_context

RunStep = Callable[..., tuple[PipelineContext, StepResult]]

# A station with every kind of child, valid, plus a parentless bus stop whose
# location_type is empty.
VALID = """
stop_id,location_type,parent_station
STA,1,
STA-P,0,STA
STA-E,2,STA
STA-N,3,STA
STA-P-B,4,STA-P
BUS,,
"""


def with_rows(*rows: str) -> str:
    return VALID.rstrip("\n") + "\n" + "\n".join(rows) + "\n"


def test_a_valid_hierarchy_passes(run_step: RunStep) -> None:
    stops = gtfs_df(VALID)
    ctx, result = run_step("validate_stop_hierarchy", **{"stops.txt": stops})
    assert result.status == "success"
    assert result.findings == []
    assert ctx.output["stops.txt"].equals(stops)


def test_stops_without_hierarchy_columns_pass(run_step: RunStep) -> None:
    _, result = run_step("validate_stop_hierarchy", **{"stops.txt": gtfs_df("stop_id\nA\nB\n")})
    assert result.status == "success"


@pytest.mark.parametrize(
    ("row", "rule", "parent_location_type"),
    [
        ("BAD,5,", "unknown_location_type", ""),
        ("BAD,station,", "unknown_location_type", ""),
        ("BAD,1,STA", "station_has_parent", "1"),
        ("BAD,2,", "parent_required", ""),
        ("BAD,3,", "parent_required", ""),
        ("BAD,4,", "parent_required", ""),
        ("BAD,0,NOWHERE", "parent_not_found", ""),
        ("BAD,2,NOWHERE", "parent_not_found", ""),
        ("BAD,0,STA-P", "parent_must_be_station", "0"),
        ("BAD,,BUS", "parent_must_be_station", "0"),
        ("BAD,2,STA-P", "parent_must_be_station", "0"),
        ("BAD,3,STA-E", "parent_must_be_station", "2"),
        ("BAD,4,STA", "parent_must_be_platform", "1"),
        ("BAD,4,STA-P-B", "parent_must_be_platform", "4"),
    ],
)
def test_each_violation_is_a_finding_and_fails_the_step(
    run_step: RunStep, row: str, rule: str, parent_location_type: str
) -> None:
    _, result = run_step("validate_stop_hierarchy", **{"stops.txt": gtfs_df(with_rows(row))})
    assert result.status == "error"
    assert result.error_type == "StopHierarchyError"
    assert result.error is not None
    assert result.error.startswith("1 stop hierarchy violation(s) in stops.txt: stop BAD ")
    (finding,) = result.findings
    assert finding["code"] == "stop_hierarchy_violation"
    assert finding["severity"] == "error"
    assert not finding["undeclared"]
    assert not finding["emit_errors"]
    _, location_type, parent = row.split(",")
    assert finding["context"] == {
        "stop_id": "BAD",
        "rule": rule,
        "location_type": location_type or "0",
        "parent_station": parent,
        "parent_location_type": parent_location_type,
    }
    assert finding["message"].startswith("stop BAD (location_type ")


def test_every_offender_is_reported_and_the_message_summarises(run_step: RunStep) -> None:
    rows = [f"BAD{i},2," for i in range(7)]
    _, result = run_step("validate_stop_hierarchy", **{"stops.txt": gtfs_df(with_rows(*rows))})
    assert result.status == "error"
    assert [f["context"]["stop_id"] for f in result.findings] == [f"BAD{i}" for i in range(7)]
    assert result.error is not None
    assert result.error.startswith("7 stop hierarchy violation(s)")
    assert "stop BAD4 " in result.error
    assert "stop BAD5 " not in result.error
    assert result.error.endswith("; and 2 more")


def test_apply_raises_for_a_direct_caller(steps: dict[str, Step]) -> None:
    ctx = schedule_context(**{"stops.txt": gtfs_df(with_rows("BAD,1,STA"))})
    with pytest.raises(ValueError, match=r"a station \(1\) must not have a parent_station"):
        steps["validate_stop_hierarchy"].apply(ctx)
