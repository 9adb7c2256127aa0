"""Step 4: check stops.txt's parent_station / location_type rules; fail on violations."""

from __future__ import annotations

import logging

import polars as pl
from continuous_gtfs import PipelineContext, step

from ._stops import (
    BOARDING_AREA,
    ENTRANCE_EXIT,
    GENERIC_NODE,
    KNOWN_LOCATION_TYPES,
    STATION,
    STOP_OR_PLATFORM,
    STOPS,
    hierarchy_view,
)
from .stops_unused import remove_unused_stops

log = logging.getLogger(__name__)

#: Finding code: one error per offending stop; `rule` in the context says which.
STOP_HIERARCHY_VIOLATION = "stop_hierarchy_violation"

# Rule name → what it requires, as the finding and the exception word it.
RULES: dict[str, str] = {
    "unknown_location_type": "location_type must be empty or one of 0, 1, 2, 3, 4",
    "station_has_parent": "a station (1) must not have a parent_station",
    "parent_required": "an entrance/exit (2), generic node (3) or boarding area (4) "
    "must have a parent_station",
    "parent_not_found": "parent_station must be the stop_id of a stop in stops.txt",
    "parent_must_be_station": "the parent_station of a stop/platform (0), entrance/exit (2) "
    "or generic node (3) must be a station (1)",
    "parent_must_be_platform": "the parent_station of a boarding area (4) must be a "
    "stop/platform (0)",
}

# How many violations the exception message spells out; the findings hold all.
_SHOWN_IN_ERROR = 5


class StopHierarchyError(ValueError):
    """stops.txt breaks the GTFS parent_station / location_type rules."""


def _violations(stops: pl.DataFrame) -> pl.DataFrame:
    """stop_id, location_type, parent_station, parent_location_type and the
    first rule each offending stop breaks (in RULES order), one row per
    offending stop, in file order."""
    view = hierarchy_view(stops)
    parents = (
        view.select(
            pl.col("stop_id").alias("parent_station"),
            pl.col("location_type").alias("parent_location_type"),
        )
        # A duplicated stop_id must not duplicate its children's rows.
        .unique("parent_station", keep="first")
    )
    lt, parent, parent_lt = (
        pl.col("location_type"),
        pl.col("parent_station"),
        pl.col("parent_location_type"),
    )
    has_parent = parent.is_not_null()
    rule = (
        pl.when(~lt.is_in(KNOWN_LOCATION_TYPES))
        .then(pl.lit("unknown_location_type"))
        .when((lt == STATION) & has_parent)
        .then(pl.lit("station_has_parent"))
        .when(lt.is_in((ENTRANCE_EXIT, GENERIC_NODE, BOARDING_AREA)) & ~has_parent)
        .then(pl.lit("parent_required"))
        .when(has_parent & parent_lt.is_null())
        .then(pl.lit("parent_not_found"))
        .when(
            lt.is_in((STOP_OR_PLATFORM, ENTRANCE_EXIT, GENERIC_NODE))
            & has_parent
            & (parent_lt != STATION)
        )
        .then(pl.lit("parent_must_be_station"))
        .when((lt == BOARDING_AREA) & (parent_lt != STOP_OR_PLATFORM))
        .then(pl.lit("parent_must_be_platform"))
        .otherwise(None)
    )
    return (
        view.join(parents, on="parent_station", how="left", maintain_order="left")
        .with_columns(rule.alias("rule"))
        .filter(pl.col("rule").is_not_null())
    )


def _describe(row: dict[str, str | None]) -> str:
    parent = row["parent_station"]
    parent_part = (
        f", parent_station {parent} (location_type {row['parent_location_type']})"
        if parent is not None and row["parent_location_type"] is not None
        else f", parent_station {parent}"
        if parent is not None
        else ""
    )
    return (
        f"stop {row['stop_id']} (location_type {row['location_type']}{parent_part}): "
        f"{RULES[str(row['rule'])]}"
    )


@step(
    files=[STOPS],
    after=[remove_unused_stops],
    findings=[(STOP_HIERARCHY_VIOLATION, {"subject": ["stop_id"]})],
)
def validate_stop_hierarchy(ctx: PipelineContext) -> None:
    """Check the stop hierarchy (parent_station, location_type) and fail the run on violations.

    The rules of the GTFS reference for stops.txt, empty location_type read as 0:

    * location_type is empty or 0-4 (`unknown_location_type`);
    * a station (1) has no parent_station (`station_has_parent`);
    * an entrance/exit (2), generic node (3) or boarding area (4) has one
      (`parent_required`);
    * a parent_station names an existing stop (`parent_not_found`);
    * the parent of a stop/platform (0), entrance/exit (2) or generic node (3)
      is a station (`parent_must_be_station`);
    * the parent of a boarding area (4) is a stop/platform
      (`parent_must_be_platform`).

    Each offending stop yields one `stop_hierarchy_violation` error finding
    (subject stop_id; context: rule, location_type, parent_station,
    parent_location_type) for the first rule it breaks. Any violation raises
    StopHierarchyError, so the step and the run fail. Changes nothing.
    """
    stops = ctx.output.get(STOPS)
    if not isinstance(stops, pl.DataFrame) or "stop_id" not in stops.columns:
        # The runner's output validation reports a missing stops.txt itself.
        log.warning("no stops.txt with a stop_id column; no hierarchy to check")
        return
    violations = _violations(stops)
    rows = violations.to_dicts()
    for row in rows:
        ctx.emit_finding(
            STOP_HIERARCHY_VIOLATION,
            severity="error",
            message=_describe(row),
            context={
                "stop_id": row["stop_id"],
                "rule": row["rule"],
                "location_type": row["location_type"],
                "parent_station": row["parent_station"] or "",
                "parent_location_type": row["parent_location_type"] or "",
            },
        )
    if rows:
        shown = "; ".join(_describe(row) for row in rows[:_SHOWN_IN_ERROR])
        more = f"; and {len(rows) - _SHOWN_IN_ERROR} more" if len(rows) > _SHOWN_IN_ERROR else ""
        raise StopHierarchyError(
            f"{len(rows)} stop hierarchy violation(s) in {STOPS}: {shown}{more}"
        )
    log.info("stop hierarchy valid: %d stop(s) checked", stops.height)
